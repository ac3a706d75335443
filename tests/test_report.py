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
