"""Small printing helpers shared by notebooks 05-08 (kept out of course_lib: they only format).

``compact_summary`` prints the shipped summary as a narrow table (under 160 characters a line):
one row per arm with the mean and 95% half-width over seeds, in percent or points.
"""

def _pm(ci: dict | None, scale: float = 100.0, sign: bool = False) -> str:
    """'mean ± half' of a ``stats.mean_ci`` dict, scaled; '-' for a missing one."""
    if not ci or ci.get("mean") is None:
        return "-"
    m = f"{scale * ci['mean']:+.1f}" if sign else f"{scale * ci['mean']:.1f}"
    return m if ci.get("half_width") is None else f"{m} ± {scale * ci['half_width']:.1f}"


def compact_summary(results: dict, *, mu: int = 1, lengths: bool = False) -> str:
    """The main-comparison arms of a results file as a narrow text table.

    Columns: task, objective, seeds, base %, final %, gain (points), vs grpo (points, paired
    by seed), and with ``lengths`` the mean tokens of right and wrong held-out answers.
    """
    head = ["task", "objective", "n", "base %", "final %", "gain", "vs grpo"] + (["len right", "len wrong"] if lengths else [])
    rows = [head]
    for s in results["summary"]:
        if s.get("ablation") or s.get("mu", 1) != mu or s.get("aggregation", "sequence") != "sequence":
            continue
        row = [s["task"], s["objective"], str(s["n"]), _pm(s["base_accuracy"]), _pm(s["final_accuracy"]),
               _pm(s["gain"], sign=True), _pm(s.get("diff_vs_grpo"), sign=True)]
        rows.append(row + ([_pm(s["len_correct"], 1), _pm(s["len_incorrect"], 1)] if lengths else []))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)
