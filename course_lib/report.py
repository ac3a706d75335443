"""The report of a reproduction: its markdown tables and its result figures, from results.json.

:func:`write_outputs` builds a grid's results dict from its run records with ``course_lib.stats``
(the shipped ones are in data/results/); everything else reads that dict and writes text or
PNG files, computing no statistics of its own.

- Tables: accuracy in percent; "±" is the half-width of the 95% Student-t interval over
  seeds, and each table header says so; TOST rows show their 90% interval, the smallest
  passing margin, p and the verdict before and after Holm's correction.
- Figures: one colour per objective across the course (:data:`COLOURS`, :func:`colour`);
  accuracy in percent on every axis, axes labelled with units, interval bands clipped to
  [0, 100]. Plain matplotlib ``Figure`` objects (no pyplot), so a notebook's backend is left alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from course_lib import DATA_DIR, stats
from course_lib.models import lr_text  # a rate as the prose writes it (report.lr_text)
from course_lib.objectives import OBJECTIVES

#: one colour per name in every figure of the course: the objectives, the reward-free control
#: and the base model (matplotlib's tab10 and tab20 hues, told apart in greyscale by line style)
COLOURS = {"base": "#000000", "grpo": "#1f77b4", "grpo-no-kl": "#17becf", "sft+": "#2ca02c",
           "sft-": "#d62728", "sft+-": "#ff7f0e", "sft+-balanced": "#9467bd", "sft+-sized": "#8c564b",
           "gspo": "#e377c2", "gspo-eps": "#f7b6d2", "reinforce-rej": "#bcbd22", "dr-grpo": "#393b79",
           "confidence": "#7f7f7f"}


def colour(name: str) -> str:
    """The course's colour for an objective (or ``base``, ``confidence``); unknown names get grey.

    Example: ``colour("grpo")`` -> ``"#1f77b4"`` in every figure.
    """
    return COLOURS.get(name, "#aaaaaa")


def arm_label(objective: str, mu: int = 1, optimizer: str = "adamw", lr: float | None = None) -> str:
    """An arm's name in tables and legends: the objective, its learning rate when given, its own clip
    range and its mu when the ratio and clip act, its optimizer when not AdamW. Examples:
    ``arm_label("grpo", 4, "sgd")`` -> ``"grpo (mu 4, sgd)"``; ``arm_label("gspo", 4)`` -> ``"gspo (clip
    3e-4/4e-4, mu 4)"``; ``arm_label("sft+-", lr=3e-05)`` -> ``"sft+- (lr 3e-5)"``."""
    more = ([] if lr is None else ["lr " + lr_text(lr)]) + [f"mu {mu}"] * (mu != 1) + [optimizer] * (optimizer != "adamw")
    row = OBJECTIVES.get(objective)
    if row is not None and row.clip and mu != 1:  # a row that ignores the run's epsilon says so
        more.insert(0, "clip " + "/".join(map(lr_text, row.clip)))
    return objective + (f" ({', '.join(more)})" if more else "")


def load_paper_results() -> dict | None:
    """``data/paper_results.json`` (the paper's reported accuracies, percent), or None."""
    path = Path(DATA_DIR) / "paper_results.json"
    return json.loads(path.read_text()) if path.exists() else None


# ---------------------------------------------------------------------------------- the tables

HW = "± 95% over seeds"  # what "±" means (the half-width of the t-interval), in every table header


def _pct(ci: dict | None, scale: float = 100, sign: str = "") -> str:  # sign "+": a difference, always signed
    if not ci or ci.get("mean") is None:
        return "-"
    hw = ci.get("half_width")
    return f"{scale * ci['mean']:{sign}.1f}" + ("" if hw is None else f" ± {scale * hw:.1f}")


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def _arm(s: dict, named_rate: bool) -> str:  # the learning rate named only where the runs vary it (_rates)
    return arm_label(s["objective"], s.get("mu", 1), s.get("optimizer", "adamw"), s.get("learning_rate") if named_rate else None)


def _rates(results: dict) -> list:
    """The runs' learning rates, ascending, when they differ; else []."""
    rates = sorted({r["learning_rate"] for r in results.get("runs", []) if r.get("learning_rate") is not None})
    return rates if len(rates) > 1 else []


def summary_table(results: dict) -> str:
    """The main comparison: one row per arm (stats.arm_key), mean ± 95% half-width over seeds."""
    named = bool(_rates(results))
    return _table(["task", "objective", "seeds", f"base acc % {HW}", f"final acc % {HW}", f"gain (pts) {HW}",
                   f"vs grpo (pts, paired) {HW}", f"len correct (tokens) {HW}", f"len incorrect (tokens) {HW}"],
                  [[s["task"], _arm(s, named), str(s["n"]), _pct(s["base_accuracy"]), _pct(s["final_accuracy"]),
                    _pct(s["gain"], sign="+"), _pct(s.get("diff_vs_grpo"), sign="+"), _pct(s["len_correct"], 1),
                    _pct(s["len_incorrect"], 1)] for s in results["summary"]])


def _verdict(e: dict, key: str = "verdict") -> str:
    """A TOST row's verdict as printed: the rule's word, its direction and, before Holm's correction,
    the seeds an underpowered row would need (a rough plug-in estimate from its own seeds)."""
    if e["ci_low"] is not None and e["ci_low"] == e["ci_high"]:
        return f"no spread: the same difference in every seed ({'inside' if e['equivalent'] else 'outside'} the margin)"
    v = e.get(key) or e.get("verdict", "")
    if key == "verdict" and v == "underpowered" and e.get("seeds_needed") and e["n"] < e["seeds_needed"]:
        v += f" (about {e['seeds_needed']} seeds for 80% power, a rough estimate from these seeds)"
    return v + (f"; {e['direction']}" if e.get("direction") else "")


def _num(x, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def equivalence_table(results: dict) -> str:
    """TOST against GRPO: the paired difference, its 90% interval, the smallest margin at which
    it would pass, p, the margin against GRPO's own gain, and the verdict before and after Holm."""
    def share(e):
        return "" if e.get("margin_share_of_gain") is None else f" ({100 * e['margin_share_of_gain']:.0f}% of grpo's gain at training T)"

    named = bool(_rates(results))
    return _table(["task", "objective", "seeds", "diff vs grpo (pts)", "90% CI (pts)", "min margin (pts)",
                   "p (TOST)", "margin (pts)", "verdict", "verdict after Holm"],
                  [[e["task"], _arm(e, named), str(e["n"]), f"{100 * e['diff']:+.1f}",
                    "-" if e["ci_low"] is None else f"[{100 * e['ci_low']:+.1f}, {100 * e['ci_high']:+.1f}]",
                    _num(e.get("min_margin") and 100 * e["min_margin"], ".1f"), _num(e.get("p_tost"), ".4f"),
                    f"{100 * e['margin']:.1f}{share(e)}", _verdict(e), _verdict(e, "verdict_holm")]
                   for e in results["equivalence"]])


#: pass@k's interval: a t over seeds, or (per-problem counts stored) a bootstrap over seeds and problems
_PK_BAND = {False: "95% CI over seeds", True: "95% bootstrap over seeds and problems"}


def pass_at_k_table(results: dict, ks=(1, 16, 256)) -> str:
    """pass@k (%) of the base model and each objective at a few k, [95% interval, clipped to 0-100]."""
    cells: dict[tuple, dict] = {}
    for r in results["pass_at_k"]:
        cells.setdefault((r["task"], r["model"]), {})[r["k"]] = r
    ks = [k for k in ks if any(k in v for v in cells.values())]

    def cell(r):
        if r is None or r["pass_at_k"] is None:
            return "-"
        lo, hi = (None, None) if r["ci_low"] is None else (max(0, r["ci_low"]), min(1, r["ci_high"]))
        return f"{100 * r['pass_at_k']:.1f}" + ("" if lo is None else f" [{100 * lo:.1f}, {100 * hi:.1f}]")

    counts = bool(results.get("pass_at_k_counts"))
    lab = f"[{_PK_BAND[counts]}]"
    def versus(r):  # the verdict, and the paired difference where there is one
        return r.get("verdict", "-") + ("" if (d := r.get("vs_base")) is None else
                                        f" ({100 * d['mean']:+.1f} [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}])")

    return _table(["task", "model", "split"] + [f"pass@{k} % {lab}" for k in ks]
                  + [f"pass@{max(ks)} vs base" + (" (pts, paired by problem, 95% bootstrap)" if counts else "")],
                  [[t, m, next(iter(v.values())).get("split", "test")] + [cell(v.get(k)) for k in ks]
                   + [versus(v.get(max(ks), {}))] for (t, m), v in cells.items()])


def temperature_table(results: dict) -> str:
    """Learning vs sharpening: accuracy (%) at each sampling temperature and greedy, the gain over
    the base at the training temperature and at the base's best, and the control's share of each
    (only of a gain whose 95% interval lies above 0: a share of a loss or of noise reads as nonsense)."""
    rows = results.get("temperature_sweep") or []
    keys = sorted(rows[0]["acc"], key=lambda k: (k == "greedy", k)) if rows else []  # 0.3, 0.6, 1.0, greedy
    return _table(["task", "model", "lr", "seeds"] + [("" if k == "greedy" else "T=") + f"{k} % {HW}" for k in keys]
                  + [f"gain at training T (pts) {HW}", f"gain vs base at its best T (pts) {HW}",
                     "control's share of the gain at training T / vs best T (%)"],
                  [[r["task"], arm_label(r["model"], optimizer=r.get("optimizer", "adamw")),
                    "-" if r["learning_rate"] is None else lr_text(r["learning_rate"]), str(r["seeds"] or "-")]
                   + [_pct(r["acc"].get(k)) for k in keys] + [_pct(r.get("gain"), sign="+"), _pct(r.get("gain_vs_best_base"), sign="+")]
                   + [" / ".join(_num(100 * r[k] if r.get(k) is not None and (r[g].get("ci_low") or 0) > 0 else None, ".0f")
                                 for k, g in (("control_share", "gain"), ("control_share_vs_best", "gain_vs_best_base")))]
                   for r in rows])


def ablation_table(results: dict) -> str:
    return _table(["task", "objective", "aggregation", "seeds", f"final acc % {HW}", f"len correct (tokens) {HW}",
                   f"len incorrect (tokens) {HW}", f"len incorrect, not truncated {HW}", f"train len incorrect {HW}"],
                  [[s["task"], s["objective"], s["aggregation"], str(s["n"]), _pct(s["final_accuracy"]),
                    _pct(s["len_correct"], 1), _pct(s["len_incorrect"], 1), _pct(s["len_incorrect_complete"], 1),
                    _pct(s["train_len_incorrect"], 1)] for s in results["ablation"]])


def paper_table(paper: dict) -> str:
    """The paper's reported accuracies (percent), as printed in data/paper_results.json."""
    objs = ["grpo", "grpo-no-kl", "sft+", "sft+-"]
    rows = [[r["model"], r["task"]] + [f"{r[o]:.2f}" if o in r else "-" for o in objs] for r in paper["results"]]
    return _table(["model", "task"] + objs, rows) + "".join(f"\n{n}" for n in paper.get("notes", [])) + "\n"


def results_markdown(results: dict, paper: dict | None = None) -> str:
    """results.md: settings, the main table, TOST, pass@k, the ablation and the paper's numbers."""
    st = results["settings"]
    parts = [f"# Reproduction: profile `{results['profile']}`\n",
             f"Command: `{results['command']}`\n" if results.get("command") else "",
             f"Weights: {'; '.join(results['weights'])}.\n" if results.get("weights") else "",
             f"{results['finished_runs']} of {results['planned_runs']} runs finished; {st['steps']} steps per "
             f"run; held-out evaluation on up to {st['eval_examples']} problems (a smaller test split whole) x {st['eval_samples']} samples. "
             f"Wall time: {results['runs_wall_s']:.0f} s summed over the runs.\n",
             "Mean ± half-width of a 95% Student-t interval over seeds; `vs grpo` and `gain` are paired by "
             "seed. Lengths in tokens from the final held-out evaluation.\n",
             "## Main comparison\n", summary_table(results)]
    if results["equivalence"]:
        parts += ["\n## Equivalence to GRPO (TOST)\n",
                  f"Equivalent = the 90% interval of the paired difference lies inside ± "
                  f"{100 * st['margin']:.1f} points; different = it lies beyond; underpowered = it straddles "
                  "the margin. `min margin` is the smallest margin that would pass; the family is every row "
                  "below with an interval (Holm's correction at 5%); `above`/`below grpo` where the 95% interval excludes 0."
                  + (" `sft+-balanced` equals GRPO's weights divided by A+ whenever k <= G/2 correct, so its "
                     "equivalence is close to built in." if any(e["objective"] == "sft+-balanced"
                                                                for e in results["equivalence"]) else "") + "\n",
                  equivalence_table(results)]
    if results.get("temperature_sweep"):
        noise = "; ".join(f"{n['task']} {100 * n['eval_sd']:.1f}" + (f" (seed sd {100 * n['seed_sd']:.1f})"
                          if n["seed_sd"] is not None else "") for n in results.get("eval_noise") or [])
        parts += ["\n## Learning vs sharpening: the temperature sweep\n",
                  f"Held-out accuracy on up to {st['eval_examples']} problems x {st.get('sweep_samples')} samples at "
                  "each temperature; gains paired over seeds; control's share = the reward-free `confidence` "
                  "objective's gain as a % of the row's (at the training temperature / over the base at its "
                  "best). The base is one evaluation, its noise not in the intervals: evaluation noise (sd of "
                  f"one such evaluation, from two sampling seeds, in points): {noise or 'not measured'}.\n",
                  temperature_table(results)]
    if results["pass_at_k"]:
        parts += ["\n## pass@k on held-out problems\n",
                  f"Unbiased estimator from {st['pass_k']} samples on up to {st['pass_k_examples']} problems of "
                  "the row's split; [95% interval: bootstrap over seeds and problems where per-problem counts "
                  "are stored, else t over seeds; clipped to 0-100]; `saturated` = the base is at >= 95%; "
                  "`vs base`: with counts, the model's pass@k minus the base's on the same problems (paired), "
                  "above or below where its interval excludes 0.\n",
                  pass_at_k_table(results)]
    if results["ablation"]:
        parts += ["\n## Aggregation ablation (the length claim)\n",
                  "`sequence` = GRPO's 1/|o_i|; `token` = DAPO's mean over tokens; `constant` = Dr. GRPO's "
                  "normaliser sum / (B x max length), with the group std kept.\n", ablation_table(results)]
    if paper:
        parts += ["\n## The paper's reported numbers (other models, full tasks)\n",
                  f"Not comparable in value with the tables above. Source: {paper['source']}. "
                  f"Metric: {paper['metric']}.\n", paper_table(paper)]
    return "\n".join(p for p in parts if p)


# --------------------------------------------------------------------------------- the figures


def smooth(xs: list, k: int) -> list:
    """Trailing moving average over ``k`` values that skips None (steps with no such answer).

    Example: ``smooth([1, None, 3], 2)`` -> ``[1.0, 1.0, 3.0]``.
    """
    out = []
    for i in range(len(xs)):
        w = [x for x in xs[max(0, i - k + 1): i + 1] if x is not None]
        out.append(sum(w) / len(w) if w else float("nan"))
    return out


def _curve(results: dict, task, objective, aggregation, key, k, mu=1, optimizer="adamw", lr=None):
    """``(x, y)`` of one arm from ``results["curves"]`` (means over seeds; ``lr`` None: the first
    arm at any learning rate): the held-out evaluations for ``key="eval:accuracy"``, else a training
    metric smoothed over ``k`` steps."""
    c = next((c for c in results.get("curves", []) if lr in (None, c.get("learning_rate")) and (c["task"], c["objective"],
              c["aggregation"], c.get("mu", 1), c.get("optimizer", "adamw")) == (task, objective, aggregation, mu, optimizer)), None)
    if c is None:
        return None, None
    if key == "eval:accuracy":
        return np.array(c["eval_step"]), np.array(c["eval_accuracy"], dtype=float)
    ys = c.get(key) or []
    return (np.arange(1, len(ys) + 1), np.array(smooth(ys, k))) if ys else (None, None)


#: the panels of the curve figures: (key, title, y label, scale to the axis unit)
PANELS = {"accuracy_over_steps.png": (("eval:accuracy", "held-out sampled accuracy", "accuracy (%)", 100),
                                      ("accuracy", "accuracy of the training rollouts", "accuracy (%)", 100)),
          "lengths_over_steps.png": (("len_correct", "length of correct answers", "length (tokens)", 1),
                                     ("len_incorrect", "length of incorrect answers", "length (tokens)", 1))}


def result_figures(out, results: dict) -> list[str]:
    """The figures of a reproduction, drawn from its results (``curves``, ``pass_at_k``) into the
    folder ``out``: accuracy and lengths over steps, the aggregation ablation and pass@k (when
    measured). Returns the file names written."""
    out, runs = Path(out), results["runs"]
    main = [r for r in runs if not r["ablation"]]
    rates = _rates(results)  # several: each rate its own line style, named in the legend
    arms = list(dict.fromkeys((r["objective"], r.get("mu", 1), r.get("optimizer", "adamw"), r["learning_rate"] if rates else None)
                              for r in main))
    agg = main[0]["aggregation"] if main else "sequence"
    k = max(1, min(10, max(r["steps"] for r in runs) // 6))
    rows = [(t, [(t, o, agg, mu, opt, lr, arm_label(o, mu, opt, lr), ("-", "--", "-.", ":")[rates.index(lr) % 4] if lr else
                  "--" if mu != 1 else ":" if opt != "adamw" else "-") for o, mu, opt, lr in arms])
            for t in dict.fromkeys(r["task"] for r in runs)]  # mu > 1, SGD, learning rates: own lines
    for name, cols in PANELS.items():
        _grid(out / name, results, rows, cols, k, f"mean over seeds; training curves: moving average of {k} steps")
    written = list(PANELS)
    if results["ablation"]:
        pairs = dict.fromkeys((s["task"], s["objective"]) for s in results["ablation"])
        rows = [(f"{t} {o}", [(t, o, a, 1, "adamw", None, a, ls) for a, ls in zip(("sequence", "token", "constant"), ("-", "--", ":"))])
                for t, o in pairs]
        _grid(out / "aggregation_ablation.png", results, rows,
              PANELS["lengths_over_steps.png"] + PANELS["accuracy_over_steps.png"][:1], k,
              f"aggregation ablation, mean over seeds (training curves: moving average of {k} steps)", "aggregation")
        written.append("aggregation_ablation.png")
    if results["pass_at_k"]:
        written.append(_pass_at_k_figure(out, results))
    return written


def _grid(path, results: dict, rows, cols, k: int, suptitle: str, legend_title: str | None = None) -> None:
    """One figure: a row per ``(name, lines)``, a column per panel of :data:`PANELS`; each line
    ``(task, objective, aggregation, mu, optimizer, learning rate, label, linestyle)`` in its objective's colour."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3 * len(cols) + 5, 3.3 * len(rows)))
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    for r, (name, lines) in enumerate(rows):
        for c, (key, title, ylabel, scale) in enumerate(cols):
            for task, obj, agg, mu, opt, lr, label, ls in lines:
                x, y = _curve(results, task, obj, agg, key, k, mu, opt, lr)
                if x is not None:
                    axes[r, c].plot(x, scale * y, marker="o" if key.startswith("eval") else None, ms=3, ls=ls,
                                    color=colour(obj), label=label)
            axes[r, c].set(title=f"{name}: {title}", xlabel="training step", ylabel=ylabel)
            axes[r, c].title.set_fontsize(9)
        axes[r, 0].legend(fontsize=7, title=legend_title, title_fontsize=7)
    fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def pass_at_k_axes(ax, rows: list[dict], task: str, band: str = "95% CI over seeds") -> None:
    """pass@k (%) against k (log scale) for every model of ``task`` in ``rows`` (results'
    pass_at_k), with its interval (``band`` names it) as a band clipped to [0, 100]."""
    for m in dict.fromkeys(r["model"] for r in rows if r["task"] == task):
        pts = sorted((r["k"], r["pass_at_k"], r["ci_low"], r["ci_high"]) for r in rows
                     if r["task"] == task and r["model"] == m)
        ks = [p[0] for p in pts]
        ax.plot(ks, [100 * p[1] for p in pts], "o-", ms=3, color=colour(m), label=m)
        if pts and pts[0][2] is not None:
            ax.fill_between(ks, np.clip([100 * p[2] for p in pts], 0, 100), np.clip([100 * p[3] for p in pts], 0, 100),
                            color=colour(m), alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="k (samples per problem)", ylabel="pass@k (%)", ylim=(0, 102))
    ax.set_title(f"{task}: pass@k on held-out problems (bands: {band})", fontsize=9)
    ax.legend(fontsize=7)


def _pass_at_k_figure(out, results: dict) -> str:
    from matplotlib.figure import Figure

    tasks = list(dict.fromkeys(r["task"] for r in results["pass_at_k"]))
    fig = Figure(figsize=(5.5 * len(tasks), 3.8))
    for ax, task in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks):
        pass_at_k_axes(ax, results["pass_at_k"], task, _PK_BAND[bool(results.get("pass_at_k_counts"))])
    fig.tight_layout()
    fig.savefig(out / "pass_at_k.png", dpi=100)
    return "pass_at_k.png"


# --------------------------------------------------------------------------------- the outputs


def load_results(path) -> dict:
    """A results.json written by :func:`write_outputs` (a shipped one lives in data/)."""
    return json.loads(Path(path).read_text())


def write_outputs(out: Path, profile: str, specs: list, settings, records: dict,
                  command: str | None = None, wall_s: float = 0.0, *, figures: bool = False) -> dict:
    """results.json and results.md from the finished runs (and the figures when ``figures``)."""
    runs = [{k: v for k, v in records[s].items() if k != "status"} for s in specs
            if s in records and records[s].get("status") not in ("interrupted", "cancelled")]
    base = {p.stem: json.loads(p.read_text()) for p in sorted((out / "base").glob("*.json"))}
    summary = stats.summarize(runs)
    ablated = {(s.task, s.objective) for s in specs if s.ablation}
    results = {
        "profile": profile, "command": command, "settings": asdict(settings),
        "units": {"accuracy": "fraction of sampled held-out answers that are correct (0-1)",
                  "length": "tokens per completion, end-of-text token included",
                  "ci": "95% Student-t interval over seeds; equivalence: 90% interval (TOST); pass@k with "
                        "counts: 95% bootstrap over seeds and problems"},
        "weights": sorted({r["weights"] for r in runs if r.get("weights")}),  # which weights the runs started from
        "planned_runs": len(specs), "finished_runs": len(runs), "wall_s": round(wall_s, 1),
        "runs_wall_s": round(sum(r.get("wall_s") or 0 for r in runs), 1),
        "runs": runs, "summary": [s for s in summary if not s["ablation"]],
        "equivalence": stats.equivalence(runs, settings.margin),
        "temperature_sweep": stats.temperature_sweep(runs, base), "eval_noise": stats.eval_noise(runs),
        "pass_at_k": stats.pass_at_k_rows(runs, base), "pass_at_k_counts": stats.pass_at_k_counts(runs, base),
        "ablation": [s for s in summary if (s["task"], s["objective"]) in ablated],
    }
    results["curves"] = curves(out, runs)
    if figures and runs:
        results["figures"] = result_figures(out, results)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(results_markdown(results, load_paper_results()))
    return results


CURVE_KEYS = ("accuracy", "reward_mean", "len_correct", "len_incorrect", "truncated", "entropy", "zero_var_groups", "kl",
              "clip_frac")


def curves(out: Path, runs: list[dict]) -> list[dict]:
    """Per arm (``stats.arm_key``): the training metrics in ``CURVE_KEYS`` step by step and the
    held-out accuracy at each evaluation, as means over seeds (so notebooks can draw the shipped
    runs without their run directories)."""
    rows = []
    for key, rs in stats.arms(runs).items():
        hist = [read_jsonl(out / "runs" / r["run_dir"] / "metrics.jsonl") for r in rs]
        evals = [read_jsonl(out / "runs" / r["run_dir"] / "eval.jsonl") for r in rs]
        n, m = min(map(len, hist)), min(map(len, evals))
        row = {**stats.arm_fields(key), "seeds": len(rs)}
        for k in CURVE_KEYS:
            row[k] = [_round(stats.mean_ci(h[i].get(k) for h in hist)["mean"]) for i in range(n)]
        row["eval_step"] = [evals[0][i]["step"] for i in range(m)]
        row["eval_accuracy"] = [_round(stats.mean_ci(e[i]["accuracy"] for e in evals)["mean"]) for i in range(m)]
        top = max((k for h in hist for x in h for k in x.get("correct_per_group", [])), default=0)
        row["k_correct_hist"] = [[sum(h[i].get("correct_per_group", []).count(k) for h in hist)
                                  for k in range(top + 1)] for i in range(n)]  # groups with k right, per step
        rows.append(row)
    return rows


def read_jsonl(path) -> list[dict]:
    """The rows of a ``.jsonl`` file (``[]`` when it does not exist)."""
    path = Path(path)
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def _round(x, digits: int = 4):
    return None if x is None else round(x, digits)
