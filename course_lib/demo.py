"""``python -m course_lib demo``: the main job behind ``make demo``.

It first shows what the trainers see — problems, prompts and the verifiers' verdicts on a
few completions, honest and adversarial — and then runs the quick micro reproduction
(``python -m course_lib reproduce --profile micro --quick``) when ``--tasks-only`` is not
given.
"""

from __future__ import annotations

import argparse

from course_lib.tasks import get_task

_EXAMPLES = {
    "countdown": {"nums": [3, 7, 5], "target": 26},
    "gsm8k": {
        "question": "Janet's ducks lay 16 eggs a day. She eats 3 and bakes with 4, and sells "
        "the rest at $2 an egg. How many dollars does she make?",
        "answer": "16 - 3 - 4 = 9 eggs; 9 * 2 = 18\n#### 18",
    },
}

# (task, completion) pairs; the first of each task is a correct answer, the rest are not
_SHOWCASE = {
    "countdown": [
        "<think>3*7 is 21, plus 5 is 26</think> <answer>3*7+5</answer>",
        "<answer>99**98**97</answer>",
        "<answer>__import__('os').system('ls')</answer>",
        "<answer>3*7+5+5</answer>",
        "<answer>(3*7+5</answer>",
    ],
    "gsm8k": [
        "She has 16 - 3 - 4 = 9 eggs, sold at $2 each: 9 * 2 = 18. \\boxed{18}",
        "9 * 2 = 18 dollars",
        "#### 1,8",
        "\\boxed{18.5}",
    ],
}


def showcase() -> None:
    """Print one problem, its prompt and the verdicts on a few completions, per full task."""
    for name, completions in _SHOWCASE.items():
        task = get_task(name)
        example = _EXAMPLES[name]
        print(f"=== {name} ===")
        print("prompt:", task.prompt(example).replace("\n", "\n        "))
        for completion in completions:
            verdict = task.score(completion, example)
            print(f"  reward {verdict.reward:.1f}  {completion[:60]!r:64} {verdict.reason}")
        print()
    for name in ("countdown-micro", "gsm8k-micro"):
        task = get_task(name)
        examples = task.load("test", n=3)
        print(f"=== {name} (CPU-sized) ===")
        for example in examples:
            print("  prompt:", repr(task.prompt(example)))
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib demo", description=__doc__)
    parser.add_argument("--tasks-only", action="store_true", help="only show tasks and verifiers")
    parser.add_argument("--out", default="results/demo", help="reproduction output folder")
    args = parser.parse_args(argv)
    showcase()
    if args.tasks_only:
        return 0
    try:
        from course_lib import reproduce
    except ImportError:
        print("(the micro reproduction is not available in this version)")
        return 0
    return reproduce.main(["--profile", "micro", "--quick", "--out", args.out])
