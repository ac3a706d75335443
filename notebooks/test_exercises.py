"""Every reference solution passes its exercise's check, a wrong answer fails it, and an unfilled
stub is reported (and replaced by the solution only under CI). Runs with the notebook tests:
``python -m pytest notebooks/test_exercises.py``."""

import json
import re
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import exercises  # noqa: E402
import solutions  # noqa: E402


def stub(*args, **kwargs):
    raise NotImplementedError  # YOUR CODE


def sample_std_advantages(rewards, G):  # divides by G - 1, not G
    r = rewards.reshape(-1, G)
    a = (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)
    return torch.where((r == r[:, :1]).all(1, keepdim=True), torch.zeros_like(a), a).reshape(-1)


def unclipped_surrogate(logprobs, old_logprobs, advantages, mask, epsilon=0.2):  # forgets the min/clip
    term = torch.exp(logprobs - old_logprobs) * advantages[:, None]
    return -((term * mask).sum(1) / mask.sum(1)).mean()


def unbalanced_weights(correct, G, positive=1.0, negative=1.0, balance=False):  # ignores balance
    return solutions.signed_weights(correct, G, positive, negative, balance=False)


def token_mean_everywhere(per_token, mask, aggregation):  # one normaliser for all three
    return (per_token * mask).sum() / mask.sum()


WRONG = [
    ("group_advantages", sample_std_advantages),
    ("clipped_surrogate", unclipped_surrogate),
    ("signed_weights", unbalanced_weights),
    ("aggregate", token_mean_everywhere),
]


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
@pytest.mark.parametrize("ci", ["", "1"])
def test_every_solution_passes_its_check(monkeypatch, capsys, name, ci):
    monkeypatch.setenv("CI", ci)
    assert exercises.check(name, getattr(solutions, name)) is True
    assert "matches" in capsys.readouterr().out


@pytest.mark.parametrize("name,wrong", WRONG, ids=[n for n, _ in WRONG])
def test_a_wrong_answer_fails_its_check(name, wrong):
    with pytest.raises(AssertionError, match="differs from course_lib"):
        exercises.check(name, wrong)


@pytest.mark.parametrize("ci,expected,says", [("", False, "not done yet"), ("0", False, "not done yet"),
                                              ("1", True, "(CI only) solutions.py"), ("true", True, "(CI only) solutions.py")])
def test_an_unfilled_stub_uses_the_solution_only_under_ci(monkeypatch, capsys, ci, expected, says):
    monkeypatch.setenv("CI", ci)
    for name in exercises.EXERCISES:
        assert exercises.check(name, stub) is expected
        out = capsys.readouterr().out
        assert says in out and out.count("\n") == 1  # one line, saying what happened


def test_unknown_exercise_is_named():
    with pytest.raises(ValueError, match="unknown exercise 'nope'"):
        exercises.check("nope", stub)


def test_every_exercise_is_posed_in_a_notebook_with_a_stub():
    posed = {}
    for path in sorted(HERE.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            src = "".join(cell["source"])
            for name in re.findall(r'check\("([a-z_]+)"', src):
                posed[name] = path.name
            if "YOUR CODE" in src and cell["cell_type"] == "code":
                assert "raise NotImplementedError" in src, f"{path.name}: a YOUR CODE stub must raise NotImplementedError"
    assert set(posed) == set(exercises.EXERCISES), posed
