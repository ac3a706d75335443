"""Small helpers shared by notebooks 05-08 and tools/readme_smollm2.py (kept out of course_lib:
they only format and word).

``compact_summary`` prints the shipped summary as a narrow table (under 160 characters a line):
one row per arm with the mean and 95% half-width over seeds, in percent or points.
``ci_cell`` writes one interval as a table cell, ``text_table`` lines up the cells of a section's
one table.

The reading rules of notebook 06 (sections 5, 9 and 10), in one place so that README's real-model
section words its verdicts as the notebook does: ``spread`` (an interval with a width),
``vs_zero``, ``tost_word``, ``agreement`` (an interval against the paper's gaps), ``noise_word``
(evaluation noise against the seed spread), ``sft_word`` (a gain read two ways) and, for a row set beside another, ``two_readings``,
``weak`` and ``micro_word``.
"""

import math

from course_lib import stats

SPLIT = "the paper's models disagree with each other"


def spread(ci: dict) -> bool:
    """An interval with a width: one seed has none, nor have seeds that all gave the same value."""
    return ci.get("ci_low") is not None and ci["ci_high"] > ci["ci_low"]


def vs_zero(ci: dict) -> str:
    """A 95% interval over seeds against 0: 'above', 'below' or 'indistinguishable from'."""
    return "above" if ci["ci_low"] > 0 else "below" if ci["ci_high"] < 0 else "indistinguishable from"


def sft_word(g: dict, gb: dict) -> str:
    """Section 10d's two readings of an arm: does it move (``g``, its gain over the base at the
    training temperature) and where does it end against the base at its best (``gb``)?"""
    if not spread(g):
        return "one seed: no verdict" if g["ci_low"] is None else "no spread: no verdict"
    moves = "gains" if g["ci_low"] > 0 else "loses" if g["ci_high"] < 0 else "no change shown"
    return f"{moves} at the training T, ends {vs_zero(gb)} the base's best"


def tost_word(e: dict, key: str = "verdict") -> str:
    """A TOST row's verdict (``key``: before or after Holm), or 'no spread: no verdict' where every
    seed gave the same difference."""
    return "no spread: no verdict" if e["ci_low"] is not None and not spread(e) else e[key]


def agreement(paper_gaps: list[float], diffs: list[float], margin: float) -> str:
    """Does the 95% interval of objective - grpo (``diffs``, fractions, seed by seed) hold the
    paper's gaps (points)? 'agrees', 'partly' or 'disagrees' with the interval after a colon, or
    SPLIT where the paper's models lie on both sides, more than 2 x ``margin`` points apart."""
    ci = stats.mean_ci(diffs)
    lo, hi = 100 * ci["ci_low"], 100 * ci["ci_high"]
    inside = [lo <= g <= hi for g in paper_gaps]
    if min(paper_gaps) < 0 < max(paper_gaps) and max(paper_gaps) - min(paper_gaps) > 2 * margin:
        return f"{SPLIT}: opposite signs, {max(paper_gaps) - min(paper_gaps):.1f} points apart (> 2 x {margin:.0f})"
    if all(inside):
        return f"agrees: [{lo:+.1f}, {hi:+.1f}] holds every paper gap"
    if not any(inside):
        side = "above" if lo > max(paper_gaps) else "below" if hi < min(paper_gaps) else "between"
        return f"disagrees: [{lo:+.1f}, {hi:+.1f}] lies {side} the paper's gaps"
    return f"partly: [{lo:+.1f}, {hi:+.1f}] holds some of the paper's gaps"


def noise_word(n: dict) -> str:
    """A row of a results file's ``eval_noise``: the sd of one evaluation against the spread between
    seeds once that noise is taken out of it (fractions in, points out)."""
    if n["seed_sd"] is None:
        return "no seed spread yet (one seed)"
    left = math.sqrt(max(n["seed_sd"] ** 2 - n["eval_sd"] ** 2, 0.0))
    return (f"sd over seeds {100 * n['seed_sd']:.1f}, {100 * left:.1f} without the evaluation noise: the evaluation "
            "noise is " + ("below it" if n["eval_sd"] < left else "NOT below it (more samples would help)"))


def two_readings(e: dict) -> tuple[str, str] | None:
    """(direction, TOST verdict before Holm) of one equivalence row; None without an interval. The
    direction is 'above' or 'below' GRPO where the 95% interval excludes 0, else 'no side'."""
    if not spread(e):
        return None
    return (e["direction"].split(" ")[0] if e["direction"] else "no side"), e["verdict"]


def weak(r: tuple[str, str]) -> bool:
    """A reading too wide to contradict another: its TOST interval straddles the margin."""
    return r[1] in ("underpowered", "not shown equivalent")


def micro_word(mine: tuple[str, str] | None, other: tuple[str, str]) -> str:
    """One row's two readings set beside another's: 'disagrees' needs opposite directions or
    equivalent against different; 'agrees' when both lie on the same side of GRPO, or neither is
    weak; else 'cannot tell (underpowered)'."""
    if mine is None:
        return "cannot tell (one seed)"
    if {mine[0], other[0]} == {"above", "below"} or {mine[1], other[1]} == {"equivalent", "different"}:
        return "disagrees"
    if mine[0] == other[0] != "no side":  # both shown on the same side of GRPO
        return "agrees"
    return "cannot tell (underpowered)" if weak(mine) or weak(other) else "agrees"

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
    if not spread(ci):
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
