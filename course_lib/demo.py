"""``python -m course_lib demo``: the main job behind ``make demo``.

It shows what the trainers see (problems, prompts and the verifiers' verdicts on a few
completions, honest and adversarial), runs the quick micro reproduction (one seed, 12 steps:
a smoke test of the pipeline, too short to compare objectives), then prints the shipped,
precomputed results of the full reproduction beside it.
"""

from __future__ import annotations

from course_lib import DATA_DIR
from course_lib.tasks import get_task

#: the shipped reproduction on the micro profile (made by the command inside it)
SHIPPED = DATA_DIR / "results" / "micro_results.json"

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


def show_shipped() -> None:
    """Print the shipped micro results (``data/results/micro_results.json``), labelled as precomputed."""
    from course_lib import report, reproduce

    if not SHIPPED.exists():
        print(f"(no shipped results at {SHIPPED})")
        return
    res = reproduce.load_results(SHIPPED)
    print(f"\n=== precomputed: the shipped micro reproduction ({SHIPPED.relative_to(DATA_DIR.parent)}) ===")
    print(f"made by: {res['command']}")
    print(f"{res['finished_runs']} runs, {res['settings']['steps']} steps each\n")
    print(report.summary_table(res))
    if res.get("equivalence"):
        print(report.equivalence_table(res))
    print("The quick run above is one seed of 12 steps: it checks the pipeline, it cannot rank the objectives.")
