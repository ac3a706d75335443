"""Choose the ``hard`` split of each micro task and write ``data/micro/hard.json``.

A pass@k curve can only show whether training expands what the base model can solve if the
base does *not* solve nearly everything at k = 256. On the test splits it does, so the hard
split is chosen like this, per task, with the shipped micro base model (T = 1.0, 64 new tokens,
one thread):

1. candidates from a *harder distribution* of the task's own generator, held out from every
   train split, the test split and the pretraining pool by signature:
   - countdown-micro: every problem of the task's own range (three numbers 1..9, targets
     1..99) is in its train or test split, so the candidates step just outside it: three
     numbers of which one is 0 and a target 1..99 (205 problems), and three numbers 1..9 with
     a target of 100 or more (109). Same prompt format, same two-step expressions, same
     verifier. Other ways out were measured (16 samples each, 60 problems): four numbers
     1..9, or one number 10..19, were never solved, so their pass@256 would be 0 for every model.
   - gsm8k-micro: the same eight templates with every number drawn from 2..9 now drawn from
     2..12 (same wording, steps and verifier; products like 12*7 the base never saw). The
     same distribution with a 1,200-problem pool left the base at pass@256 92%: it solves
     almost every problem now and then, so only a wider distribution can give a hard split.
2. selection with one sampling seed in stages (``--stages``); a candidate stays while at most
   ``--max-right`` of its samples so far are right.
3. the first ``--keep`` survivors, in candidate order, are the split.
4. confirmation with another seed: 256 fresh samples per chosen problem give the base's
   per-problem counts and its unbiased pass@1/16/256, stored in the file. Reported numbers
   come from these fresh samples only, so the selection cannot flatter or hurt the base
   through the samples it was chosen on.

Why this is fair to the base: the problems come from the generator family and verifier the
base was pretrained for, and neither the base nor any trained model (RL reads the seed-0 train
split) ever sees one; the question asked of the split is whether RL expands what the model can
solve beyond what the base finds in 256 tries, not how well it does in distribution.

Usage (about 10 minutes on one thread; the commands of the shipped split are in the file)::

    OMP_NUM_THREADS=1 python benchmarks/select_hard.py --tasks countdown-micro --stages 16 48 --max-right 3
    OMP_NUM_THREADS=1 python benchmarks/select_hard.py --tasks gsm8k-micro --candidates 400 --stages 16 48 --max-right 0
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
from course_lib.tasks import get_task, micro, micro_templates

STAGES = (16, 48, 64)  # samples per selection stage (default)
#: gsm8k-micro hard candidates: numbers the templates draw from 2..9 are drawn from 2..WIDE_TOP.
WIDE_TOP = 12
KS = (1, 16, 256)
TASKS = ("countdown-micro", "gsm8k-micro")
#: the micro setting's completion cap (64 tokens), as in training and the base model's manifest
MAX_NEW_TOKENS = models.PROFILES["micro"].budgets["default"]["max_new_tokens"]


#: What each task's candidates are and why the split is fair to the base (stored with the split).
DISTRIBUTION = {
    "countdown-micro": "a harder distribution just outside the task's range (three numbers 1..9, targets 1..99, "
                       "all in train or test): one number 0 and two of 1..9 with a target 1..99, or three numbers "
                       "1..9 with a target of 100 or more. Fair to the base: same prompt format, two-step "
                       "whole-number expressions and verifier; neither the base nor a trained model (RL reads the "
                       "seed-0 train split) sees one; the split asks whether RL expands what the model can solve. "
                       "Four numbers 1..9 or a number 10..19 were never solved (0 of 16 samples on 60 problems "
                       "each), so they would give pass@256 = 0 for every model.",
    "gsm8k-micro": "a harder distribution of the same eight templates: every number the templates draw from 2..9 "
                   "is drawn from 2..12 (same wording, steps and verifier), held out by signature from the "
                   "seed-0 pool and the test split. Fair to the base: same generator and format, and neither the "
                   "base nor a trained model sees one; the split asks whether RL expands what the model can solve. "
                   "The task's own distribution (1,200 held-out candidates, right at most once in 128 samples) "
                   "left the base at pass@256 92%.",
}


def countdown_candidates(n: int) -> list[dict]:
    """Up to ``n`` countdown problems just outside the task's range (so in no split), distinct by
    signature, in a seeded random order, the numbers in a random order: one number 0 and two of
    1..9 with a target 1..99, or three numbers 1..9 with a target of 100 or more."""
    keys = set()
    for nums in itertools.combinations_with_replacement(range(0, 10), 3):
        zeros = nums.count(0)
        if zeros > 1:
            continue
        for _, _, value in micro.countdown_expressions(nums):
            if (zeros and 1 <= value <= 99) or (not zeros and value >= 100):
                keys.add((nums, value))
    rng = random.Random("countdown-micro-hard-v2")
    keys = sorted(keys)
    rng.shuffle(keys)
    out = []
    for nums, target in keys[:n]:
        order = list(nums)
        rng.shuffle(order)
        out.append({"nums": order, "target": target})
    return out


class _Wider:
    """A ``random.Random`` for the gsm8k-micro templates that draws their 2..9 numbers from
    2..``top`` (every other draw as before)."""

    def __init__(self, rng: random.Random, top: int):
        self.rng, self.top = rng, top

    def randint(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, self.top if (lo, hi) == (2, 9) else hi)

    def choice(self, seq):
        return self.rng.choice(seq)


def gsm8k_candidates(n: int) -> list[dict]:
    """``n`` gsm8k-micro problems of the wider templates (numbers 2..WIDE_TOP) whose signatures
    are distinct and in neither the seed-0 pool nor the test split."""
    banned = set(micro._gsm8k_pool_signatures()) | {micro.gsm8k_signature(p) for p in micro._gsm8k_test()}
    rng = _Wider(random.Random("gsm8k-micro-hard-wide"), WIDE_TOP)
    out = []
    while len(out) < n:
        try:
            p = micro_templates.gsm8k_problem(rng)
        except StopIteration:  # "buys ... pays $c": no bill of 20, 50 or 100 covers a cost above 100
            continue
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
           max_right: int, min_problems: int = 0, stages_samples: tuple[int, ...] = STAGES) -> dict:
    task = get_task(name)
    alive = list(range(len(candidates)))
    right = [0] * len(candidates)
    stages = []
    for i, samples in enumerate(stages_samples):
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
                             f"{max_right} times in {sum(stages_samples)} base samples; a pass@k over so few problems says nothing"}
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
    ap.add_argument("--max-right", type=int, default=1, help="most right selection samples a chosen problem may have")
    ap.add_argument("--stages", type=int, nargs="+", default=list(STAGES),
                    help="samples per selection stage (a candidate must survive each)")
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
    if any(k < 1 for k in args.stages):
        print(f"error: --stages must be positive sample counts, got {args.stages}", file=sys.stderr)
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
                       args.confirm_seed, args.max_right, args.min_problems, tuple(args.stages))
        stored["tasks"][name] = {"command": command.strip(), "distribution": DISTRIBUTION[name], **entry}
    args.out.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
