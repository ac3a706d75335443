"""Tasks: data, prompt and verifier behind one small interface.

A ``Task`` bundles three pure functions; the trainer never needs to know which task it runs::

    task = get_task("countdown")
    examples = task.load("train", n=64, seed=0)   # list of dicts
    text = task.prompt(examples[0])               # str
    verdict = task.score(completion, examples[0]) # Score(reward, correct, well_formed, reason)

Six tasks: ``countdown`` and ``gsm8k`` (the paper's), their CPU-sized variants
``countdown-micro`` and ``gsm8k-micro`` (``course_lib.tasks.micro``; gsm8k-micro also has a
``hard`` split for pass@k), which are scored by the *same* verifiers; ``arith`` and ``word-problems`` (``course_lib.tasks.arith``): one-step
arithmetic on which a small real instruct model (SmolLM2-135M-Instruct) is partly competent.
``NAME-random`` is task NAME with *spurious* rewards (notebook 08): the reward is a fair coin per
completion, independent of the answer, while ``correct`` stays the verifier's verdict (so
accuracy is still measured honestly). Simplified on purpose: no registry or plugin system.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from . import countdown, gsm8k
from .common import Score

TASK_NAMES = ("countdown", "gsm8k", "countdown-micro", "gsm8k-micro", "arith", "word-problems",
              "countdown-micro-random", "gsm8k-micro-random")


@dataclass(frozen=True)
class Task:
    """One task: where examples come from, how they are asked, how answers are judged.

    Attributes:
        name: one of ``TASK_NAMES``.
        load: ``load(split: str, n: int | None = None, seed: int = 0) -> list[dict]``; split
            ``"train"`` or ``"test"`` (and ``"hard"`` for gsm8k-micro). The generated tasks'
            test splits share no arithmetic with their train splits.
        prompt: ``prompt(example: dict) -> str``.
        score: ``score(completion: str, example: dict) -> Score``.

    Example:
        >>> t = get_task("countdown")
        >>> t.score("<answer>3*7+5</answer>", {"nums": [3, 7, 5], "target": 26}).reward
        1.0
    """

    name: str
    load: Callable[..., list[dict]]
    prompt: Callable[[dict], str]
    score: Callable[[str, dict], Score]


def score_countdown(completion: str, example: dict) -> Score:
    """``countdown.score`` on an example dict ``{"nums": [...], "target": int}``."""
    return countdown.score(completion, example["nums"], example["target"])


def score_gsm8k(completion: str, example: dict) -> Score:
    """``gsm8k.score`` on an example dict ``{"question": str, "answer": "... #### N"}``."""
    return gsm8k.score(completion, example["answer"])


def coin(completion: str, example: dict) -> float:
    """A spurious reward: 0 or 1 from a hash of the completion and its problem, right or wrong.

    Example: ``coin("x", {"a": 1}) in (0.0, 1.0)``; the same text and problem always give the same.
    """
    return float(zlib.crc32(f"{sorted(example.items())}|{completion}".encode()) & 1)


def _random_rewards(task: Task) -> Task:
    def score(completion: str, example: dict) -> Score:
        verdict = task.score(completion, example)
        return Score(coin(completion, example), verdict.correct, verdict.well_formed, "random reward; " + verdict.reason)

    return Task(f"{task.name}-random", task.load, task.prompt, score)


def get_task(name: str) -> Task:
    """The task called ``name`` (one of ``TASK_NAMES``).

    Example:
        >>> get_task("gsm8k").name
        'gsm8k'
    """
    if name.endswith("-random") and name in TASK_NAMES:
        return _random_rewards(get_task(name[: -len("-random")]))
    if name == "countdown":
        return Task(name, countdown.load, countdown.prompt, score_countdown)
    if name == "gsm8k":
        return Task(name, gsm8k.load, gsm8k.prompt, score_gsm8k)
    if name in ("countdown-micro", "gsm8k-micro"):
        from . import micro  # imported here: the micro variants live in their own module

        if name == "countdown-micro":
            return Task(name, micro.countdown_examples, micro.countdown_prompt, score_countdown)
        return Task(name, micro.gsm8k_examples, micro.gsm8k_prompt, score_gsm8k)
    if name in ("arith", "word-problems"):
        from . import arith

        return Task(name, functools.partial(arith.load, name), arith.prompt, arith.score)
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASK_NAMES)}")
