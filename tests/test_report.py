"""The report: one colour per objective, percent axes with units, bands inside [0, 100], labelled
intervals in every table."""

import pytest
from matplotlib.figure import Figure

from course_lib import DATA_DIR, report
from course_lib import reproduce as R
from course_lib.objectives import OBJECTIVES

NAMES = ["grpo", "grpo-no-kl", "sft+", "sft-", "sft+-", "sft+-balanced", "sft+-sized", "gspo", "confidence", "base"]


def test_every_objective_has_its_own_colour():
    names = sorted(set(OBJECTIVES) | set(NAMES))
    assert all(n in report.COLOURS for n in names), [n for n in names if n not in report.COLOURS]
    colours = [report.colour(n) for n in names]
    assert len(set(colours)) == len(colours)


def test_pass_at_k_bands_are_clipped_to_0_100_and_axes_say_percent():
    rows = [{"task": "t", "model": "grpo", "k": k, "pass_at_k": p, "ci_low": p - 0.1, "ci_high": p + 0.1}
            for k, p in ((1, 0.05), (4, 0.6), (16, 0.97))]
    ax = Figure().subplots()
    report.pass_at_k_axes(ax, rows, "t")
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() >= 0 and ys.max() <= 100
    assert ax.get_ylabel() == "pass@k (%)" and ax.lines[0].get_color() == report.colour("grpo")
    assert ax.get_title().endswith("(bands: 95% CI over seeds)")


def test_the_pass_at_k_figure_names_its_interval(tmp_path, monkeypatch):
    # per-problem counts stored: the interval is a bootstrap over seeds and problems, and says so
    res = R.load_results(DATA_DIR / "results" / "grid_results.json")
    axes = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: axes.extend(fig.axes))
    report._pass_at_k_figure(tmp_path, res)
    assert res["pass_at_k_counts"] and axes
    assert all(ax.get_title().endswith("(bands: 95% bootstrap over seeds and problems)") for ax in axes)


def test_result_figures_use_percent_and_the_course_colours(tmp_path, monkeypatch):
    res = R.load_results(DATA_DIR / "results" / "micro_results.json")
    axes = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: axes.extend(fig.axes))
    report.result_figures(tmp_path, res)
    labels = {ax.get_ylabel() for ax in axes}
    assert {"accuracy (%)", "length (tokens)", "pass@k (%)"} <= labels
    assert all(ax.get_xlabel() for ax in axes)
    acc = next(ax for ax in axes if ax.get_ylabel() == "accuracy (%)")
    assert max(max(line.get_ydata()) for line in acc.lines) > 1  # percent, not a fraction
    assert {line.get_color() for line in acc.lines} <= set(report.COLOURS.values())


@pytest.mark.parametrize("table, label", [(report.summary_table, "± 95% over seeds"),
                                          (report.ablation_table, "± 95% over seeds"),
                                          (report.equivalence_table, "90% CI"),
                                          (report.pass_at_k_table, "[95% CI over seeds]")])
def test_every_table_header_says_what_its_intervals_are(table, label):
    header = table(R.load_results(DATA_DIR / "results" / "micro_results.json")).splitlines()[0]
    assert label in header


@pytest.mark.parametrize("args, label", [
    (("grpo",), "grpo"), (("gspo", 4), "gspo (clip 3e-4/4e-4, mu 4)"), (("gspo-eps", 4), "gspo-eps (mu 4)"),
    (("gspo", 1), "gspo"), (("grpo", 1, "adamw"), "grpo"),
    (("sft+-", 1, "sgd"), "sft+- (sgd)"), (("grpo", 4, "sgd"), "grpo (mu 4, sgd)"),
    (("sft+-", 1, "adamw", 3e-05), "sft+- (lr 3e-5)"), (("grpo", 1, "sgd", 0.2), "grpo (lr 0.2, sgd)"),
])
def test_arm_labels_name_mu_an_own_clip_range_and_an_optimizer_other_than_adamw(args, label):
    assert report.arm_label(*args) == label


@pytest.mark.parametrize("lr, text", [(3e-05, "3e-5"), (1e-4, "1e-4"), (2.5e-05, "2.5e-5"), (5e-06, "5e-6"),
                                      (0.001, "1e-3"), (0.01, "0.01"), (0.2, "0.2"), (1.0, "1")])
def test_learning_rates_print_as_the_prose_writes_them(lr, text):
    assert report.lr_text(lr) == text


def test_the_summary_signs_its_differences_and_not_its_accuracies():
    runs = R.load_results(DATA_DIR / "results" / "micro_results.json")
    rows = [line.split(" | ") for line in report.summary_table(runs).splitlines()[2:]]
    sft_minus = next(r for r in rows if r[1] == "sft-")  # worse than grpo on both micro tasks
    assert sft_minus[6].startswith("-") and rows[0][6] == "-"  # grpo has no difference to itself
    gains = [r[5] for r in rows]
    assert all(g[0] in "+-" for g in gains) and not any(r[3][0] in "+-" or r[4][0] in "+-" for r in rows)
    assert any(r[6].startswith("+") for r in rows)


def test_the_temperature_table_names_an_optimizer_other_than_adamw():
    ci = {"mean": 0.5, "half_width": 0.01}
    rows = [{"task": "t", "model": "grpo", "learning_rate": lr, "seeds": 3, "acc": {"0.6": ci, "greedy": ci},
             "gain": ci, **extra} for lr, extra in ((1e-4, {}), (0.2, {"optimizer": "sgd"}))]
    lines = report.temperature_table({"temperature_sweep": rows}).splitlines()
    assert [line.split(" | ")[1:3] for line in lines[2:]] == [["grpo", "1e-4"], ["grpo (sgd)", "0.2"]]
    assert lines[0].startswith("| task | model | lr | seeds | T=0.6 % ± 95% over seeds | greedy % ± 95% over seeds |")


def test_the_temperature_table_gives_the_controls_share_only_of_a_gain_shown_above_zero():
    def ci(m, lo):
        return {"mean": m, "half_width": None if lo is None else m - lo, "ci_low": lo, "ci_high": None if lo is None else 2 * m - lo}

    row = {"task": "t", "model": "grpo", "learning_rate": 1e-4, "seeds": 3, "acc": {"0.6": ci(0.5, 0.4)},
           "control_share": 0.25, "control_share_vs_best": 0.5}
    cells = [report.temperature_table({"temperature_sweep": [{**row, "gain": g, "gain_vs_best_base": gb}]}).splitlines()[2]
             .split(" | ")[-1].rstrip(" |") for g, gb in ((ci(0.2, 0.1), ci(0.1, 0.05)), (ci(0.2, 0.1), ci(0.02, -0.03)),
                                                         (ci(-0.2, -0.3), ci(-0.1, -0.2)), (ci(0.2, None), ci(0.1, None)))]
    assert cells == ["25 / 50", "25 / -", "- / -", "- / -"]  # a loss, an interval holding 0, one seed: no share
    zero = {**row, "control_share": 0.0, "control_share_vs_best": -0.4, "gain": ci(0.2, 0.1), "gain_vs_best_base": ci(0.1, 0.05)}
    assert report.temperature_table({"temperature_sweep": [zero]}).splitlines()[2].endswith("| 0 / -40 |")  # none, or less
