"""The reading rules notebook 06 and README's real-model section share (notebooks/course_helpers.py):
each verdict word on the intervals that should and should not give it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
import course_helpers as H  # noqa: E402


def ci(mean, lo, hi):
    return {"mean": mean, "ci_low": lo, "ci_high": hi}


def test_an_interval_has_spread_only_with_a_width():
    assert H.spread(ci(0.1, 0.0, 0.2))
    assert not H.spread(ci(0.1, 0.1, 0.1))  # seeds that all gave one value
    assert not H.spread(ci(0.1, None, None))  # one seed
    assert H.ci_cell(ci(0.1, 0.1, 0.1)) == "+10.0, no spread" and H.ci_cell(ci(0.1, None, None)) == "+10.0, 1 seed"


@pytest.mark.parametrize("lo, hi, word", [(0.01, 0.2, "above"), (-0.2, -0.01, "below"), (-0.1, 0.1, "indistinguishable from"),
                                          (0.0, 0.1, "indistinguishable from")])
def test_vs_zero(lo, hi, word):
    assert H.vs_zero(ci(0.0, lo, hi)) == word


def test_tost_word_gives_no_verdict_on_a_zero_width_interval():
    assert H.tost_word({"ci_low": -0.094, "ci_high": -0.094, "verdict": "different"}) == "no spread: no verdict"
    assert H.tost_word({"ci_low": None, "ci_high": None, "verdict": "no interval (one seed)"}) == "no interval (one seed)"
    e = {"ci_low": -0.02, "ci_high": 0.03, "verdict": "equivalent", "verdict_holm": "underpowered"}
    assert (H.tost_word(e), H.tost_word(e, "verdict_holm")) == ("equivalent", "underpowered")


@pytest.mark.parametrize("gaps, diffs, word", [
    ([1.0, 2.0], [0.0, 0.03], "agrees"),  # [-17.6, +20.6] holds both
    ([1.0, 30.0], [0.0, 0.03], "partly"),
    ([-30.0, -25.0], [0.0, 0.03], "disagrees"),
    ([-6.0, 6.0], [0.0, 0.03], H.SPLIT),  # the paper's models on both sides, 12 > 2 x 5 points apart
    ([-4.0, 4.0], [0.0, 0.03], "agrees"),  # both sides but within twice the margin: an ordinary reading
])
def test_agreement_with_the_papers_gaps(gaps, diffs, word):
    assert H.agreement(gaps, diffs, 5.0).split(":")[0] == word


def test_disagreement_names_the_side():
    assert "lies below the paper's gaps" in H.agreement([9.0], [0.0, 0.002], 5.0)
    assert "lies above the paper's gaps" in H.agreement([-9.0], [0.0, 0.002], 5.0)


@pytest.mark.parametrize("e, reading", [
    ({"ci_low": -0.1, "ci_high": 0.1, "direction": None, "verdict": "equivalent"}, ("no side", "equivalent")),
    ({"ci_low": 0.1, "ci_high": 0.3, "direction": "above grpo", "verdict": "different"}, ("above", "different")),
    ({"ci_low": 0.1, "ci_high": 0.1, "direction": "above grpo", "verdict": "different"}, None),
    ({"ci_low": None, "ci_high": None, "direction": None, "verdict": "no interval (one seed)"}, None),
])
def test_two_readings(e, reading):
    assert H.two_readings(e) == reading


@pytest.mark.parametrize("mine, other, word", [
    (("above", "different"), ("below", "different"), "disagrees"),  # opposite directions
    (("no side", "equivalent"), ("no side", "different"), "disagrees"),  # equivalent against different
    (("above", "underpowered"), ("above", "different"), "agrees"),  # the same side of GRPO
    (("no side", "underpowered"), ("no side", "equivalent"), "cannot tell (underpowered)"),  # too wide to contradict
    (("no side", "not shown equivalent"), ("below", "different"), "cannot tell (underpowered)"),
    (("no side", "equivalent"), ("no side", "equivalent"), "agrees"),
    (None, ("no side", "equivalent"), "cannot tell (one seed)"),
])
def test_micro_word(mine, other, word):
    assert H.micro_word(mine, other) == word


def test_noise_word_sets_the_evaluation_noise_against_the_seed_spread_without_it():
    assert H.noise_word({"eval_sd": 0.008, "seed_sd": None}) == "no seed spread yet (one seed)"
    assert H.noise_word({"eval_sd": 0.03, "seed_sd": 0.05}) == (
        "sd over seeds 5.0, 4.0 without the evaluation noise: the evaluation noise is below it")
    # the seed sd is above the noise, but what is left of it once the noise is taken out is not
    assert H.noise_word({"eval_sd": 0.04, "seed_sd": 0.05}).endswith("3.0 without the evaluation noise: the evaluation "
                                                                     "noise is NOT below it (more samples would help)")


@pytest.mark.parametrize("g, gb, word", [
    (ci(0.1, 0.05, 0.15), ci(-0.2, -0.3, -0.1), "gains at the training T, ends below the base's best"),
    (ci(-0.1, -0.15, -0.05), ci(0.02, -0.05, 0.09), "loses at the training T, ends indistinguishable from the base's best"),
    (ci(0.0, -0.1, 0.1), ci(0.2, 0.1, 0.3), "no change shown at the training T, ends above the base's best"),
    (ci(-0.2, -0.2, -0.2), ci(-0.5, -0.5, -0.5), "no spread: no verdict"),
    (ci(-0.2, None, None), ci(-0.5, None, None), "one seed: no verdict"),
])
def test_sft_word_reads_whether_an_arm_moves_and_where_it_ends(g, gb, word):
    assert H.sft_word(g, gb) == word
