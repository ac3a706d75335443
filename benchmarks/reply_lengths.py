"""How long a profile's base replies run, and which completion cap keeps truncation rare.

A cap that cuts replies confounds an objective that lengthens them (a cut reply is scored by
whatever number it reached, or earns nothing under ``truncated="wrong"``). This samples the base
model on each of the profile's tasks with a generous cap, at the budget's temperature and asked
as training asks (chat template, ``--precision``), and prints per task the reply-length quantiles,
the share cut at the generous cap, and the share that each smaller cap would cut, plus the
sampling time (the cost of a larger cap).

Usage (a few minutes on one CPU thread for SmolLM2)::

    OMP_NUM_THREADS=1 python benchmarks/reply_lengths.py --profile smollm2-135m --precision bf16 \\
        --examples 100 --samples 4 --cap 192 --caps 48 64 96 128
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from course_lib import models
from course_lib.rollout import generate_rollouts
from course_lib.tasks import get_task


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="smollm2-135m")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--split", default="test")
    ap.add_argument("--examples", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--cap", type=int, default=192, help="the generous cap the replies are sampled with")
    ap.add_argument("--caps", type=int, nargs="+", default=[48, 64, 96, 128], help="caps to report the cut share at")
    ap.add_argument("--temperature", type=float, default=None, help="default: the budget's")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if min(args.examples, args.samples, args.cap, *args.caps) < 1:
        print("reply_lengths: --examples, --samples, --cap and --caps must be >= 1", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    profile = models.get_profile(args.profile)
    temperature = args.temperature or profile.budgets["default"]["temperature"]
    model, tok = models.load_policy(profile, precision=args.precision)
    dtype = models.compute_dtype(args.precision, next(model.parameters()).device)
    print(f"{profile.name}, {args.split} split, {args.examples} problems x {args.samples} samples at T = "
          f"{temperature}, cap {args.cap}, precision {args.precision}; reply length in tokens (eos included)")
    print("| task | p50 | p90 | p99 | max | cut at " + " | cut at ".join(map(str, (*args.caps, args.cap)))
          + " | sampling s |")
    print("|---" * (len(args.caps) + 7) + "|")
    for name in profile.tasks:
        task = models.prompted(get_task(name), tok, profile)
        examples = task.load(args.split, n=args.examples)
        start = time.perf_counter()
        with models.autocast(model, dtype):
            roll = generate_rollouts(model, tok, [task.prompt(e) for e in examples], args.samples,
                                     max_new_tokens=args.cap, temperature=temperature, micro_batch_size=64,
                                     seed=args.seed)
        seconds = time.perf_counter() - start
        lengths = sorted(roll.lengths.tolist())
        cut = [sum(n > c for n in lengths) / len(lengths) for c in args.caps]
        cut.append(float(roll.truncated.float().mean()))
        q50, q90, q99 = (lengths[min(len(lengths) - 1, int(p * len(lengths)))] for p in (0.5, 0.9, 0.99))
        print(f"| {name} | {q50} | {q90} | {q99} | {lengths[-1]} | "
              + " | ".join(f"{100 * c:.1f}%" for c in cut) + f" | {seconds:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
