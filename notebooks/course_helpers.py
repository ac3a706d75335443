"""Small helpers shared by notebooks 05-08 and tools/readme_smollm2.py (kept out of course_lib:
they only format and word).

``compact_summary`` prints the shipped summary as a narrow table (under 160 characters a line):
one row per arm with the mean and 95% half-width over seeds, in percent or points.
``ci_cell`` writes one interval as a table cell, ``text_table`` lines up the cells of a section's
one table.

The reading rules of notebook 06 (sections 5, 9 and 10), in one place so that README's real-model
section words its verdicts as the notebook does: ``spread`` (an interval with a width), ``vs_zero``,
``tost_word``, ``agreement`` (an interval against the paper's gaps), ``arm_name``, ``noise_word``
(evaluation noise against the seed spread, pooled and arm by arm), ``sft_word`` (a gain read two
ways), ``paired_p``, ``learning_word`` and ``learning_line`` (section 5's rule: learning from the
reward or sharpening), ``planned_seeds``, ``margin_span`` (the margin as a share of a gain's
interval), ``finished_word`` (accuracy among the answers the cap did not cut), ``cap_bound`` and
``cap_row`` (the most the cap can have cost one run, and its TOST row), ``seed_precisions``,
``precision_word`` and ``precision_words`` (seeds of two precisions set apart),
``tost_by_precision`` (the TOST rows on one precision's seeds), ``ab_diff`` and ``length_word``
(GRPO's two aggregations), and, for a row set beside another, ``two_readings``, ``weak``,
``micro_word`` and ``beside``.
"""

import math

from course_lib import stats
from course_lib.models import lr_text

SPLIT = "the paper's models disagree with each other"


def spread(ci: dict) -> bool:
    """An interval with a width: one seed has none, nor have seeds that all gave the same value
    (a width under 1e-12 is float rounding)."""
    return ci.get("ci_low") is not None and ci["ci_high"] - ci["ci_low"] > 1e-12


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


def paired_p(diffs: list[float]) -> float | None:
    """Two-sided p of a paired t-test that the mean of ``diffs`` (seed by seed) is 0; None under
    two values. Differences that all agree (no spread) give 0.0 away from 0 and 1.0 at it, as
    ``stats.tost`` reads them."""
    d = stats.mean_ci(diffs)
    if d["ci_low"] is None:
        return None
    if not spread(d):
        return 1.0 if abs(d["mean"]) < 1e-12 else 0.0
    return 2 * (1 - stats.t_cdf(abs(d["mean"]) / (d["std"] / math.sqrt(d["n"])), d["n"] - 1))


def learning_word(gains: dict, ctrl: dict, diffs: dict) -> tuple[list[str], list[str], str]:
    """Section 5's rule on one task, as section 10a reads it (and README's real-model section):
    ``gains`` {reward-weighted arm: its gain over the base at its best}, ``ctrl`` the reward-free
    control's, ``diffs`` {arm: its final accuracy minus the control's, paired by seed}.
    'sharpening' where the control ends above the base's best; 'no learning shown' where no
    reward-weighted arm does; 'learning from the reward' where some do and the control ends below
    the base's best, or, where the control's interval holds 0 (a control not shown above the
    base's best is not shown below the arms), where one of them is shown above the control itself:
    a paired t-test, two-sided as every direction in the course is read, Holm over every
    reward-weighted arm of the task (a family fixed by the plan, not by the data), at 0.05.
    Returns (the arms above the base's best, the arms shown above the control, the words)."""
    if any(g.get("ci_low") is None for g in [*gains.values(), ctrl]):
        return [], [], "no verdict yet (an arm with one seed or no run)"
    ups, side = [m for m, g in gains.items() if spread(g) and g["ci_low"] > 0], vs_zero(ctrl)
    if side == "above" or not ups:
        return ups, [], "sharpening" if side == "above" else "no learning shown"
    if side == "below":
        return ups, ups, "learning from the reward"
    holm = dict(zip(gains, stats.holm([paired_p(diffs[m]) for m in gains])))
    beats = [m for m in ups if holm[m] is not None and holm[m] < 0.05 and sum(diffs[m]) > 0]
    shown = [f"{m} {holm[m]:.3g}" for m in ups if holm[m] is not None]
    n = sum(q is not None for q in holm.values())
    fam = (f"adjusted p, Holm over the {n} reward-weighted arm{'s' * (n > 1)}: {', '.join(shown)}" if shown
           else "no arm with two seeds paired with the control")
    return ups, beats, (f"learning from the reward ({', '.join(beats)} shown above the control; {fam})" if beats
                        else f"no verdict: no reward-weighted arm is shown above the control ({fam})")


def learning_line(main: list[dict], gains: dict, task: str, control: str = "confidence") -> tuple[list[str], str, str]:
    """Section 10a's reading of ``task`` from the comparison's runs ``main`` and ``gains``
    {(task, arm): gain over the base at its best}: the arms above the base's best, the words of
    :func:`learning_word`, and what is printed beside them: the control's gain and, where it holds
    0, each arm above the base's best minus the control, paired by seed (95% each, uncorrected)."""
    ctrl = gains.get((task, control))
    if ctrl is None:
        return [], "no verdict yet (no run of the control)", ""
    arms = [m for t, m in gains if t == task and m != control]
    diffs = {m: stats.paired(main, next(stats.arm_key(r) for r in main if (r["task"], r["objective"]) == (task, m)), control)
             for m in arms}
    ups, _, word = learning_word({m: gains[task, m] for m in arms}, ctrl, diffs)
    vs = ups and ctrl["ci_low"] is not None and vs_zero(ctrl) == "indistinguishable from"
    return ups, word, f"the control {ci_cell(ctrl)}" + (
        "; minus the control, paired by seed (95% each, uncorrected): "
        + ", ".join(f"{m} {ci_cell(stats.mean_ci(diffs[m]))} ({len(diffs[m])} seeds)" for m in ups) if vs else "")


def planned_seeds(specs) -> dict:
    """{(task, arm name): the seeds a plan gives the arm} from its runs (``plans.plan_evidence``'s first item)."""
    out: dict = {}
    for s in specs:
        out.setdefault((s.task, arm_name({**vars(s), "learning_rate": s.learning_rate or 1e-4})), set()).add(s.seed)
    return out


def finished_word(runs: list[dict]) -> tuple[str, str | None]:
    """Section 10d's cap check of one arm: accuracy among the final answers that ended before the cap
    against its seeds' base at step 0 read the same way, the difference paired by seed with a 95%
    interval; returns the words and the side ("above", "below", "neither" or None without an
    interval). Only for runs that score a cut answer wrong (the smollm2 plan's ``truncated: "wrong"``):
    then it is accuracy / (1 - share cut). Those answers are a selection that likely favours the arm
    (it keeps the problems it still finishes, the base nearly all), so "below" holds despite the
    selection, while "neither" does not show that the cap explains the whole loss and "above" may
    be the selection alone."""
    if any(r["base_truncated"] >= 1 for r in runs):
        raise ValueError("a base evaluation with every answer cut: no answer ended before the cap")
    pairs = [(r["final_accuracy"] / (1 - r["final_truncated"]), r["base_accuracy"] / (1 - r["base_truncated"]))
             for r in runs if r["final_truncated"] < 1]
    if not pairs:
        return "every final answer cut at the cap: none ended before it", None
    d = stats.mean_ci([a - b for a, b in pairs])
    side = ("above" if d["ci_low"] > 0 else "below" if d["ci_high"] < 0 else "neither") if spread(d) else None
    return (f"right among uncut answers {100 * sum(a for a, _ in pairs) / len(pairs):.1f}% (base "
            f"{100 * sum(b for _, b in pairs) / len(pairs):.1f}%): "
            + (f"{ci_cell(d)} points, " if d["ci_low"] is not None else f"{100 * d['mean']:+.1f} points (one seed), ")
            + {"above": "above the base's (a selection that favours the arm)", "below": "below the base's even there", None: "no interval",
               "neither": "no difference shown (a selection that favours the arm)"}[side], side)


def cap_bound(r: dict, bar: float) -> str:
    """The most the length cap can have cost run ``r`` (a run that scores a cut answer wrong): its
    final accuracy were every cut answer right, against the base's best ``bar``. Under the bar, the
    cap cannot have decided the run's reading against it."""
    up = r["final_accuracy"] + r["final_truncated"]
    return (f"ends at {100 * r['final_accuracy']:.1f}%, and at {100 * up:.1f}% were every cut answer right, "
            f"{'still under' if up < bar else 'at or over'} the base's best {100 * bar:.1f}%")


def cap_row(main: list[dict], r: dict, margin: float) -> str:
    """How far the length cap can move the TOST row of run ``r``'s arm against GRPO: the row
    (``stats.equivalence`` on ``main``, the comparison's runs, 90%, before Holm) recomputed with
    every answer ``r`` had cut counted right, beside the row as it stands; '' for a GRPO run (every
    row pairs with it) or an arm without a row."""
    me = (stats.arm_key(r), r["seed"])
    up = [{**x, "final_accuracy": x["final_accuracy"] + x["final_truncated"]} if (stats.arm_key(x), x["seed"]) == me else x
          for x in main]
    rows = [{(e["task"], e["objective"]): e for e in stats.equivalence(rs, margin)} for rs in (main, up)]
    if r["objective"] == "grpo" or (r["task"], r["objective"]) not in rows[0]:
        return ""
    now, moved = (x[r["task"], r["objective"]] for x in rows)

    def row(e):
        return (f"{ci_cell({'mean': e['diff'], 'ci_low': e['ci_low'], 'ci_high': e['ci_high']})}, {tost_word(e)}"
                + f"; {e['direction']}" * bool(e.get("direction")))
    return f"its row against GRPO (90%, before Holm) would read {row(moved)}, where it reads {row(now)}"


def margin_span(margin: float, gain: dict) -> str:
    """The TOST margin as a share of a gain, over that gain's 95% interval: '16% to 147%' (the
    share at its upper end to the share at its lower end); 'from 16%, no upper end' where the
    interval reaches 0; 'one seed: no range' without one."""
    if gain.get("ci_low") is None:
        return "one seed: no range"
    lo = f"{100 * margin / gain['ci_high']:.0f}%" if gain["ci_high"] > 0 else "-"
    return f"from {lo}, no upper end" if gain["ci_low"] <= 0 else f"{lo} to {100 * margin / gain['ci_low']:.0f}%"


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


def arm_name(r: dict) -> str:
    """A SmolLM2 arm's name: the objective, its learning rate where not the plan's 1e-4, its
    aggregation where not sequence ('sft- lr 1e-5', 'grpo token')."""
    return r["objective"] + f" lr {lr_text(r['learning_rate'])}" * (r["learning_rate"] != 1e-4) + (
        f" {r['aggregation']}" * (r["aggregation"] != "sequence"))


def _below(eval_sd: float, seed_sd: float) -> tuple[float, bool]:
    left = math.sqrt(max(seed_sd ** 2 - eval_sd ** 2, 0.0))  # the seed spread with the evaluation noise taken out
    return left, eval_sd < left


def noise_word(n: dict, runs: list[dict] | None = None) -> str:
    """A row of a results file's ``eval_noise``: the sd of one evaluation against the spread between
    seeds once that noise is taken out, pooled over arms (the file's ``seed_sd``) and, given the
    file's ``runs``, arm by arm (a pooled sd is dominated by the arms that spread most)."""
    if n["seed_sd"] is None:
        return "no seed spread yet (one seed)"
    left, ok = _below(n["eval_sd"], n["seed_sd"])
    out = (f"sd over seeds {100 * n['seed_sd']:.1f} pooled over arms, {100 * left:.1f} without the evaluation noise: "
           "the evaluation noise is " + ("below it" if ok else "NOT below it (more samples would help)"))
    if runs is None:
        return out
    sds = {arm_name(g[0]): stats.mean_ci(r["eval_repeat"][0] for r in g)["std"]
           for g in stats.arms([r for r in runs if r["task"] == n["task"] and r.get("eval_repeat")]).values() if len(g) > 1}
    miss = [f"{a} {100 * sd:.1f} -> {100 * _below(n['eval_sd'], sd)[0]:.1f}" for a, sd in sds.items()
            if not _below(n["eval_sd"], sd)[1]]  # seeds that differ little beyond the evaluation noise
    return out + f"; arm by arm, below it in {len(sds) - len(miss)} of {len(sds)}" + (
        f" (not in {', '.join(miss)} with the evaluation noise taken out)" if miss else "")


def seed_precisions(runs: list[dict], plan_precision: str) -> dict[int, str]:
    """Seed -> the precision its runs computed in (a record names its own, else it is the plan's). Every
    run of a seed must share one, or the seed's comparisons would not pair."""
    by: dict[int, set] = {}
    for r in runs:
        by.setdefault(r["seed"], set()).add(r.get("precision", plan_precision))
    mixed = {s: sorted(v) for s, v in by.items() if len(v) > 1}
    if mixed:
        raise ValueError(f"seeds whose runs computed in more than one precision: {mixed}")
    return {s: v.pop() for s, v in sorted(by.items())}


def precision_word(first: list[float], late: list[float], names: tuple[str, str] = ("first", "later")) -> str:
    """One measurement (fractions) over the seeds of two precisions (``names``), in points: with two seeds
    or more on each side, the later seeds' mean minus the first seeds' with a Welch 95% interval ('no
    difference shown' where it holds 0, else 'they differ'); with fewer, both means and 'no interval yet'."""
    m1, m2 = sum(first) / len(first), sum(late) / len(late)
    if min(len(first), len(late)) < 2:
        return f"{names[0]} {100 * m1:.1f}, {names[1]} {100 * m2:.1f}: no interval yet"
    v1, v2 = (sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs) for xs, m in ((first, m1), (late, m2)))
    d = m2 - m1
    if v1 + v2 < 1e-24:
        return f"{names[1]} - {names[0]} {100 * d:+.1f}, no spread: no interval"
    df = (v1 + v2) ** 2 / (v1**2 / (len(first) - 1) + v2**2 / (len(late) - 1))  # Welch-Satterthwaite
    h = stats.t_quantile(max(1, int(df))) * math.sqrt(v1 + v2)
    word = "no difference shown" if d - h <= 0 <= d + h else "they differ"
    return f"{names[1]} - {names[0]} {100 * d:+.1f} [{100 * (d - h):+.1f}, {100 * (d + h):+.1f}]: {word}"


def precision_words(runs: list[dict], task: str, arms: list[str], prec: dict[int, str], first: str, late: str) -> list[str]:
    """Section 10c's precision check on one task: the base at step 0, then each of ``arms`` (``arm_name``s),
    the ``late`` seeds against the ``first`` ones (``prec``: seed -> precision), where both sides have seeds."""
    def vals(p, arm=None):  # per seed of precision p: the base at step 0 (arm None) or the arm's final accuracy
        return list({r["seed"]: r["base_accuracy"] if arm is None else r["final_accuracy"] for r in runs
                     if r["task"] == task and prec[r["seed"]] == p and arm in (None, arm_name(r))}.values())
    return [f"{a or 'base at step 0'} {precision_word(vals(first, a), vals(late, a), (first, late))}"
            for a in [None, *arms] if vals(first, a) and vals(late, a)]


def tost_by_precision(main: list[dict], eq: dict, prec: dict[int, str], margin: float) -> list[tuple]:
    """A sensitivity of the TOST rows ``eq`` ({(task, objective): row}, before Holm): each recomputed
    on the seeds of one precision alone. Per precision ``(precision, its seeds, the rows whose reading
    (verdict; direction) changes as 'objective on task: all -> alone', or None with one seed, the
    number of rows recomputed: those with two or more seeds of that precision)``. A row that changes is sensitive to the other precision's seeds or
    to having fewer: fewer seeds widen every interval, which can turn "different" into "not shown
    equivalent", or a verdict into "underpowered", with no precision effect at all."""
    def reading(e):
        return tost_word(e) + (f"; {e['direction']}" if e.get("direction") else "")

    out = []
    for p in dict.fromkeys(prec.values()):
        seeds = [s for s, q in prec.items() if q == p]
        if len(seeds) < 2:
            out.append((p, seeds, None, 0))
            continue
        alone = {(e["task"], e["objective"]): e for e in stats.equivalence([r for r in main if prec[r["seed"]] == p], margin)
                 if e["n"] > 1}  # a row with one seed there has no interval to read
        if not alone.keys() <= eq.keys():
            raise ValueError(f"rows on one precision that the whole file lacks: {sorted(alone.keys() - eq.keys())}")
        out.append((p, seeds, [f"{o} on {t}: {reading(eq[t, o])} -> {reading(e)}" for (t, o), e in alone.items()
                               if reading(e) != reading(eq[t, o])], len(alone)))
    return out


def ab_diff(ab: dict, key: str) -> dict:
    """``stats.mean_ci`` of sequence minus token aggregation in ``key``, seed by seed (``ab``:
    aggregation -> seed -> run), over the seeds where both runs have a value."""
    both = sorted(set(ab["sequence"]) & set(ab["token"]))
    return stats.mean_ci([ab["sequence"][s][key] - ab["token"][s][key] for s in both
                          if ab["sequence"][s][key] is not None and ab["token"][s][key] is not None])


def length_word(d: dict) -> str:
    """Notebook 07's rule on GRPO's sequence minus token aggregation (``d``: measure -> ``ab_diff``):
    the wrong answers that ended before the cap, with the error mix and the cut share beside it."""
    c = d["len_incorrect_complete"]
    word = ("inconclusive (one seed: no interval)" if c.get("ci_low") is None else "inconclusive (no spread)"
            if not spread(c) else "supports the 1/|o| length claim" if c["ci_low"] > 0
            else "contradicts the 1/|o| length claim" if c["ci_high"] < 0 else "inconclusive")
    for key, what in (("share_incorrect_guess", "the share of wrong answers without an ="),
                      ("final_truncated", "the share cut at the cap")):
        if spread(d[key]) and (d[key]["ci_low"] > 0 or d[key]["ci_high"] < 0):
            word += f" ({what} differs between the arms)"
    return word


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
    weak; else 'cannot tell (too wide)'."""
    if mine is None:
        return "cannot tell (one seed)"
    if {mine[0], other[0]} == {"above", "below"} or {mine[1], other[1]} == {"equivalent", "different"}:
        return "disagrees"
    if mine[0] == other[0] != "no side":  # both shown on the same side of GRPO
        return "agrees"
    return "cannot tell (too wide)" if weak(mine) or weak(other) else "agrees"

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


def beside(e: dict, micro_e: dict, paper_rows: list[dict], diffs: list[float], margin: float) -> tuple:
    """Section 10f for one SmolLM2 TOST row ``e``: ``(its two readings, the micro row's, the word
    against the micro row, the word against the paper's gaps)``. ``paper_rows``: the paper's Qwen2.5
    GSM8K rows (sft- there only "matches GRPO": a gap of 0); ``diffs``: the row's paired
    differences; ``margin``: the TOST margin (fractions)."""
    obj = e["objective"]
    mine, micro = two_readings(e), two_readings(micro_e)
    vs_micro = "cannot tell (no spread)" if mine is None and e["n"] >= 2 else micro_word(mine, micro)
    if mine is None:
        return mine, micro, vs_micro, "cannot tell (one seed)" if len(diffs) < 2 else "cannot tell (no spread)"
    gaps = [p[obj] - p["grpo"] for p in paper_rows if obj in p] if obj != "sft-" else [0.0]
    theirs = agreement(gaps, diffs, 100 * margin).split(":")[0]
    wide = weak(mine) or stats.mean_ci(diffs)["half_width"] > margin  # a wide interval holds any gap
    return mine, micro, vs_micro, "cannot tell (too wide)" if wide and theirs in ("agrees", "partly") else theirs
