"""Choose the ``hard`` split of each micro task and write ``data/micro/hard.json``.

A pass@k curve can only show whether training expands what the base model can solve if the
base does *not* solve nearly everything at k = 256. On the test splits it does, so the hard
split is chosen like this, per task, with the shipped micro base model (T = 1.0, 64 new tokens,
one thread):

1. candidates, all held out from every train split and the pretraining pool:
   - countdown-micro: every problem of the task's own range (three numbers 1..9, targets
     1..99) is in its train or test split, so the candidates are the 109 three-number, two-step
     problems with numbers 1..9 and a target of 100 or more (one order of the numbers each):
     same format, operations and verifier; the base solves them 6.7% of the time (32 samples
     each). Candidates with a number of 10 or more are not used: the base never solved one
     (0 of 3,200 samples on 200 of them), they would only pull pass@k down.
   - gsm8k-micro: a *larger held-out pool* of the same distribution: problems of the task's
     generator whose signature (question numbers and answer) is neither in the seed-0 pool
     that pretrained the model nor in the test split.
2. selection with one sampling seed: 128 samples in stages (16, then 48, then 64); a candidate
   stays while at most ``--max-right`` of its samples so far are right.
3. the first ``--keep`` survivors, in candidate order, are the split.
4. confirmation with another seed: 256 fresh samples per chosen problem give the base's
   per-problem counts and its unbiased pass@1/16/256, stored in the file. Reported numbers
   come from these fresh samples only, so the selection cannot flatter or hurt the base
   through the samples it was chosen on.

Usage (about 10 minutes on one thread)::

    OMP_NUM_THREADS=1 python benchmarks/select_hard.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shlex
import sys
import time
from pathlib import Path

import torch

from course_lib import models
from course_lib.evaluate import evaluate, pass_at_k_curve
from course_lib.pretrain import MAX_NEW_TOKENS
from course_lib.tasks import get_task, micro

STAGES = (16, 48, 64)
KS = (1, 16, 256)
TASKS = ("countdown-micro", "gsm8k-micro")


def countdown_candidates(n: int) -> list[dict]:
    """Up to ``n`` countdown problems with numbers 1..9 and a target of 100 or more (outside the
    task's range, so in no split), distinct by signature, in a seeded random order; the numbers
    in a random order."""
    keys = set()
    for nums in itertools.combinations_with_replacement(range(1, 10), 3):
        for _, _, value in micro._expressions(nums):
            if value >= 100:
                keys.add((nums, value))
    rng = random.Random("countdown-micro-hard")
    keys = sorted(keys)
    rng.shuffle(keys)
    out = []
    for nums, target in keys[:n]:
        order = list(nums)
        rng.shuffle(order)
        out.append({"nums": order, "target": target})
    return out


def gsm8k_candidates(n: int) -> list[dict]:
    """``n`` gsm8k-micro problems whose signatures are distinct and in neither the seed-0 pool
    nor the test split."""
    banned = set(micro._gsm8k_pool_signatures()) | {micro.gsm8k_signature(p) for p in micro._gsm8k_test()}
    rng = random.Random("gsm8k-micro-hard")
    out = []
    while len(out) < n:
        p = micro._gsm8k_problem(rng)
        key = micro.gsm8k_signature(p)
        if key not in banned:
            banned.add(key)
            out.append(p)
    return out


def counts(model, tok, task, examples, samples: int, seed: int) -> list[int]:
    """Right answers among ``samples`` completions (T = 1.0) of each example."""
    r = evaluate(model, tok, task, examples, samples=samples, greedy=False, max_new_tokens=MAX_NEW_TOKENS,
                 temperature=1.0, batch_size=512, seed=seed)
    return list(r["correct_per_problem"])


def select(model, tok, name: str, candidates: list[dict], keep: int, select_seed: int, confirm_seed: int,
           max_right: int, min_problems: int = 0) -> dict:
    task = get_task(name)
    alive = list(range(len(candidates)))
    right = [0] * len(candidates)
    stages = []
    for i, samples in enumerate(STAGES):
        t0 = time.time()
        c = counts(model, tok, task, [candidates[j] for j in alive], samples, seed=select_seed * 100 + i)
        for j, k in zip(alive, c):
            right[j] += k
        alive = [j for j in alive if right[j] <= max_right]
        stages.append({"samples": samples, "seed": select_seed * 100 + i, "survivors": len(alive),
                       "seconds": round(time.time() - t0, 1)})
        print(f"{name}: stage {i + 1}: {samples} samples, {len(alive)} right at most {max_right} times",
              flush=True)
    chosen = [candidates[j] for j in alive[:keep]]
    if len(chosen) < min_problems:
        print(f"{name}: only {len(chosen)} candidates pass; no hard split (fewer than {min_problems})", flush=True)
        return {"candidates": len(candidates),
                "selection": {"seed": select_seed, "stages": stages, "max_right": max_right,
                              "right_in_selection": [right[j] for j in alive[:keep]]},
                "passed": [candidates[j] for j in alive[:keep]],
                "problems": [],
                "why_empty": f"only {len(chosen)} of {len(candidates)} held-out candidates were right at most "
                             f"{max_right} times in 128 base samples; a pass@k over so few problems says nothing"}
    t0 = time.time()
    c = counts(model, tok, task, chosen, 256, seed=confirm_seed)
    curve = pass_at_k_curve(c, 256, KS)
    print(f"{name}: {len(chosen)} chosen; fresh pass@k {curve}", flush=True)
    return {
        "candidates": len(candidates),
        "selection": {"seed": select_seed, "stages": stages, "max_right": max_right,
                      "rule": f"kept while at most {max_right} of its samples were right (T = 1.0)",
                      "right_in_selection": [right[j] for j in alive[:keep]]},
        "confirmation": {"seed": confirm_seed, "samples": 256, "seconds": round(time.time() - t0, 1),
                         "pass_at_k": {str(k): round(v, 4) for k, v in curve.items()},
                         "never_right": sum(k == 0 for k in c), "correct_per_problem": c},
        "problems": chosen,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--candidates", type=int, default=2000, help="candidates per task")
    ap.add_argument("--keep", type=int, default=100, help="problems per task in the split")
    ap.add_argument("--max-right", type=int, default=1, help="most right samples of 128 a chosen problem may have")
    ap.add_argument("--select-seed", type=int, default=1)
    ap.add_argument("--confirm-seed", type=int, default=2)
    ap.add_argument("--min-problems", type=int, default=50,
                    help="fewer survivors than this: the task gets no hard split (recorded with why)")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS,
                    help="tasks to (re)select; the file keeps the others' entries")
    ap.add_argument("--out", type=Path, default=micro.HARD_FILE)
    args = ap.parse_args(argv)
    if args.select_seed == args.confirm_seed:
        print("error: --select-seed and --confirm-seed must differ (fresh samples confirm the choice)",
              file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    model, tok = models.load_micro()
    make = {"countdown-micro": countdown_candidates, "gsm8k-micro": gsm8k_candidates}
    command = "OMP_NUM_THREADS=1 python benchmarks/select_hard.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    stored = json.loads(args.out.read_text()) if args.out.exists() else {"tasks": {}}
    stored.update({"model": "data/micro/model (manifest.json)", "temperature": 1.0,
                   "max_new_tokens": MAX_NEW_TOKENS, "threads": 1, "torch": torch.__version__})
    for name in args.tasks:  # the other tasks' entries stay as they are
        entry = select(model, tok, name, make[name](args.candidates), args.keep, args.select_seed,
                       args.confirm_seed, args.max_right, args.min_problems)
        stored["tasks"][name] = {"command": command.strip(), **entry}
    args.out.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
