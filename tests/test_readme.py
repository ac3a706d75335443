"""The README quotes the shipped results: its tables are the ones the results files make."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from course_lib import DATA_DIR, report
from course_lib import reproduce as R

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
GRID = DATA_DIR / "results" / "grid_results.json"
MICRO = DATA_DIR / "results" / "micro_results.json"  # the older reproduction: the ablation until the grid's ships
LR_SWEEP = DATA_DIR / "results" / "lr_sweep_results.json"
HORIZON = DATA_DIR / "results" / "horizon_results.json"
BALANCED = DATA_DIR / "results" / "balanced_results.json"


@pytest.mark.parametrize("table", [report.summary_table, report.equivalence_table, report.pass_at_k_table,
                                   report.temperature_table])
def test_readme_tables_are_the_shipped_micro_results(table):
    assert table(R.load_results(GRID)) in README, f"README's copy of {table.__name__} differs from {GRID.name}"


def test_readme_ablation_table_is_the_newest_complete_one():
    grid = R.load_results(GRID)
    res = grid if grid["ablation"] else R.load_results(MICRO)
    assert report.ablation_table(res) in README and f"`{res['command']}`" in README


def test_readme_quotes_the_learning_rate_sweep_with_every_row_named_by_its_step_size():
    res = R.load_results(LR_SWEEP)
    table = report.equivalence_table(res)
    assert table in README, f"README's copy of the equivalence table differs from {LR_SWEEP.name}"
    rates = {(r["learning_rate"], r.get("optimizer", "adamw")) for r in res["runs"]}
    assert len(rates) == 4 and ("sgd" in {o for _, o in rates})  # three AdamW rates 3x apart and plain SGD
    for lr, opt in rates:
        assert f"(lr {report.lr_text(lr)}{', sgd' if opt == 'sgd' else ''})" in table


def test_readme_quotes_the_horizon_runs_at_200_steps_with_every_seed_of_every_objective():
    res = R.load_results(HORIZON)
    assert report.equivalence_table(res) in README, f"README's copy of the equivalence table differs from {HORIZON.name}"
    assert res["finished_runs"] == res["planned_runs"] == len(res["runs"]) == 24 and res["settings"]["steps"] == 200
    assert all(sorted(map(int, r["eval_accuracy"])) == list(range(0, 201, 25)) for r in res["runs"])  # the curves it reads


@pytest.mark.parametrize("path", [GRID, MICRO, LR_SWEEP, HORIZON, BALANCED])
def test_readme_quotes_the_command_that_made_them(path):
    res = R.load_results(path)
    assert f"`{res['command']}`" in README
    assert f"{res['settings']['steps']} steps" in README and f"{len({r['seed'] for r in res['runs']})} seeds" in README


@pytest.mark.parametrize("name, folder", [("micro", "micro_evidence"), ("beyond_grid", "beyond_grid"), ("smollm2_evidence", "smollm2_evidence"),
                                          ("grid", "grid"), ("lr_sweep", "lr_sweep"), ("horizon", "horizon"),
                                          ("balanced", "balanced")])
def test_shipped_run_records_rebuild_the_shipped_results(name, folder, tmp_path):
    # every run's config, metrics and evaluations ship (without checkpoints): the recorded command,
    # in report-only mode over them, gives the shipped file again
    import json
    import shlex
    import tarfile

    from course_lib.__main__ import main

    with tarfile.open(DATA_DIR / "results" / f"{name}_runs.tar.gz") as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    shipped = R.load_results(DATA_DIR / "results" / f"{name}_results.json")
    argv = shlex.split(shipped["command"])[3:]
    argv[argv.index("--out") + 1] = str(tmp_path / folder)
    assert main([*argv, "--report-only"]) == 0
    rebuilt = json.loads((tmp_path / folder / "results.json").read_text())
    for key in ("settings", "runs", "summary", "equivalence", "pass_at_k", "ablation", "curves"):
        assert rebuilt[key] == shipped[key], key


@pytest.mark.parametrize("path", sorted((DATA_DIR / "results").glob("*_results.json")), ids=lambda p: p.stem)
def test_every_shipped_markdown_is_its_json_as_the_report_writes_it_now(path):
    assert path.with_suffix(".md").read_text() == report.results_markdown(R.load_results(path), report.load_paper_results())


SMOLLM2 = DATA_DIR / "results" / "smollm2_evidence_results.json"


@pytest.mark.parametrize("table", [report.summary_table, report.equivalence_table, report.temperature_table])
def test_readme_quotes_the_shipped_smollm2_results_with_their_command_weights_and_progress(table):
    res = R.load_results(SMOLLM2)
    assert table(res) in README, f"README's copy of {table.__name__} differs from {SMOLLM2.name}"
    assert f"`{res['command']}`" in README and res["weights"][0] in README.replace("\n", " ")
    seeds = sorted({r["seed"] for r in res["runs"]})  # the file ships seed by seed: README says how far it is
    assert _tool().progress(res, seeds) in README.replace("\n", " ")


@functools.cache
def _tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_smollm2", Path(__file__).resolve().parents[1] / "tools" / "readme_smollm2.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_real_model_section_is_what_its_tool_writes_from_the_shipped_file():
    """Every number and verdict of README's SmolLM2 section is computed from the file (after shipping a
    seed: python tools/readme_smollm2.py --write)."""
    tool = _tool()
    assert tool.in_readme(README) == tool.section(SMOLLM2), "README's real-model section is stale: run tools/readme_smollm2.py --write"


def test_readme_tool_refuses_a_readme_without_the_section_and_leaves_it(tmp_path, monkeypatch, capsys):
    tool = _tool()
    (tmp_path / "README.md").write_text("# a README without the section\n")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    assert tool.main(["--write"]) == 2
    assert capsys.readouterr().err.strip() == (f"README.md has no heading '{tool.HEAD}': restore it, then run "
                                               "python tools/readme_smollm2.py --write")
    assert (tmp_path / "README.md").read_text() == "# a README without the section\n"
    (tmp_path / "README.md").write_text(f"# R\n\n{tool.HEAD}: old\n\nold text\n\n{tool.NEXT}\n\nkept\n")
    assert tool.main(["--write"]) == 0
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# R\n\n" + tool.section(SMOLLM2) + "\n" + tool.NEXT) and text.endswith("\n\nkept\n")


def test_readme_progress_line_says_so_far_until_every_planned_run_has_finished():
    progress = _tool().progress
    runs = [{"task": "arith", "objective": o, "learning_rate": 1e-4, "aggregation": "sequence", "seed": s}
            for o, n in (("grpo", 8), ("sft-", 5)) for s in range(n)]
    assert progress({"finished_runs": 26, "planned_runs": 65, "runs": runs}, [0, 1]) == "**So far 26 of the 65 planned runs** (2 seeds: 0, 1"
    assert progress({"finished_runs": 13, "planned_runs": 13, "runs": runs}, list(range(8))) == (
        "**All 13 planned runs** (8 seeds: 0, 1, 2, 3, 4, 5, 6, 7; 5 to 8 seeds an arm)")  # not 8 seeds in every arm


def test_readme_moves_each_mean_gain_by_the_float32_seeds_share_of_the_float32_bar():
    """The gains use the bf16 sweep's best (greedy) for every seed; held to the float32 base's greedy instead,
    a float32 seed's gain moves by the bars' difference, and an arm's mean by that times its float32 share."""
    tool = _tool()
    prec = {0: "bf16", 1: "bf16", 2: "bf16", 3: "fp32"}
    main = [{"task": "arith", "objective": o, "seed": s} for o in ("grpo", "sft+") for s in prec]
    right, n = tool.GREEDY_FP32["arith"]
    bar = (right + 2) / n  # a bf16 bar two problems over the float32 one
    text = tool._bar_shift("arith", bar, main, prec)
    assert f"2 problems of {n} ({200 / n:g} points) under the bf16 bar" in text and f"would be {200 / n:g} points larger" in text
    assert text.endswith(f"each arm that has one, {50 / n:.1f} points larger (intervals not recomputed).")  # 1 of 4 seeds
    main += [{"task": "arith", "objective": "sft-", "seed": s} for s in (0, 1, 3)]
    assert tool._bar_shift("arith", bar, main, prec).endswith(f"that has one, {50 / n:.1f} to {200 / 3 / n:.1f} points larger "
                                                              "(intervals not recomputed).")
    assert "1 problem of" in tool._bar_shift("arith", (right - 1) / n, main, prec) and \
        tool._bar_shift("arith", (right - 1) / n, main, prec).endswith("points smaller (intervals not recomputed).")
    assert tool._bar_shift("arith", bar, [r for r in main if r["seed"] < 3], prec) == ""  # no float32 seed
    assert tool._bar_shift("arith", right / n, main, prec) == ""  # the same bar
    main += [{"task": "arith", "objective": "confidence", "seed": s} for s in (0, 1, 2)]  # no float32 seed: not read
    assert tool._bar_shift("arith", bar, main, prec).endswith(f"that has one, {50 / n:.1f} to {200 / 3 / n:.1f} points larger "
                                                              "(intervals not recomputed).")


def test_readme_names_the_arms_the_plan_gives_more_seeds():
    tool = _tool()
    assert tool._more() == ("`arith`'s grpo, sft+ and confidence", [5, 6, 7])
    assert "`arith`'s grpo, sft+ and confidence also at seeds 5-7 (the power calculation; below)" in " ".join(tool.section().split())


def test_readme_cap_line_bounds_what_the_cap_can_have_cost_each_run_it_cut_too_often():
    """A grpo, sft+ or sft+- run with 10% or more of its final answers cut is named with its accuracy were every cut
    answer right, set against the base's best: under it, the cap cannot have decided its reading."""
    tool = _tool()
    res = R.load_results(SMOLLM2)
    (cap,) = [b for b in tool._readings(res, ["arith", "word-problems"], False) if b.startswith("- **The cap**")]
    cut = [r for r in res["runs"] if tool.arm_name(r) in ("grpo", "sft+", "sft+-") and r["final_truncated"] >= 0.1]
    assert ("under 10% in every run." in cap) == (not cut) and "grpo, sft+ and sft+-: under 10% in every arm over its seeds" in cap
    (r,) = [r for r in res["runs"] if (r["task"], r["objective"], r["aggregation"], r["seed"]) == ("arith", "grpo", "sequence", 0)]
    bar = next(s for s in res["temperature_sweep"] if (s["task"], s["model"]) == ("arith", "base"))
    best = bar["acc"][bar["best"]]["mean"]
    for acc, trunc, word in ((best - 0.30, 0.20, "still under"), (best - 0.10, 0.20, "at or over")):
        r["final_accuracy"], r["final_truncated"] = acc, trunc
        (cap,) = [b for b in tool._readings(res, ["arith", "word-problems"], False) if b.startswith("- **The cap**")]
        assert (f"grpo on arith seed 0 (20%: it ends at {100 * acc:.1f}%, and at {100 * (acc + trunc):.1f}% were every cut "
                f"answer right, {word} the base's best {100 * best:.1f}%)") in cap


def test_readme_says_what_the_cap_could_do_to_the_greedy_bar_and_which_intervals_it_would_reach():
    tool = _tool()
    cut, n = tool.GREEDY_FP32_CUT["word-problems"], tool.GREEDY_FP32["word-problems"][1]
    up = cut / n
    gains = [("grpo", {"ci_low": up / 2}), ("sft+", {"ci_low": up * 2}), ("sft-", {"ci_low": -0.5}), ("one", {"ci_low": None})]
    text = tool._bar_cap("word-problems", gains)
    assert f"cuts {cut} of its {n} answers" in text and f"up to {100 * up:g} points higher" in text
    assert text.endswith("enough to bring the lower end of grpo's interval to 0 or below.")  # not sft+ (above), not sft- (below 0)
    assert tool._bar_cap("word-problems", gains[1:]).endswith("which no interval above 0 here reaches.")
