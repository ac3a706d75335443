"""Seconds per micro training step on an idle machine and beside busy processes, by thread count.

    python benchmarks/busy_machine.py [--steps 4] [--busy 2] [--threads 1 2]

For each thread count it times a short micro run (``countdown-micro``, grpo, the micro profile's
budget) in a fresh process, first with the machine as it is, then while ``--busy`` other
processes spin on the CPU (each a tight loop of small matrix products on one thread: the kind of
neighbour a notebook kernel has when a reproduction runs beside it). It prints the median
seconds per step over the steps after the first, and busy / idle for each thread count.

The micro profile uses one thread (``Profile.threads``): with torch's default (one per core),
each small operation waits for a thread that another process has descheduled.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time

STEP = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
from course_lib.trainer import TrainConfig, train
cfg = TrainConfig.from_profile("micro", task="countdown-micro", steps=int(sys.argv[2]), eval_examples=0,
                               checkpoint_every=0)
res = train(cfg, progress=False)
print(json.dumps([h["seconds_gen"] + h["seconds_score"] + h["seconds_train"] for h in res.history]))
"""


def spin(stop) -> None:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(128, 128)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def timed(threads: int, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", STEP, str(threads), str(steps)], capture_output=True,
                         text=True, check=True).stdout
    return statistics.median(json.loads(out.strip().splitlines()[-1])[1:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--busy", type=int, default=2, help="busy processes beside the run")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    rows = []
    for threads in args.threads:
        idle = timed(threads, args.steps)
        stop = mp.Event()
        spinners = [mp.Process(target=spin, args=(stop,)) for _ in range(args.busy)]
        for p in spinners:
            p.start()
        time.sleep(1)
        try:
            busy = timed(threads, args.steps)
        finally:
            stop.set()
            for p in spinners:
                p.join()
        rows.append((threads, idle, busy))
        print(f"threads {threads}: idle {idle:.2f} s/step, beside {args.busy} busy processes {busy:.2f} "
              f"s/step, ratio {busy / idle:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
