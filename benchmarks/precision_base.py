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

``--parts greedy`` measures the other reference the gains use: the base at its best temperature,
which the shipped bf16 sweep found to be greedy decoding on both tasks. Greedy decoding has no
sampling seed, so the difference is the precision's (and the CPU's) alone, problem by problem; one
problem is 100 / n points. About half a minute (arith) and a minute (word-problems) in fp32.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/precision_base.py [--precision fp32] [--seeds 0 1 2] [--tasks arith word-problems]
                                                          [--parts step0 greedy]
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
    ap.add_argument("--parts", nargs="+", default=["step0", "greedy"], choices=("step0", "greedy"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    shipped = reproduce.load_results(SHIPPED)
    first = plans.PLANS["smollm2"]["config"]["precision"]
    specs, settings, config = plans.plan_evidence("smollm2", args.tasks)
    model, tok = reproduce._load_base(shipped["profile"], args.precision)
    if "step0" in args.parts:
        _step0(args, shipped, specs, settings, config, model, tok, first)
    if "greedy" in args.parts:
        _greedy(args, shipped, specs, settings, config, model, tok, first)
    return 0


def _step0(args, shipped, specs, settings, config, model, tok, first) -> None:
    step0 = {(r["task"], r["seed"]): r["base_accuracy"] for r in shipped["runs"]}
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


def _greedy(args, shipped, specs, settings, config, model, tok, first) -> None:
    """The base's greedy accuracy in ``args.precision`` beside the shipped sweep's (seed 0's settings,
    as ``reproduce`` swept it)."""
    swept = {r["task"]: r for r in shipped["temperature_sweep"] if r["model"] == "base"}
    print(f"\n| task | problems | best temperature, {first} sweep | greedy {first}, shipped (%) | "
          f"greedy {args.precision}, here (%) | difference (points) | its answers cut at the cap (%) | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for t in args.tasks:
        task, spec = get_task(t), next(x for x in specs if x.task == t)
        cfg = plans.make_config(shipped["profile"], spec, settings, {**config, "precision": args.precision})
        held_out = task.load("test", n=cfg.eval_examples)
        t0 = time.perf_counter()
        got = evaluate_as_trained(model, tok, task, cfg, held_out, samples=0, greedy=True)
        acc, was = got["accuracy_greedy"], swept[t]["acc"]["greedy"]["mean"]
        print(f"| {t} | {len(held_out)} | {swept[t]['best']} | {100 * was:.1f} | {100 * acc:.1f} | "
              f"{100 * (acc - was):+.1f} | {100 * got['truncated_greedy']:.1f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
