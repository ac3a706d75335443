"""Held-out accuracy of the shipped micro base model at several sampling temperatures.

How much of a trained model's gain could sampling colder have given the base? This prints the
base's accuracy on each micro task's test split at T = 1.0, 0.6 and 0.3 (``--samples`` per
problem) and greedy, one thread, 64 new tokens.

Usage (about a minute)::

    OMP_NUM_THREADS=1 python benchmarks/base_temperatures.py [--split test] [--samples 4] [--seed 0]
"""

from __future__ import annotations

import argparse

import torch

from course_lib import models
from course_lib.evaluate import evaluate
from course_lib.tasks import get_task

TEMPERATURES = (1.0, 0.6, 0.3)
#: the micro tasks and the micro setting's completion cap (64 tokens)
TASKS = models.PROFILES["micro"].tasks
MAX_NEW_TOKENS = models.PROFILES["micro"].budgets["default"]["max_new_tokens"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="test", choices=("test", "hard"))
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model, tok = models.load_micro()
    print(f"| task ({args.split}, problems x samples) | " + " | ".join(f"T = {t}" for t in TEMPERATURES)
          + " | greedy |")
    print("|---" * (len(TEMPERATURES) + 2) + "|")
    for name in TASKS:
        task = get_task(name)
        try:
            examples = task.load(args.split)
        except ValueError as err:  # countdown-micro has no hard split
            print(f"| {name} | {err} |")
            continue
        cells = []
        for t in TEMPERATURES:
            r = evaluate(model, tok, task, examples, samples=args.samples, greedy=False, temperature=t,
                         max_new_tokens=MAX_NEW_TOKENS, batch_size=512, seed=args.seed)
            cells.append(f"{100 * r['accuracy']:.1f}")
        g = evaluate(model, tok, task, examples, samples=0, greedy=True, max_new_tokens=MAX_NEW_TOKENS,
                     batch_size=512, seed=args.seed)
        cells.append(f"{100 * g['accuracy_greedy']:.1f}")
        print(f"| {name} ({len(examples)} x {args.samples}) | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
