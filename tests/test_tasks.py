"""The Task interface: every task name loads, prompts and scores through the same three calls."""

from __future__ import annotations

import importlib.util

import pytest

from course_lib.tasks import TASK_NAMES, Score, Task, countdown, get_task

HAS_MICRO = importlib.util.find_spec("course_lib.tasks.micro") is not None


def reference_completion(name: str, example: dict) -> str:
    """A completion that must score correct: the solver's expression or the gold number."""
    if name.startswith("countdown"):
        return f"<answer>{countdown.solve(example['nums'], example['target'])}</answer>"
    return "#### " + example["answer"].rsplit("####", 1)[1].strip()


def test_task_names():
    assert TASK_NAMES[:4] == ("countdown", "gsm8k", "countdown-micro", "gsm8k-micro")
    assert {"arith", "word-problems", "countdown-micro-random"} <= set(TASK_NAMES)
    for name in TASK_NAMES:
        assert get_task(name).name == name


def test_unknown_task_names_the_allowed_ones():
    with pytest.raises(ValueError, match="countdown, gsm8k, countdown-micro, gsm8k-micro"):
        get_task("countdown_micro")


@pytest.mark.parametrize(
    "name",
    [
        "countdown",
        "gsm8k",
        pytest.param(
            "countdown-micro",
            marks=pytest.mark.skipif(not HAS_MICRO, reason="course_lib.tasks.micro not there yet"),
        ),
        pytest.param(
            "gsm8k-micro",
            marks=pytest.mark.skipif(not HAS_MICRO, reason="course_lib.tasks.micro not there yet"),
        ),
    ],
)
def test_every_task_loads_prompts_and_scores(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    task = get_task(name)
    assert isinstance(task, Task) and task.name == name
    for split in ("train", "test"):
        examples = task.load(split, n=4, seed=0)
        assert len(examples) == 4
        assert task.load(split, n=4, seed=0) == examples
        for ex in examples:
            assert isinstance(task.prompt(ex), str) and task.prompt(ex)
            good = task.score(reference_completion(name, ex), ex)
            assert isinstance(good, Score) and good.correct and good.reward == 1.0, good.reason
            bad = task.score("no answer here", ex)
            assert not bad.correct and bad.reward == 0.0
    if name.endswith("-micro"):
        assert max(len(task.prompt(ex)) for ex in examples) < 100  # short for a tiny model


def test_offline_switches_skip_the_network(monkeypatch):
    from course_lib.tasks import common

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "COURSE_OFFLINE"):
        monkeypatch.setenv(var, "1")
        assert common.hub_reachable() is False
        monkeypatch.delenv(var)
    # an unresolvable host is "not reachable", never an exception
    assert common._probe("hub.invalid", 443, 0.5) is False
