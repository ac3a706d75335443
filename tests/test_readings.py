"""The reading rules notebook 06 and README's real-model section share (notebooks/course_helpers.py):
each verdict word on the intervals that should and should not give it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
import course_helpers as H  # noqa: E402

from course_lib import stats  # noqa: E402


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
    (("no side", "underpowered"), ("no side", "equivalent"), "cannot tell (too wide)"),  # too wide to contradict
    (("no side", "not shown equivalent"), ("below", "different"), "cannot tell (too wide)"),
    (("no side", "equivalent"), ("no side", "equivalent"), "agrees"),
    (None, ("no side", "equivalent"), "cannot tell (one seed)"),
])
def test_micro_word(mine, other, word):
    assert H.micro_word(mine, other) == word


def test_noise_word_sets_the_evaluation_noise_against_the_seed_spread_without_it():
    assert H.noise_word({"eval_sd": 0.008, "seed_sd": None}) == "no seed spread yet (one seed)"
    assert H.noise_word({"eval_sd": 0.03, "seed_sd": 0.05}) == (
        "sd over seeds 5.0 pooled over arms, 4.0 without the evaluation noise: the evaluation noise is below it")
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


def test_arm_name_names_the_rate_and_aggregation_only_where_they_differ_from_the_plan():
    run = {"objective": "sft-", "learning_rate": 1e-4, "aggregation": "sequence"}
    assert H.arm_name(run) == "sft-"
    assert H.arm_name({**run, "learning_rate": 1e-5}) == "sft- lr 1e-5"
    assert H.arm_name({**run, "objective": "grpo", "aggregation": "token"}) == "grpo token"


def _run(obj, seed, acc, lr=1e-4):
    return {"task": "arith", "objective": obj, "aggregation": "sequence", "learning_rate": lr, "seed": seed,
            "eval_repeat": [acc, acc]}


def test_noise_word_names_the_arms_whose_seeds_land_within_the_evaluation_noise():
    runs = [_run("grpo", 0, 0.50), _run("grpo", 1, 0.60), _run("sft+", 0, 0.80), _run("sft+", 1, 0.805),
            _run("sft-", 0, 0.3)]  # sft- has one seed: no spread to read
    n = {"task": "arith", "eval_sd": 0.01, "seed_sd": 0.05}
    word = H.noise_word(n, runs)
    assert word.startswith("sd over seeds 5.0 pooled over arms, 4.9 without the evaluation noise: the evaluation noise is below it")
    assert word.endswith("; arm by arm, below it in 1 of 2 (not in sft+ 0.4 -> 0.0 with the evaluation noise taken out)")
    assert H.noise_word(n, runs[:2]).endswith("arm by arm, below it in 1 of 1")


def _ab(seq, tok):  # aggregation -> seed -> run with the three measures of 10e
    keys = ("len_incorrect_complete", "share_incorrect_guess", "final_truncated")
    return {"sequence": {s: dict(zip(keys, v)) for s, v in enumerate(seq)},
            "token": {s: dict(zip(keys, v)) for s, v in enumerate(tok)}}


def _d(ab):
    return {k: H.ab_diff(ab, k) for k in ("len_incorrect_complete", "share_incorrect_guess", "final_truncated")}


def test_ab_diff_pairs_by_seed_and_leaves_out_a_seed_without_a_value():
    ab = _ab([(20, 0.1, 0.0), (22, 0.1, 0.0), (None, 0.1, 0.0)], [(18, 0.1, 0.0), (19, 0.1, 0.0), (30, 0.1, 0.0)])
    d = H.ab_diff(ab, "len_incorrect_complete")
    assert d["n"] == 2 and d["mean"] == pytest.approx(2.5)


def test_length_word_on_notebook_07s_rule_with_the_mix_beside_it():
    longer = _ab([(25, 0.1, 0.0), (27, 0.1, 0.0), (26, 0.1, 0.0)], [(20, 0.1, 0.0), (21, 0.1, 0.0), (20, 0.1, 0.0)])
    assert H.length_word(_d(longer)) == "supports the 1/|o| length claim"
    mixed = _ab([(25, 0.3, 0.0), (27, 0.33, 0.0), (26, 0.31, 0.0)], [(20, 0.1, 0.0), (21, 0.12, 0.0), (20, 0.11, 0.0)])
    assert H.length_word(_d(mixed)) == ("supports the 1/|o| length claim (the share of wrong answers without an = "
                                        "differs between the arms)")
    shorter = _ab([(20, 0.1, 0.0), (21, 0.1, 0.0)], [(25, 0.1, 0.0), (26, 0.1, 0.0)])
    assert H.length_word(_d(shorter)) == "inconclusive (no spread)"  # -5 tokens in both seeds
    assert H.length_word(_d(_ab([(20, 0.1, 0.0)], [(25, 0.1, 0.0)]))) == "inconclusive (one seed: no interval)"
    assert H.length_word(_d(_ab([(20, 0.1, 0.0), (30, 0.1, 0.0)], [(25, 0.1, 0.0), (24, 0.1, 0.0)]))) == "inconclusive"


def _row(obj, lo, hi, direction, verdict, n=3):
    return {"objective": obj, "ci_low": lo, "ci_high": hi, "direction": direction, "verdict": verdict, "n": n}


def test_beside_reads_a_row_against_the_micro_row_and_the_papers_gaps():
    paper = [{"grpo": 70.0, "sft+": 72.0, "sft+-": 69.0}, {"grpo": 60.0, "sft+": 61.0, "sft+-": 59.0}]
    micro = _row("sft+-", -0.02, 0.02, None, "equivalent")
    tight = _row("sft+-", -0.02, 0.01, None, "equivalent")
    diffs = [-0.01, -0.005, 0.0]
    assert H.beside(tight, micro, paper, diffs, 0.05) == (("no side", "equivalent"), ("no side", "equivalent"), "agrees", "agrees")
    wide = _row("sft+-", -0.3, 0.3, None, "underpowered")
    out = H.beside(wide, micro, paper, [-0.3, 0.0, 0.3], 0.05)
    assert out[2:] == ("cannot tell (too wide)", "cannot tell (too wide)")  # it holds the gaps only because it is wide
    assert H.beside(_row("sft-", -0.1, -0.1, "below grpo", "different"), micro, paper, [-0.1, -0.1], 0.05)[2:] == (
        "cannot tell (no spread)", "cannot tell (no spread)")
    assert H.beside(_row("sft-", None, None, None, "no interval (one seed)", n=1), micro, paper, [-0.1], 0.05)[2:] == (
        "cannot tell (one seed)", "cannot tell (one seed)")
    far = _row("sft+", 0.08, 0.12, "above grpo", "different")  # sft+ 10 points above grpo; the paper's gaps +2, +1
    assert H.beside(far, _row("sft+", 0.0, 0.03, None, "equivalent"), paper, [0.08, 0.1, 0.12], 0.05)[2:] == (
        "disagrees", "disagrees")


def test_seed_precisions_names_each_seeds_precision_and_refuses_a_seed_that_mixes_two():
    runs = [{"seed": 0}, {"seed": 0}, {"seed": 3, "precision": "fp32"}, {"seed": 1}]
    assert H.seed_precisions(runs, "bf16") == {0: "bf16", 1: "bf16", 3: "fp32"}
    with pytest.raises(ValueError, match="more than one precision: {0: \\['bf16', 'fp32'\\]}"):
        H.seed_precisions(runs + [{"seed": 0, "precision": "fp32"}], "bf16")


@pytest.mark.parametrize("first, late, word", [
    ([0.40, 0.41, 0.42], [0.45], "bf16 41.0, fp32 45.0: no interval yet"),  # one later seed: no interval
    # Welch by hand: se 0.00764, df 2.9 -> t(2) 4.303, half-width 3.3 points
    ([0.40, 0.41, 0.42], [0.41, 0.42], "fp32 - bf16 +0.5 [-2.8, +3.8]: no difference shown"),
    ([0.40, 0.41, 0.42], [0.60, 0.61], "fp32 - bf16 +19.5 [+16.2, +22.8]: they differ"),
    ([0.40, 0.40], [0.45, 0.45], "fp32 - bf16 +5.0, no spread: no interval"),
])
def test_precision_word_sets_two_groups_of_seeds_apart_with_a_welch_interval(first, late, word):
    assert H.precision_word(first, late, ("bf16", "fp32")) == word


def test_precision_words_reads_the_base_and_each_arm_where_both_precisions_have_seeds():
    runs = [{"task": "t", "seed": s, "objective": o, "learning_rate": 1e-4, "aggregation": "sequence",
             "base_accuracy": 0.4 + 0.01 * s, "final_accuracy": 0.9} for s in (0, 1, 3) for o in ("grpo", "sft+")]
    runs = [r for r in runs if (r["seed"], r["objective"]) != (3, "sft+")]  # sft+ has no fp32 seed yet
    prec = {0: "bf16", 1: "bf16", 3: "fp32"}
    assert H.precision_words(runs, "t", ["grpo", "sft+"], prec, "bf16", "fp32") == [
        "base at step 0 bf16 40.5, fp32 43.0: no interval yet", "grpo bf16 90.0, fp32 90.0: no interval yet"]


def _cut_run(seed, acc, cut, base_acc=0.4, base_cut=0.2):
    return {"seed": seed, "final_accuracy": acc, "final_truncated": cut, "base_accuracy": base_acc, "base_truncated": base_cut}


def test_finished_word_reads_accuracy_among_the_answers_the_cap_did_not_cut_paired_by_seed():
    # a cut answer scores wrong, so accuracy among the uncut ones is accuracy / (1 - cut): the base 0.4 / 0.8 = 50%
    same = [_cut_run(0, 0.25, 0.5), _cut_run(1, 0.26, 0.5), _cut_run(2, 0.24, 0.5)]  # 50%, 52%, 48% of the uncut
    word, side = H.finished_word(same)
    assert side == "neither" and word.startswith("right among uncut answers 50.0% (base 50.0%): +0.0 [")
    assert word.endswith("points, no difference shown (a selection that favours the arm)")
    worse = [_cut_run(0, 0.10, 0.5), _cut_run(1, 0.12, 0.5), _cut_run(2, 0.11, 0.5)]  # 20-24% of the uncut, against 50%
    assert H.finished_word(worse)[1] == "below" and H.finished_word(worse)[0].endswith("below the base's even there")
    better = [_cut_run(s, 0.8 + s / 100, 0.0) for s in range(3)]
    assert H.finished_word(better)[1] == "above" and H.finished_word(better)[0].endswith("(a selection that favours the arm)")
    assert H.finished_word(same[:1]) == ("right among uncut answers 50.0% (base 50.0%): +0.0 points (one seed), no interval", None)
    assert H.finished_word([_cut_run(0, 0.0, 1.0)]) == ("every final answer cut at the cap: none ended before it", None)
    with pytest.raises(ValueError, match="every answer cut"):
        H.finished_word([_cut_run(0, 0.2, 0.5, base_acc=0.0, base_cut=1.0)])


@pytest.mark.parametrize("diffs, p", [
    ([0.1], None),                    # one seed: no test
    ([0.1, 0.1, 0.1], 0.0),           # every seed agrees, away from 0
    ([0.0, 0.0], 1.0),                # ... at 0
    ([0.04, 0.06, 0.08], 0.0353),     # t = 5.2 on 2 degrees of freedom
])
def test_paired_p_is_a_two_sided_paired_t_test(diffs, p):
    got = H.paired_p(diffs)
    assert got == p if p is None or p in (0.0, 1.0) else abs(got - p) < 5e-4


def test_learning_word_reads_section_5s_rule_and_needs_an_arm_above_the_control_where_the_control_is_not_placed():
    ci = stats.mean_ci  # noqa: F811 (this test's intervals come from values)
    up, flat, down = ci([0.10, 0.12, 0.14]), ci([-0.10, 0.02, 0.12]), ci([-0.10, -0.12, -0.14])
    clear, noisy = [0.10, 0.11, 0.12], [0.20, -0.05, 0.10]
    assert H.learning_word({"grpo": up}, up, {"grpo": clear})[2] == "sharpening"
    assert H.learning_word({"grpo": flat}, flat, {"grpo": clear}) == ([], [], "no learning shown")
    assert H.learning_word({"grpo": up}, down, {"grpo": noisy}) == (["grpo"], ["grpo"], "learning from the reward")
    # the control's interval holds 0: the arm must be shown above the control itself, paired by seed
    assert H.learning_word({"grpo": up, "sft+": up}, flat, {"grpo": clear, "sft+": noisy}) == (
        ["grpo", "sft+"], ["grpo"], "learning from the reward (grpo shown above the control; adjusted p, Holm over the 2 "
        "reward-weighted arms: grpo 0.00549, sft+ 0.37)")
    assert H.learning_word({"grpo": up}, flat, {"grpo": noisy})[1:] == (
        [], "no verdict: no reward-weighted arm is shown above the control (adjusted p, Holm over the 1 reward-weighted arm: grpo 0.37)")
    # each p about 0.035 alone, 0.07 after Holm over the two arms: neither is shown
    p03 = [0.04, 0.06, 0.08]
    assert H.learning_word({"grpo": up, "sft+": up}, flat, {"grpo": p03, "sft+": p03})[1] == []
    # the family is every reward-weighted arm, not only those above the base's best: an arm below it still counts
    assert H.learning_word({"grpo": up, "sft-": down}, flat, {"grpo": p03, "sft-": noisy})[1] == []
    assert H.learning_word({"grpo": up}, flat, {"grpo": p03})[1] == ["grpo"]
    # an arm whose seeds all agree (no spread) does not block the verdict, nor does one seed paired with the control
    assert H.learning_word({"grpo": up, "sft-": ci([-0.5, -0.5, -0.5])}, flat, {"grpo": clear, "sft-": [-0.6] * 3})[1] == ["grpo"]
    assert H.learning_word({"grpo": up}, flat, {"grpo": [0.1]})[2] == (
        "no verdict: no reward-weighted arm is shown above the control (no arm with two seeds paired with the control)")
    assert H.learning_word({"grpo": ci([0.1])}, flat, {"grpo": clear})[2].startswith("no verdict yet")


def test_cap_bound_counts_every_cut_answer_right_and_sets_it_against_the_bar():
    r = _cut_run(0, 0.375, 0.15)
    assert H.cap_bound(r, 0.6) == "ends at 37.5%, and at 52.5% were every cut answer right, still under the base's best 60.0%"
    assert H.cap_bound(r, 0.525).endswith("at 52.5% were every cut answer right, at or over the base's best 52.5%")  # a tie: not under


def test_cap_row_recomputes_the_runs_tost_row_with_its_cut_answers_counted_right():
    def run(o, seed, acc, cut=0.0):
        return {"task": "t", "objective": o, "aggregation": "sequence", "learning_rate": 1e-4, "seed": seed,
                "final_accuracy": acc, "final_truncated": cut, "gain": 0.3}
    main = [run("grpo", s, 0.80 + s / 100) for s in range(4)] + [run("sft+-", s, 0.79 + s / 100) for s in range(3)]
    main.append(run("sft+-", 3, 0.50, cut=0.30))  # one seed far below, with 30% of its answers cut
    words = H.cap_row(main, main[-1], 0.05)
    # counted right, that seed sits with the others: the row would be equivalent, so the cap decides it
    assert words == ("its row against GRPO (90%, before Holm) would read -1.5 [-2.7, -0.3], equivalent, where it reads "
                     "-9.0 [-27.8, +9.8], not shown equivalent")
    main[-1] = dict(main[-1])  # a copy of the record: the run is matched by arm and seed, not by identity
    assert H.cap_row(main, dict(main[-1]), 0.05) == words
    assert H.cap_row(main, main[0], 0.05) == ""  # every row pairs with a grpo run: no one row to move


def test_tost_by_precision_names_the_rows_that_lean_on_the_other_precisions_seeds():
    from course_lib import stats

    def run(obj, seed, acc):
        return {"task": "arith", "objective": obj, "aggregation": "sequence", "learning_rate": 1e-4, "seed": seed,
                "final_accuracy": acc, "gain": 0.3}

    diffs = {0: 0.001, 1: -0.002, 2: 0.003, 3: 0.20, 4: 0.22}  # sft+ minus grpo: equal in bf16, far above in fp32
    main = [run("grpo", s, 0.5) for s in diffs] + [run("sft+", s, 0.5 + d) for s, d in diffs.items()]
    main += [run("sft-", s, 0.5 + 0.001 * (s % 2)) for s in diffs]  # equal to grpo in every seed
    prec = {0: "bf16", 1: "bf16", 2: "bf16", 3: "fp32", 4: "fp32"}
    eq = {(e["task"], e["objective"]): e for e in stats.equivalence(main, 0.05)}
    assert eq["arith", "sft+"]["verdict"] != "equivalent"  # all five seeds together
    (p0, s0, moved0, n0), (p1, s1, moved1, n1) = H.tost_by_precision(main, eq, prec, 0.05)
    assert (p0, s0, n0, p1, s1, n1) == ("bf16", [0, 1, 2], 2, "fp32", [3, 4], 2)
    assert len(moved0) == 1 and moved0[0].startswith("sft+ on arith: ") and moved0[0].endswith("-> equivalent")
    assert moved1 == [f"sft+ on arith: {eq['arith', 'sft+']['verdict']} -> different; above GRPO"]  # far from grpo in both
    assert H.tost_by_precision(main, eq, {**prec, 4: "bf16"}, 0.05)[1][2] is None  # fp32 with one seed: no interval
    fewer = [r for r in main if not (r["objective"] == "sft-" and r["seed"] == 4)]  # sft- has one fp32 seed: not read
    eq2 = {(e["task"], e["objective"]): e for e in stats.equivalence(fewer, 0.05)}
    assert H.tost_by_precision(fewer, eq2, prec, 0.05)[1][3] == 1  # only sft+ recomputed on fp32


def test_margin_span_gives_the_margins_share_over_a_gains_interval():
    assert H.margin_span(0.05, {"mean": 0.17, "ci_low": 0.034, "ci_high": 0.306}) == "16% to 147%"
    assert H.margin_span(0.05, {"mean": 0.05, "ci_low": -0.02, "ci_high": 0.12}) == "from 42%, no upper end"
    assert H.margin_span(0.05, {"mean": 0.05, "ci_low": None, "ci_high": None}) == "one seed: no range"
