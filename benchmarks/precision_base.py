"""The SmolLM2 base's step-0 evaluation in another precision, paired by seed with the shipped one.

The ``smollm2`` plan runs seeds 0-2 in bf16 and seeds 3-4 in float32 (``late_precision`` in
``course_lib/plans.py``). Does the precision move the base? Each run's step-0 evaluation depends on
the task, the seed (the sampling seed is ``seed + 1234``) and the precision only. This repeats the
step-0 evaluation of seeds 0-2, exactly as training makes it (``evaluate_as_trained`` on every
held-out problem x 8 samples), in ``--precision`` (default fp32), and sets each beside the shipped
bf16 one of the same seed: the same problems and sampling seed, so most of the sampling noise
cancels in the paired difference (the two CPUs' kernels differ too: where this machine is another
than the shipped runs', the difference holds both). One thread; about 5 minutes per (task, seed)
on a 2-core AVX2 CPU in fp32.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/precision_base.py [--precision fp32] [--seeds 0 1 2] [--tasks arith word-problems]
"""

from __future__ import annotations

import argparse
import time

import torch

from course_lib import DATA_DIR, plans, reproduce, stats
from course_lib.evaluate import evaluate_as_trained
from course_lib.tasks import get_task

SHIPPED = DATA_DIR / "results" / "smollm2_evidence_results.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--tasks", nargs="+", default=["arith", "word-problems"])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    shipped = reproduce.load_results(SHIPPED)
    step0 = {(r["task"], r["seed"]): r["base_accuracy"] for r in shipped["runs"]}
    first = plans.PLANS["smollm2"]["config"]["precision"]
    specs, settings, config = plans.plan_evidence("smollm2", args.tasks)
    model, tok = reproduce._load_base(shipped["profile"], args.precision)
    print(f"| task | seed | {first}, shipped (%) | {args.precision}, here (%) | difference (points) | seconds |")
    print("|---|---|---|---|---|---|")
    diffs = {t: [] for t in args.tasks}
    for t in args.tasks:
        task = get_task(t)
        for s in args.seeds:
            spec = next(x for x in specs if (x.task, x.seed) == (t, s))
            cfg = plans.make_config(shipped["profile"], spec, settings, {**config, "precision": args.precision})
            if spec.precision is not None or (t, s) not in step0:
                print(f"| {t} | {s} | (no shipped {first} step 0 for this seed) | | | |")
                continue
            held_out = task.load("test", n=cfg.eval_examples)
            t0 = time.perf_counter()
            acc = evaluate_as_trained(model, tok, task, cfg, held_out, samples=cfg.eval_samples, greedy=False,
                                      seed=cfg.seed + 1234)["accuracy"]  # as trainer._evaluate makes step 0
            diffs[t].append(acc - step0[t, s])
            print(f"| {t} | {s} | {100 * step0[t, s]:.1f} | {100 * acc:.1f} | {100 * (acc - step0[t, s]):+.1f} "
                  f"| {time.perf_counter() - t0:.0f} |", flush=True)
    for t, d in diffs.items():
        if len(d) > 1:
            ci = stats.mean_ci(d)
            print(f"{t}: {args.precision} minus {first}, paired by seed: {100 * ci['mean']:+.1f} points "
                  f"[{100 * ci['ci_low']:+.1f}, {100 * ci['ci_high']:+.1f}] (95% over {len(d)} seeds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
