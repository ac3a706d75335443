"""Small printing helpers shared by notebooks 05-08 (kept out of course_lib: they only format).

``compact_summary`` prints the shipped summary as a narrow table (under 160 characters a line):
one row per arm with the mean and 95% half-width over seeds, in percent or points.
``ci_cell`` writes one interval as a table cell, ``text_table`` lines up the cells of a section's
one table.
"""

def _pm(ci: dict | None, scale: float = 100.0, sign: bool = False) -> str:
    """'mean ± half' of a ``stats.mean_ci`` dict, scaled; '-' for a missing one."""
    if not ci or ci.get("mean") is None:
        return "-"
    m = f"{scale * ci['mean']:+.1f}" if sign else f"{scale * ci['mean']:.1f}"
    return m if ci.get("half_width") is None else f"{m} ± {scale * ci['half_width']:.1f}"


def ci_cell(ci: dict | None, scale: float = 100.0, sign: bool = True, digits: int = 1) -> str:
    """'+12.5 [+1.8, +23.1]' for a ``stats.mean_ci``-like dict (mean, ci_low, ci_high), scaled;
    'mean, no spread' for a zero-width interval, 'mean, 1 seed' without one, '-' without a mean."""
    if not ci or ci.get("mean") is None:
        return "-"
    f = f"{{:{'+' if sign else ''}.{digits}f}}".format
    m = f(round(scale * ci["mean"], digits) + 0.0)  # '+0.0', never '-0.0'
    if ci.get("ci_low") is None:
        return f"{m}, 1 seed"
    if ci["ci_high"] - ci["ci_low"] < 1e-12:
        return f"{m}, no spread"
    return f"{m} [{f(scale * ci['ci_low'])}, {f(scale * ci['ci_high'])}]"


def text_table(rows: list[list[str]], align: str = "") -> str:
    """Rows of cells (the first row the header) as aligned text: ``align`` gives one letter per
    column, ``l`` or ``r``; columns past its end are left-aligned."""
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    return "\n".join("  ".join(c.rjust(w) if align[i:i + 1] == "r" else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows)


def compact_summary(results: dict, *, mu: int = 1, lengths: bool = False, lr: float | None = None) -> str:
    """The main-comparison arms of a results file as a narrow text table.

    Columns: task, objective, seeds, base %, final %, gain (points), vs grpo (points, paired
    by seed), and with ``lengths`` the mean tokens of right and wrong held-out answers; with ``lr`` only
    the arms at that learning rate.
    """
    head = ["task", "objective", "n", "base %", "final %", "gain", "vs grpo"] + (["len right", "len wrong"] if lengths else [])
    rows = [head]
    for s in results["summary"]:
        if s.get("ablation") or s.get("mu", 1) != mu or s.get("aggregation", "sequence") != "sequence" or (
                lr is not None and s.get("learning_rate") != lr):
            continue
        row = [s["task"], s["objective"], str(s["n"]), _pm(s["base_accuracy"]), _pm(s["final_accuracy"]),
               _pm(s["gain"], sign=True), _pm(s.get("diff_vs_grpo"), sign=True)]
        rows.append(row + ([_pm(s["len_correct"], 1), _pm(s["len_incorrect"], 1)] if lengths else []))
    return text_table(rows, "ll" + "r" * (len(head) - 2))
