"""Evaluation: the unbiased pass@k estimator and the evaluation report on a tiny model."""

import math

import pytest
import torch
from loop_fixtures import char_tokenizer, fake_task, tiny_model

from course_lib.evaluate import evaluate, pass_at_k


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (4, 0, 1, 0.0),
        (4, 1, 1, 0.25),
        (4, 4, 1, 1.0),
        (4, 1, 4, 1.0),                  # 4 draws out of 4 must include the correct one
        (4, 1, 2, 0.5),                  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (10, 3, 5, 1 - math.comb(7, 5) / math.comb(10, 5)),
        (200, 10, 100, 1 - math.comb(190, 100) / math.comb(200, 100)),
    ],
)
def test_pass_at_k_table(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_rejects_impossible_input(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_evaluate_reports_accuracy_lengths_and_leaves_rng_alone():
    task, tok, model = fake_task(), char_tokenizer(), tiny_model(seed=0)
    examples = task.load("test", n=6)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    res = evaluate(model, tok, task, examples, samples=4, greedy=True, max_new_tokens=8)
    assert torch.equal(torch.get_rng_state(), state)  # training randomness untouched
    assert res["n_examples"] == 6 and 0 <= res["accuracy"] <= 1
    assert res["pass@1"] == pytest.approx(res["accuracy"])
    assert res["pass@4"] >= res["pass@1"]
    assert 0 <= res["truncated"] <= 1 and "accuracy_greedy" in res
    lengths = [x for x in (res["len_correct"], res["len_incorrect"]) if x is not None]
    assert all(1 <= x <= 8 for x in lengths)
    again = evaluate(model, tok, task, examples, samples=4, greedy=False, max_new_tokens=8)
    assert again["accuracy"] == res["accuracy"]  # seeded


def test_evaluate_rejects_empty_examples():
    with pytest.raises(ValueError, match="examples"):
        evaluate(tiny_model(), char_tokenizer(), fake_task(), [])
