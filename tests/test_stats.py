"""The statistics behind the verdicts: t quantiles at any level, intervals, TOST and its verdict
rules, the seeds TOST needs, Holm's correction, the seed-and-problem bootstrap."""

import math
import random

import pytest

from course_lib import DATA_DIR
from course_lib import reproduce as R
from course_lib import stats as S


# t quantiles from standard tables (two-sided 95% and 90%, and 99%, 80% at a few df)
@pytest.mark.parametrize("df, q, t", [
    (1, 0.975, 12.7062), (2, 0.975, 4.3027), (4, 0.975, 2.7764), (9, 0.975, 2.2622), (30, 0.975, 2.0423),
    (40, 0.975, 2.0211), (60, 0.975, 2.0003), (120, 0.975, 1.9799), (10**6, 0.975, 1.9600),
    (4, 0.95, 2.1318),
    (4, 0.995, 4.6041), (1, 0.995, 63.6567), (2, 0.995, 9.9248), (10, 0.9, 1.3722), (3, 0.8, 0.9785),
    (40, 0.995, 2.7045), (2, 0.025, -4.3027), (5, 0.5, 0.0),
])
def test_t_quantile_at_any_level(df, q, t):
    assert S.t_quantile(df, q) == pytest.approx(t, abs=2e-4)


# t CDF: closed forms at df 1 (Cauchy: 1/2 + atan(x)/pi) and df 2 (1/2 + x / (2 sqrt(2 + x^2))), tables
@pytest.mark.parametrize("x, df, p", [(0.0, 3, 0.5), (12.7062, 1, 0.975), (1.0, 1, 0.75), (-2.1318, 4, 0.05),
                                      (1.96, 10**6, 0.975), (2.0, 2, 0.5 + 1 / math.sqrt(6))])
def test_t_cdf(x, df, p):
    assert S.t_cdf(x, df) == pytest.approx(p, abs=1e-4)


@pytest.mark.parametrize("df, q", [(0, 0.975), (-1, 0.95), (3, 0.0), (3, 1.0), (3, 1.5)])
def test_t_quantile_refuses(df, q):
    with pytest.raises(ValueError, match="df >= 1|q in"):
        S.t_quantile(df, q)


@pytest.mark.parametrize("values, level, mean, half", [
    ([1, 2, 3], 0.95, 2.0, 4.3027 / math.sqrt(3)),            # std 1, df 2
    ([0.10, 0.30], 0.95, 0.20, 12.7062 * math.sqrt(0.02) / math.sqrt(2)),  # std 0.1414, df 1
    ([5, 5, 5, 5], 0.95, 5.0, 0.0),                           # no spread, no width
    ([0.2, None, 0.4, 0.3], 0.95, 0.3, 4.3027 * 0.1 / math.sqrt(3)),  # None (no such answers) left out
    ([1, 2, 3], 0.90, 2.0, 2.9200 / math.sqrt(3)),
    ([1, 2, 3], 0.99, 2.0, 9.9248 / math.sqrt(3)),            # the level asked for, not a 90% one
    ([1, 2, 3, 4, 5], 0.80, 3.0, 1.5332 * math.sqrt(2.5) / math.sqrt(5)),
])
def test_mean_ci_is_a_t_interval_at_the_level_asked(values, level, mean, half):
    ci = S.mean_ci(values, level)
    assert ci["mean"] == pytest.approx(mean)
    assert ci["half_width"] == pytest.approx(half, rel=1e-4)
    assert ci["ci_low"] == pytest.approx(mean - half, rel=1e-4, abs=1e-12)


def test_values_equal_but_for_float_rounding_have_no_width():
    # three seeds that each scored 8 of 640 (one computed as a difference): without the rule the
    # interval had a width of about 1e-16 and TOST read it as a verdict
    ci = S.mean_ci([0.0125, 0.0125, 0.0125])
    assert ci["std"] == 0.0 and ci["ci_low"] == ci["ci_high"]
    assert S.mean_ci([0.1375 - 0.125, 0.2625 - 0.25, 0.0125])["half_width"] == 0.0
    assert S.mean_ci([0.0125, 0.0125 + 1e-9])["half_width"] > 0  # a real difference keeps its width


@pytest.mark.parametrize("values, n", [([0.7], 1), ([], 0), ([None], 0)])
def test_mean_ci_without_an_interval(values, n):
    ci = S.mean_ci(values)
    assert ci["n"] == n and ci["half_width"] is None and ci["ci_low"] is None


@pytest.mark.parametrize("level", [0, 1, 95, -0.5, 1.2])
def test_mean_ci_refuses_a_level_outside_0_1(level):
    with pytest.raises(ValueError, match="level in"):
        S.mean_ci([1, 2, 3], level)


# paired differences (arm - grpo) -> TOST verdict and direction at a 5-point margin
@pytest.mark.parametrize("diffs, verdict, direction", [
    ([0.01, -0.01, 0.0, 0.02, -0.02], "equivalent", None),
    ([0.031, 0.029, 0.030, 0.032, 0.028], "equivalent", "above GRPO"),   # equivalent and above: both said
    ([0.06, 0.07, 0.08, 0.065, 0.075], "different", "above GRPO"),       # 90% interval beyond +margin
    ([-0.06, -0.07, -0.08], "different", "below GRPO"),
    ([0.02, 0.08, 0.05, 0.03, 0.065], "underpowered", "above GRPO"),     # straddles, estimate inside
    ([0.04, 0.09, 0.07, 0.05, 0.085], "not shown equivalent", "above GRPO"),  # straddles, estimate beyond
    ([0.1, -0.1, 0.05], "underpowered", None),                           # contains 0: not equivalent
    ([0.0], "no interval (one seed)", None),
    ([0.0, 0.0, 0.0], "equivalent", None),                               # zero width inside the margin
    ([0.06, 0.06, 0.06], "different", "above GRPO"),                     # zero width beyond it
])
def test_tost_verdicts(diffs, verdict, direction):
    row = S.tost(diffs, 0.05)
    assert (row["verdict"], row["direction"]) == (verdict, direction)
    assert row["equivalent"] == (verdict == "equivalent")


def test_underpowered_is_never_said_of_a_difference_beyond_the_margin():
    # SmolLM2's sft+ row: +6.8 points, 90% interval [+3.9, +9.8] at a 5-point margin
    row = S.tost([0.035, 0.068, 0.101], 0.05)
    assert row["ci_low"] < 0.05 < row["diff"] < row["ci_high"]
    assert row["verdict"] == "not shown equivalent" and row["seeds_needed"] is None
    assert S.seeds_for_tost(0.03, 0.05, diff=0.068) is None and S.seeds_for_tost(0.03, 0.05, diff=-0.05) is None


def test_min_margin_is_the_smallest_margin_that_passes_and_p_agrees_with_the_interval():
    rng = random.Random(1)
    for _ in range(50):
        diffs = [rng.gauss(0.01, 0.02) for _ in range(rng.randint(2, 8))]
        row = S.tost(diffs, 0.05)
        m = row["min_margin"]
        assert m == max(abs(row["ci_low"]), abs(row["ci_high"]))
        assert S.tost(diffs, m * 1.001)["equivalent"] and not S.tost(diffs, m * 0.999)["equivalent"]
        assert S.tost(diffs, m * 1.001)["p_tost"] < S.ALPHA < S.tost(diffs, m * 0.999)["p_tost"]
        assert (row["p_tost"] < S.ALPHA) == row["equivalent"]


def test_seeds_for_tost_gives_the_power_it_promises():
    assert S.seeds_for_tost(0.02, 0.05) == 4 and S.seeds_for_tost(0.03, 0.03) == 11
    assert S.seeds_for_tost(0.02, 0.05) < S.seeds_for_tost(0.03, 0.05) < S.seeds_for_tost(0.03, 0.03)
    assert S.seeds_for_tost(0.03, 0.05, diff=0.031) > S.seeds_for_tost(0.03, 0.05)  # near the margin: more
    for diff, sd, margin in ((0.0, 0.03, 0.04), (0.02, 0.02, 0.05)):
        rng = random.Random(0)
        n = S.seeds_for_tost(sd, margin, diff=diff)
        passed = sum(S.tost([rng.gauss(diff, sd) for _ in range(n)], margin)["equivalent"] for _ in range(2000))
        assert 0.75 <= passed / 2000 <= 0.92, (diff, n, passed)


@pytest.mark.parametrize("ps, adjusted", [
    ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),
    ([0.5], [0.5]),
    ([None, 0.01, 0.02], [None, 0.02, 0.02]),  # None is not in the family
    ([0.4, 0.4], [0.8, 0.8]),
    ([0.6, 0.7], [1.0, 1.0]),                  # capped at 1
    ([], []),
])
def test_holm(ps, adjusted):
    assert S.holm(ps) == pytest.approx(adjusted)


def test_equivalence_rows_carry_the_family_and_the_margin_against_grpos_gain():
    # the shipped micro reproduction: 8 of 10 rows equivalent at 5 points, 3 after Holm
    rows = S.equivalence(R.load_results(DATA_DIR / "results" / "micro_results.json")["runs"], 0.05)
    assert sum(r["verdict"] == "equivalent" for r in rows) == 8
    assert sorted((r["task"], r["objective"]) for r in rows if r["verdict_holm"] == "equivalent") == [
        ("countdown-micro", "sft+"), ("gsm8k-micro", "grpo-no-kl"), ("gsm8k-micro", "sft+-")]
    sft = next(r for r in rows if (r["task"], r["objective"]) == ("gsm8k-micro", "sft+"))
    assert sft["verdict"] == "equivalent" and sft["direction"] == "above GRPO"  # equivalent yet above
    assert sft["min_margin"] == pytest.approx(0.0498, abs=1e-4) and sft["p_tost"] == pytest.approx(0.0486, abs=1e-4)
    assert all(r["margin_share_of_gain"] == pytest.approx(0.05 / r["reference_gain"]) for r in rows)
    assert all(r["verdict_holm"] != "equivalent" or r["verdict"] == "equivalent" for r in rows)


def test_summary_pairs_the_difference_to_grpo_by_seed():
    runs = [dict(task="t", objective=o, aggregation="sequence", seed=s, final_accuracy=acc)
            for o, accs in (("grpo", (0.2, 0.4, 0.3)), ("sft+", (0.25, 0.45, 0.35))) for s, acc in enumerate(accs)]
    sft = next(e for e in S.summarize(runs) if e["objective"] == "sft+")
    (eq,) = S.equivalence(runs, 0.04)
    assert eq["diff"] == pytest.approx(0.05) and eq["ci_low"] == pytest.approx(0.05)  # zero width
    assert not eq["equivalent"] and eq["verdict"] == "different"  # zero width at +5 points, margin 4
    assert sft["diff_vs_grpo"]["mean"] == pytest.approx(0.05)
    assert sft["diff_vs_grpo"]["half_width"] == pytest.approx(0.0, abs=1e-12)  # paired: no spread
    assert sft["final_accuracy"]["half_width"] > 0.2  # unpaired: wide


@pytest.mark.parametrize("table", [
    [[0.915, 0.95, 1.0, 0.9], [0.9374, 1.0, 0.9, 0.95]],  # a t-interval over these 2 seeds passes 1
    [[1.0, 1.0, 1.0]],
    [[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
    [[0.3]],
])
def test_bootstrap_over_seeds_and_problems_stays_in_0_1(table):
    ci = S.bootstrap_ci(table)
    assert 0.0 <= ci["ci_low"] <= ci["mean"] <= ci["ci_high"] <= 1.0
    assert ci == S.bootstrap_ci(table)  # seeded
    assert (ci["n_seeds"], ci["n_problems"]) == (len(table), len(table[0]))


def test_bootstrap_covers_the_problems_drawn():
    # two seeds that agree exactly, problems that differ: the t-interval over seeds has zero width
    table = [[1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]] * 2
    assert S.mean_ci([sum(r) / len(r) for r in table])["half_width"] == 0.0
    ci = S.bootstrap_ci(table)
    assert ci["ci_high"] - ci["ci_low"] > 0.3


@pytest.mark.parametrize("table, level", [([], 0.95), ([1, 0], 0.95), ([[0.5]], 1.0)])
def test_bootstrap_refuses(table, level):
    with pytest.raises(ValueError, match="bootstrap_ci needs"):
        S.bootstrap_ci(table, level)


@pytest.mark.parametrize("correct, n, k, mean", [
    ([[0, 4, 1], [1, 4, 0]], 4, 2, (0 + 1 + 0.5 + 0.5 + 1 + 0) / 6),
    ([[4, 4], [4, 4]], 4, 1, 1.0),
    ([[0, 0, 0]], 8, 8, 0.0),
    ([[1] * 40, [0] * 40], 256, 256, 0.5),  # one seed solves all, the other none
])
def test_pass_at_k_ci_from_per_problem_counts(correct, n, k, mean):
    ci = S.pass_at_k_ci(correct, n, k)
    assert ci["mean"] == pytest.approx(mean)
    assert 0.0 <= ci["ci_low"] <= ci["mean"] <= ci["ci_high"] <= 1.0


# ------------------------------------------------- pass@k with counts, the sweep, evaluation noise


def _run(obj, seed, correct, *, task="t", lr=None, n=8, sweep=None, repeat=None, t=0.6):
    from course_lib.evaluate import pass_at_k_curve

    return {"task": task, "objective": obj, "seed": seed, "aggregation": "sequence", "mu": 1, "learning_rate": lr,
            "final_accuracy": 0.5, "temperature": t, "temperature_sweep": sweep, "eval_repeat": repeat,
            "pass_at_k": {str(k): v for k, v in pass_at_k_curve(correct, n, (1, 8)).items()},
            "pass_at_k_counts": {"split": "hard", "n": n, "correct": correct}}


def _base(correct, n=8, sweep=None):
    from course_lib.evaluate import pass_at_k_curve

    return {"pass_at_k": {str(k): v for k, v in pass_at_k_curve(correct, n, (1, 8)).items()},
            "pass_at_k_counts": {"split": "hard", "n": n, "correct": correct}, "temperature_sweep": sweep}


@pytest.mark.parametrize("base_correct, run_correct, verdict", [
    ([8] * 40, [8] * 40, "saturated"),                 # the base at 100%: a ceiling decides nothing
    ([0] * 30 + [1] * 10, [1] * 40, "above base"),     # the trained model solves problems the base never did
    ([0] * 10 + [1] * 30, [0] * 30 + [1] * 10, "below base"),
    ([0, 1] * 20, [1, 0] * 20, "no difference shown"),
])
def test_pass_at_k_rows_bootstrap_inside_0_1_with_split_and_a_verdict_at_the_top_k(base_correct, run_correct,
                                                                                    verdict):
    runs = [_run("grpo", s, run_correct) for s in range(3)]
    rows = S.pass_at_k_rows(runs, {"t": _base(base_correct)})
    assert {r["split"] for r in rows} == {"hard"}
    assert all(0 <= r["ci_low"] <= r["pass_at_k"] <= r["ci_high"] <= 1 for r in rows)
    top = next(r for r in rows if r["model"] == "grpo" and r["k"] == 8)
    assert top["verdict"] == verdict and "verdict" not in next(r for r in rows if r["model"] == "grpo" and r["k"] == 1)


def test_pass_at_k_against_the_base_is_paired_by_problem():
    # the model solves 8 of the base's 20 unsolved problems and keeps the rest: the two intervals
    # overlap (the problems' spread is in both), the paired difference lies above 0
    base = [0] * 20 + [3] * 40
    runs = [_run("grpo", s, [1] * 8 + [0] * 12 + [3] * 40) for s in range(3)]
    rows = S.pass_at_k_rows(runs, {"t": _base(base)})
    top, b = (next(r for r in rows if r["model"] == m and r["k"] == 8) for m in ("grpo", "base"))
    assert top["ci_low"] < b["ci_high"]  # unpaired: no difference could be shown
    assert top["verdict"] == "above base" and 0 < top["vs_base"]["ci_low"] <= top["vs_base"]["mean"]
    assert top["vs_base"]["mean"] == pytest.approx(top["pass_at_k"] - b["pass_at_k"])
    assert S.pass_at_k_ci([[4, 0]], 4, 1, base=[0, 0])["mean"] == 0.5
    with pytest.raises(ValueError):  # not the same problems
        S.pass_at_k_ci([[4, 0, 1]], 4, 1, base=[0, 0])


def test_pass_at_k_rows_read_older_records_without_counts():
    old = [{**_run("grpo", s, [4, 8]), "pass_at_k_counts": None} for s in range(2)]
    rows = S.pass_at_k_rows(old, {"t": {"1": 0.5, "8": 1.0}})  # an older base file: the curve itself
    assert [(r["model"], r["k"], r["split"]) for r in rows] == [("base", 1, "test"), ("base", 8, "test"),
                                                                ("grpo", 1, "test"), ("grpo", 8, "test")]
    assert rows[-1]["verdict"] == "saturated"


def test_pass_at_k_counts_are_one_row_per_model_and_seed():
    rows = S.pass_at_k_counts([_run("sft+", 3, [0, 2, 8])], {"t": _base([1, 0, 0])})
    assert rows == [{"task": "t", "model": "base", "seed": None, "split": "hard", "n": 8, "problem": [0, 1, 2],
                     "correct": [1, 0, 0]},
                    {"task": "t", "model": "sft+", "seed": 3, "split": "hard", "n": 8, "problem": [0, 1, 2],
                     "correct": [0, 2, 8]}]


def test_temperature_sweep_reports_gains_against_the_base_at_its_best_and_the_controls_share():
    base = {"t": _base([0], sweep={"0.3": 0.30, "0.6": 0.25, "1.0": 0.20, "greedy": 0.28})}
    runs = [_run("grpo", s, [0], sweep={"0.3": 0.4, "0.6": a, "1.0": 0.3, "greedy": 0.4}) for s, a in
            enumerate((0.44, 0.46))] + [_run("confidence", s, [0], sweep={"0.3": 0.3, "0.6": a, "1.0": 0.2,
                                                                           "greedy": 0.3}) for s, a in
                                        enumerate((0.29, 0.31))]
    rows = {r["model"]: r for r in S.temperature_sweep(runs, base)}
    assert rows["base"]["best"] == "0.3" and rows["base"]["acc"]["0.6"]["mean"] == 0.25
    g = rows["grpo"]
    assert g["temperature"] == "0.6" and g["acc"]["0.6"]["mean"] == pytest.approx(0.45)
    assert g["gain"]["mean"] == pytest.approx(0.20) and g["gain_vs_best_base"]["mean"] == pytest.approx(0.15)
    assert g["gain"]["ci_low"] < 0.20 < g["gain"]["ci_high"]  # 95% over seeds
    assert g["control_share"] == pytest.approx(0.05 / 0.20) and "control_share" not in rows["confidence"]
    assert g["control_share_vs_best"] == pytest.approx((0.30 - 0.30) / 0.15)  # the control: no gain over the best
    assert S.temperature_sweep(runs, {"t": _base([0])}) == []  # no base sweep: nothing to measure against


@pytest.mark.parametrize("repeats, eval_sd, seed_sd", [
    ([(0.40, 0.40), (0.50, 0.50)], 0.0, math.sqrt(0.005)),
    ([(0.40, 0.42), (0.44, 0.42)], 0.02 / math.sqrt(2), math.sqrt(0.0008)),
])
def test_eval_noise_compares_one_evaluations_sd_with_the_seed_spread(repeats, eval_sd, seed_sd):
    runs = [_run("grpo", s, [0], repeat=list(r)) for s, r in enumerate(repeats)]
    (row,) = S.eval_noise(runs)
    assert row["runs"] == 2 and row["eval_sd"] == pytest.approx(eval_sd) and row["seed_sd"] == pytest.approx(seed_sd)


def test_arms_of_different_learning_rates_are_never_pooled_or_paired_across():
    runs = [{"task": "t", "objective": o, "seed": s, "aggregation": "sequence", "learning_rate": lr,
             "final_accuracy": acc + s / 100} for lr, acc in ((1e-4, 0.3), (3e-4, 0.6)) for o in ("grpo", "sft+")
            for s in range(2)]
    assert sorted((e["objective"], e["learning_rate"], e["n"]) for e in S.summarize(runs)) == [
        ("grpo", 1e-4, 2), ("grpo", 3e-4, 2), ("sft+", 1e-4, 2), ("sft+", 3e-4, 2)]
    assert S.paired(runs, ("t", "sft+", "sequence", 1, 3e-4, "adamw"), "grpo") == [0.0, 0.0]


def test_arms_of_different_optimizers_are_never_pooled_or_paired_across():
    # grpo and sft+- with AdamW and with plain SGD at the same rate: only the optimizer tells them apart
    runs = [{**_run(o, s, [0, 8], lr=1e-4, sweep={"0.6": acc + s / 100}), "final_accuracy": acc + s / 100,
             "gain": acc - 0.2, **({"optimizer": "sgd"} if opt == "sgd" else {})}
            for opt, off in (("adamw", 0.0), ("sgd", 0.2)) for o, acc in (("grpo", 0.3 + off), ("sft+-", 0.32 + off))
            for s in range(3)]
    summary = {(e["objective"], e.get("optimizer", "adamw")): e for e in S.summarize(runs)}
    assert sorted((k, e["n"]) for k, e in summary.items()) == [
        (("grpo", "adamw"), 3), (("grpo", "sgd"), 3), (("sft+-", "adamw"), 3), (("sft+-", "sgd"), 3)]
    assert summary["grpo", "sgd"]["final_accuracy"]["mean"] == pytest.approx(0.51)
    assert "optimizer" not in summary["grpo", "adamw"]  # AdamW's rows read as before the field existed
    # sft+- with SGD is paired with grpo with SGD (+0.02), never with grpo with AdamW (+0.22)
    assert S.paired(runs, ("t", "sft+-", "sequence", 1, 1e-4, "sgd"), "grpo") == pytest.approx([0.02] * 3)
    eq = {e.get("optimizer", "adamw"): e for e in S.equivalence(runs, 0.05)}
    assert set(eq) == {"adamw", "sgd"} and eq["sgd"]["diff"] == pytest.approx(0.02)
    assert eq["sgd"]["reference_gain"] == pytest.approx(0.3) and eq["adamw"]["reference_gain"] == pytest.approx(0.1)
    base = {"t": _base([0, 8], sweep={"0.6": 0.2})}
    sweep = {(r["model"], r.get("optimizer", "adamw")): r for r in S.temperature_sweep(runs, base)}
    assert sweep["grpo", "sgd"]["seeds"] == 3 and sweep["grpo", "sgd"]["gain"]["mean"] == pytest.approx(0.31)
    # pass@k compares the main arms: the SGD runs are not pooled into the objective's curve
    assert {(r["model"], r["n"]) for r in S.pass_at_k_rows(runs, base)} == {("base", 1), ("grpo", 3), ("sft+-", 3)}


@pytest.mark.parametrize("key, skip, fields", [
    (("t", "grpo", "sequence", 1, 1e-4, "adamw"), (),
     {"task": "t", "objective": "grpo", "aggregation": "sequence", "mu": 1, "learning_rate": 1e-4}),
    (("t", "grpo", "sequence", 4, 0.2, "sgd"), ("aggregation",),
     {"task": "t", "objective": "grpo", "mu": 4, "learning_rate": 0.2, "optimizer": "sgd"}),
])
def test_arm_fields_name_the_optimizer_only_when_not_adamw(key, skip, fields):
    assert S.arm_fields(key, *skip) == fields
    assert S.arm_key({**fields, "aggregation": "sequence"}) == (*key[:2], "sequence", *key[3:])
