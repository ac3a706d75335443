"""The statistics behind every verdict of the course: intervals, TOST, power, bootstrap, Holm.

Pure Python (plus numpy for the bootstrap); no model, no files. ``reproduce`` calls
:func:`summarize` and :func:`equivalence` on its run records, the report prints their rows,
and a notebook asks one of them in one line.

- Intervals are Student-t over seeds: ``mean_ci(values, level)`` for any level in (0, 1).
  In the tables "+-" is the half-width of the 95% interval over seeds.
- Equivalence to GRPO is TOST (two one-sided tests at 5%): *equivalent* when the 90%
  interval of the paired difference lies strictly inside (-margin, +margin). Each row also
  carries ``min_margin`` (the smallest margin at which it would pass), ``p_tost``, a verdict
  after Holm's correction over the file's family of rows (``verdict_holm``), the direction of
  the 95% interval ("above GRPO" when it excludes 0 on the positive side) and the margin as a
  share of GRPO's own gain.
- Verdicts (:func:`verdict`): "equivalent"; "different" when the 90% interval lies entirely
  beyond the margin; "underpowered" only when it straddles the margin with the estimate inside.
- pass@k intervals: :func:`pass_at_k_ci` from per-problem correct counts; :func:`bootstrap_ci`
  resamples seeds and problems (a two-level cluster bootstrap) of per-problem pass@k values, so
  the interval stays inside [0, 1].

Simplified: t quantiles at 0.975 and 0.95 come from the standard tables (df <= 30) and a
Cornish-Fisher expansion above; any other level is the numeric inverse of the t CDF, which
is integrated with Simpson's rule (no scipy). Power assumes normal paired differences with
the observed spread as the true one (a plug-in, so it is optimistic with few seeds).
"""

from __future__ import annotations

import math

# one-sided Student-t quantiles t(q, df) for df = 1..30 (standard tables): q = 0.975 and 0.95
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)
_T95 = (6.3138, 2.9200, 2.3534, 2.1318, 2.0150, 1.9432, 1.8946, 1.8595, 1.8331, 1.8125,
        1.7959, 1.7823, 1.7709, 1.7613, 1.7531, 1.7459, 1.7396, 1.7341, 1.7291, 1.7247,
        1.7207, 1.7171, 1.7139, 1.7109, 1.7081, 1.7056, 1.7033, 1.7011, 1.6991, 1.6973)
_Z = {0.975: 1.959964, 0.95: 1.644854, 0.9: 1.281552, 0.8: 0.841621}
ALPHA = 0.05  # each one-sided test of TOST, and the family-wise level of Holm's correction


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with ``df`` degrees of freedom.

    With ``t = sqrt(df) tan(u)`` the density becomes ``c cos(u)**(df - 1)``, smooth on
    [0, pi/2): Simpson's rule with 400 intervals is exact to ~1e-10.

    Example: ``t_cdf(0, 3)`` -> 0.5; ``t_cdf(12.7062, 1)`` -> 0.975.
    """
    u, n = math.atan(abs(x) / math.sqrt(df)), 400
    h = u / n
    s = sum((1 if i in (0, n) else 4 if i % 2 else 2) * math.cos(i * h) ** (df - 1) for i in range(n + 1))
    area = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(math.pi) * s * h / 3
    return 0.5 + math.copysign(area, x)


def t_quantile(df: int, q: float = 0.975) -> float:
    """t(q, df): the x with ``t_cdf(x, df) == q``, for any q in (0, 1).

    q = 0.975 (95% intervals) and 0.95 (90%, TOST) from the tables for df <= 30 and a
    Cornish-Fisher expansion above (error < 1e-4); other q by bisection on :func:`t_cdf`.

    Example: ``t_quantile(2)`` -> 4.3027; ``t_quantile(4, 0.95)`` -> 2.1318;
    ``t_quantile(4, 0.995)`` -> 4.6041.
    """
    if df < 1:
        raise ValueError(f"t_quantile needs df >= 1 (at least two seeds), got df={df}")
    if not 0 < q < 1:
        raise ValueError(f"t_quantile needs a probability q in (0, 1), got q={q}")
    if q < 0.5:
        return -t_quantile(df, 1 - q)
    if q in (0.975, 0.95):
        table = _T975 if q == 0.975 else _T95
        if df <= len(table):
            return table[df - 1]
        z = _Z[q]
        return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
                + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        lo, hi = hi, 2 * hi
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < q else (lo, mid)
    return (lo + hi) / 2


def mean_ci(values, level: float = 0.95) -> dict:
    """Mean and two-sided t-interval at ``level`` over seeds; ``None`` values are left out.

    Returns ``{"mean", "ci_low", "ci_high", "half_width", "std", "n"}`` (sample std, ddof 1).
    With one value the interval is ``None``; values that differ by float rounding alone (under
    1e-12) have std 0. A level outside (0, 1) raises ValueError.

    Example: ``mean_ci([1, 2, 3])`` -> mean 2, std 1, half width 4.3027 / sqrt(3) = 2.4841.
    """
    if not 0 < level < 1:
        raise ValueError(f"mean_ci needs a level in (0, 1) such as 0.95 or 0.90, got {level}")
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    mean = sum(xs) / n if n else None
    out = {"mean": mean, "ci_low": None, "ci_high": None, "half_width": None, "std": None, "n": n}
    if n >= 2:
        std = 0.0 if max(xs) - min(xs) < 1e-12 else math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))  # equal: 0
        half = t_quantile(n - 1, round((1 + level) / 2, 12)) * std / math.sqrt(n)
        out.update(ci_low=mean - half, ci_high=mean + half, half_width=half, std=std)
    return out


def tost(diffs, margin: float, *, reference: str = "grpo") -> dict:
    """Two one-sided tests at 5% of the paired differences ``diffs`` (arm minus reference).

    Equivalent when the 90% t-interval lies strictly inside (-margin, +margin). Also returns
    ``p_tost`` (the larger one-sided p), ``min_margin`` (max |bound| of the 90% interval: the
    smallest margin that passes), ``direction`` (from the 95% interval), ``verdict`` and
    ``seeds_needed`` (80% power at the observed difference and spread; None when none suffice).

    Example: ``tost([0.01, -0.01, 0.0, 0.02, -0.02], 0.05)["equivalent"]`` -> True.
    """
    ci, ci95 = mean_ci(diffs, level=0.90), mean_ci(diffs)
    ok = ci["ci_low"] is not None and -margin < ci["ci_low"] and ci["ci_high"] < margin
    sd, diff, n = ci["std"], ci["mean"], ci["n"]
    row = {"diff": diff, "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": n, "sd": sd,
           "margin": margin, "equivalent": bool(ok),
           "seeds_needed": seeds_for_tost(sd, margin, diff=diff) if sd else None,
           "p_tost": None, "min_margin": None, "direction": None}
    if ci["ci_low"] is None:
        return {**row, "verdict": verdict(row)}
    if sd:
        se = sd / math.sqrt(n)
        p = max(1 - t_cdf((diff + margin) / se, n - 1), t_cdf((diff - margin) / se, n - 1))
    else:
        p = 0.0 if abs(diff) < margin else 1.0
    side = "above" if ci95["ci_low"] > 0 else "below" if ci95["ci_high"] < 0 else None
    row.update(p_tost=p, min_margin=max(abs(ci["ci_low"]), abs(ci["ci_high"])),
               direction=f"{side} {reference.upper()}" if side else None)
    return {**row, "verdict": verdict(row)}


def verdict(row: dict) -> str:
    """The TOST verdict of a row with ``ci_low``, ``ci_high`` (90%), ``margin``, ``equivalent``.

    "equivalent" inside the margin; "different" when the interval lies entirely beyond it; when
    it straddles the margin, "underpowered" if the estimate ``diff`` lies inside (more seeds
    could show equivalence), else "not shown equivalent" (no number of seeds would, at this
    difference); "no interval (one seed)" without an interval.

    Example at margin 0.05: [0.06, 0.09] -> "different"; [0.02, 0.07] with diff 0.045 ->
    "underpowered"; [0.04, 0.09] with diff 0.065 -> "not shown equivalent".
    """
    if row["ci_low"] is None:
        return "no interval (one seed)"
    if row["equivalent"]:
        return "equivalent"
    if row["ci_high"] <= -row["margin"] or row["ci_low"] >= row["margin"]:
        return "different"
    return "underpowered" if abs(row["diff"]) < row["margin"] else "not shown equivalent"


def seeds_for_tost(sd: float, margin: float, power: float = 0.8, *, diff: float = 0.0) -> int | None:
    """Seeds a paired TOST needs to declare equivalence with probability ``power`` when the true
    difference is ``diff`` and the paired differences have standard deviation ``sd``.

    At ``diff = 0`` both one-sided tests bind: the smallest n with
    ``margin * sqrt(n) / sd >= t(0.95, n-1) + t((1 + power) / 2, n-1)``; otherwise the nearer
    bound binds: ``(margin - |diff|)`` and ``t(power, n-1)``. The second quantile is
    approximated as ``z * t(0.95, n-1) / z(0.95)`` (exact for large n). A difference at or
    beyond the margin returns None: no number of seeds shows it equivalent.

    Example: ``seeds_for_tost(0.02, 0.05)`` -> 4; ``seeds_for_tost(0.03, 0.03)`` -> 11;
    ``seeds_for_tost(0.02, 0.05, diff=0.06)`` -> None.
    """
    if power not in (0.8, 0.9) or not sd > 0 or not margin > 0:
        raise ValueError("seeds_for_tost needs sd > 0, margin > 0 and power 0.8 or 0.9")
    if abs(diff) >= margin:
        return None
    z = _Z[round((1 + power) / 2, 12)] if diff == 0 else _Z[power]
    for n in range(2, 10_000):
        if (margin - abs(diff)) * math.sqrt(n) / sd >= t_quantile(n - 1, 0.95) * (1 + z / _Z[0.95]):
            return n
    return None


def holm(pvalues) -> list[float | None]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order;
    ``None`` stays ``None`` and does not count towards the family.

    Example: ``holm([0.01, 0.04, 0.03])`` -> ``[0.03, 0.06, 0.06]``.
    """
    idx = sorted((i for i, p in enumerate(pvalues) if p is not None), key=lambda i: pvalues[i])
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (len(idx) - rank) * pvalues[i]))
        out[i] = running
    return out


def bootstrap_ci(table, level: float = 0.95, reps: int = 2000, seed: int = 0) -> dict:
    """Mean of a (seeds, problems) table and its percentile interval from a bootstrap that
    resamples seeds and, in each replicate, problems (the same problems for every seed).

    ``table[s][i]`` is a value in [0, 1] for seed s and problem i (e.g. that problem's unbiased
    pass@k), so every replicate, and the interval, lies in [0, 1]. Returns ``{"mean", "ci_low",
    "ci_high", "n_seeds", "n_problems"}``.

    Example: ``bootstrap_ci([[1, 0, 1, 1]])`` -> mean 0.75, interval inside [0, 1].
    """
    import numpy as np

    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci needs a level in (0, 1), got {level}")
    x = np.asarray(table, dtype=float)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty (seeds, problems) table, got shape {x.shape}")
    rng = np.random.default_rng(seed)
    s = rng.integers(0, x.shape[0], size=(reps, x.shape[0]))
    p = rng.integers(0, x.shape[1], size=(reps, x.shape[1]))
    means = x[s[:, :, None], p[:, None, :]].mean(axis=(1, 2))
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(x.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "n_seeds": x.shape[0], "n_problems": x.shape[1]}


def pass_at_k_ci(correct, n: int, k: int, level: float = 0.95, reps: int = 2000, seed: int = 0, base=None) -> dict:
    """pass@k with the seed-and-problem bootstrap interval of :func:`bootstrap_ci`; with ``base``
    (the base's counts on the same problems, measured once) the model's pass@k minus the base's,
    paired by problem.

    Args:
        correct: ``correct[s][i]`` right answers among the ``n`` samples of problem i in seed s
            (the same problems in every seed), shape (seeds, problems).

    Example: ``pass_at_k_ci([[0, 4, 1], [1, 4, 0]], n=4, k=2)["mean"]`` -> 0.5;
    ``pass_at_k_ci([[4, 0]], 4, 1, base=[0, 0])["mean"]`` -> 0.5.
    """
    from course_lib.evaluate import pass_at_k

    ref = [pass_at_k(n, c, k) for c in base] if base is not None else [0.0] * len(correct[0])
    return bootstrap_ci([[pass_at_k(n, c, k) - b for c, b in zip(row, ref, strict=True)] for row in correct],
                        level, reps, seed)


# ------------------------------------------------------------------- over a grid's run records

SUMMARY_METRICS = ("base_accuracy", "final_accuracy", "gain", "len_correct", "len_incorrect",
                   "len_incorrect_complete", "len_incorrect_worked", "share_incorrect_guess",
                   "train_len_correct", "train_len_incorrect", "train_clip_frac")


ARM = ("task", "objective", "aggregation", "mu", "learning_rate", "optimizer")  #: the fields of an arm


def arm_key(r: dict) -> tuple:
    """A run's arm: its values of :data:`ARM` (a record without ``optimizer`` used AdamW); its
    seeds are repeats of it. Runs of two arms are never pooled; :func:`paired` compares arms that
    differ in the objective alone."""
    return r["task"], r["objective"], r["aggregation"], r.get("mu", 1), r.get("learning_rate"), r.get("optimizer", "adamw")


def arm_fields(key: tuple, *skip: str) -> dict:
    """Arm ``key``'s fields of :data:`ARM` but ``skip``, ``optimizer`` only when not AdamW (as in
    the run records). Example: ``arm_fields(("t", "grpo", "token", 1, 0.2, "sgd"), "mu")`` ->
    ``{"task": "t", "objective": "grpo", "aggregation": "token", "learning_rate": 0.2, "optimizer": "sgd"}``."""
    return {k: v for k, v in zip(ARM, key) if k not in skip and (k, v) != ("optimizer", "adamw")}


def arms(runs: list[dict]) -> dict[tuple, list[dict]]:
    """The runs of each arm (:func:`arm_key`), arms in the order they first appear."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault(arm_key(r), []).append(r)
    return groups


def paired(runs, key: tuple, reference: str, metric: str = "final_accuracy") -> list[float]:
    """``metric`` of arm ``key`` (:func:`arm_key`) minus that of ``reference`` in the same task,
    aggregation, mu, learning rate and optimizer, for each seed both have."""
    ref = {r["seed"]: r[metric] for r in runs if arm_key(r) == (key[0], reference, *key[2:])}
    return [r[metric] - ref[r["seed"]] for r in runs if arm_key(r) == key
            and r["seed"] in ref and r[metric] is not None and ref[r["seed"]] is not None]


def summarize(runs: list[dict], *, reference: str = "grpo") -> list[dict]:
    """One entry per arm (:func:`arm_key`): mean and 95% CI over seeds of each metric in
    ``SUMMARY_METRICS``, plus ``diff_vs_grpo``: the paired difference of final accuracy to
    ``reference`` in the same arm otherwise (:func:`paired`), seed by seed."""
    out = []
    for key, rs in arms(runs).items():
        entry = {**arm_fields(key), "ablation": all(r.get("ablation", False) for r in rs),
                 "seeds": sorted(r["seed"] for r in rs), "n": len(rs)}
        entry.update({m: mean_ci(r.get(m) for r in rs) for m in SUMMARY_METRICS})
        diffs = paired(runs, key, reference)
        entry[f"diff_vs_{reference}"] = mean_ci(diffs) if diffs and key[1] != reference else None
        out.append(entry)
    return out


def equivalence(runs: list[dict], margin: float, *, reference: str = "grpo") -> list[dict]:
    """TOST of every main-comparison arm against ``reference`` in the same arm otherwise (:func:`paired`).

    The rows are one family: ``p_holm`` is Holm's adjusted ``p_tost`` over them and
    ``verdict_holm`` reads "equivalent" only where ``p_holm`` < 5% (a row equivalent before the
    correction but not after is "underpowered"). ``reference_gain`` is the reference's mean
    gain over the base and ``margin_share_of_gain`` the margin as a share of it.
    """
    rows = []
    for key in dict.fromkeys(arm_key(r) for r in runs if not r.get("ablation")):
        if key[1] != reference and (diffs := paired(runs, key, reference)):
            gain = mean_ci(r.get("gain") for r in runs if arm_key(r) == (key[0], reference, *key[2:]))["mean"]
            rows.append({**arm_fields(key, "aggregation"), "reference": reference,
                         **tost(diffs, margin, reference=reference), "reference_gain": gain,
                         "margin_share_of_gain": margin / gain if gain and gain > 0 else None})
    for row, p in zip(rows, holm([r["p_tost"] for r in rows])):
        row["p_holm"] = p
        row["verdict_holm"] = ("equivalent" if p is not None and p < ALPHA else
                               "underpowered" if row["verdict"] == "equivalent" else row["verdict"])
    return rows


def _base_curve(found: dict) -> dict:
    """The pass@k curve of a base file: ``measure``'s dict, or (older files) the curve itself."""
    return found.get("pass_at_k") or {} if any(not k.isdigit() for k in found) else found


def pass_at_k_rows(runs: list[dict], base: dict[str, dict], saturated: float = 0.95) -> list[dict]:
    """Rows ``task, model, split, k, pass_at_k, ci_low, ci_high, n`` for the base and each objective
    (its runs at mu 1 with AdamW).

    With per-problem counts (``pass_at_k_counts``) the interval is :func:`pass_at_k_ci`'s
    bootstrap over seeds and problems (inside [0, 1]); older records get a 95% t-interval over
    seeds. At the largest k a trained model's row gets ``verdict`` against the base:
    "saturated" when the base's pass@k >= ``saturated`` (a ceiling decides nothing), else "above
    base" / "below base" where the 95% interval of the difference excludes 0 (``vs_base``: paired by
    problem, :func:`pass_at_k_ci` with ``base``, when both have counts on the same split; without counts, where
    the two intervals do not overlap), else "no difference shown".
    """
    groups: dict[tuple, list[dict]] = {(t, "base"): [{"pass_at_k": _base_curve(b), "pass_at_k_counts": b.get(
        "pass_at_k_counts") if "pass_at_k" in b else None}] for t, b in base.items()}
    for r in runs:
        if r.get("pass_at_k") and not r.get("ablation") and (r.get("mu", 1), r.get("optimizer", "adamw")) == (1, "adamw"):
            groups.setdefault((r["task"], r["objective"]), []).append(r)
    rows = []
    for (task, model), rs in groups.items():
        counts = [r["pass_at_k_counts"] for r in rs if r.get("pass_at_k_counts")]
        for k in rs[0]["pass_at_k"]:
            ci = (pass_at_k_ci([c["correct"] for c in counts], counts[0]["n"], int(k)) if len(counts) == len(rs)
                  else mean_ci(r["pass_at_k"].get(k) for r in rs))
            rows.append({"task": task, "model": model, "split": counts[0]["split"] if counts else "test", "k": int(k),
                         "pass_at_k": ci["mean"], "ci_low": ci["ci_low"], "ci_high": ci["ci_high"], "n": len(rs)})
    top = {(r["task"], r["model"]): r for r in sorted(rows, key=lambda r: r["k"])}  # each one's largest k
    for (task, model), r in top.items():
        if model == "base" or not (b := top.get((task, "base"))) or b["k"] != r["k"]:
            continue
        mine, theirs = [x.get("pass_at_k_counts") for x in groups[task, model]], groups[task, "base"][0]["pass_at_k_counts"]
        if theirs and all(c and c["split"] == theirs["split"] and c["n"] == theirs["n"] for c in mine):
            d = pass_at_k_ci([c["correct"] for c in mine], theirs["n"], r["k"], base=theirs["correct"])
            r["vs_base"] = {key: d[key] for key in ("mean", "ci_low", "ci_high")}
            lo, hi = d["ci_low"], d["ci_high"]
        else:
            lo, hi = (None, None) if None in (r["ci_low"], b["ci_low"]) else (r["ci_low"] - b["ci_high"], r["ci_high"] - b["ci_low"])
        r["verdict"] = ("saturated" if b["pass_at_k"] >= saturated else None if lo is None else "above base" if lo > 0
                        else "below base" if hi < 0 else "no difference shown")
    return rows


def pass_at_k_counts(runs: list[dict], base: dict[str, dict]) -> list[dict]:
    """The per-problem correct counts behind pass@k: rows ``task, model, seed, split, n`` with
    ``problem`` (indices into the split) and ``correct`` (right answers of n) as parallel lists."""
    found = [(t, "base", None, b.get("pass_at_k_counts")) for t, b in base.items() if "pass_at_k" in b]
    found += [(r["task"], r["objective"], r["seed"], r.get("pass_at_k_counts")) for r in runs]
    return [{"task": t, "model": m, "seed": s, "split": c["split"], "n": c["n"],
             "problem": list(range(len(c["correct"]))), "correct": c["correct"]} for t, m, s, c in found if c]


def temperature_sweep(runs: list[dict], base: dict[str, dict], control: str = "confidence") -> list[dict]:
    """Learning vs sharpening: one row per arm at mu 1 (task, model, learning rate, and optimizer
    when not AdamW) with held-out accuracy at each temperature of the sweep and greedy (``acc``:
    key -> mean and 95% interval over seeds; the base: one value), and for trained models
    ``gain`` (accuracy at the training temperature minus the base's there), ``gain_vs_best_base``
    (minus the base at its best temperature), both paired over seeds, ``control_share``: the
    ``control`` objective's mean gain as a share of this one's (same task, learning rate and optimizer),
    and ``control_share_vs_best``: the same for the gains over the base at its best temperature. The
    base's best is one evaluation (its noise: :func:`eval_noise`), not in these intervals.
    """
    rows, best = [], {}
    for t, b in base.items():
        if sw := b.get("temperature_sweep"):
            best[t] = max((v, k) for k, v in sw.items() if v is not None)
            rows.append({"task": t, "model": "base", "learning_rate": None, "seeds": 0, "best": best[t][1],
                         "acc": {k: mean_ci([v]) for k, v in sw.items()}})
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        if r.get("temperature_sweep") and r["task"] in best and r.get("mu", 1) == 1 and not r.get("ablation"):
            groups.setdefault(arm_key(r), []).append(r)
    for key, rs in groups.items():
        at, sw, task = str(float(rs[0]["temperature"])), [r["temperature_sweep"] for r in rs], key[0]
        rows.append({"task": task, "model": key[1], **arm_fields(key, *ARM[:4]), "seeds": len(rs),
                     "temperature": at, "acc": {k: mean_ci(x[k] for x in sw) for k in sw[0]},
                     "gain": mean_ci(x[at] - base[task]["temperature_sweep"][at] for x in sw),
                     "gain_vs_best_base": mean_ci(x[at] - best[task][0] for x in sw)})
    same = lambda r: (r["task"], r["learning_rate"], r.get("optimizer"))  # noqa: E731 (the control's arm)
    for key, share in (("gain", "control_share"), ("gain_vs_best_base", "control_share_vs_best")):
        gains = {same(r): r[key]["mean"] for r in rows if r["model"] == control}
        for row in rows:
            if row["model"] not in ("base", control) and row.get(key) and same(row) in gains:
                row[share] = gains[same(row)] / row[key]["mean"] if row[key]["mean"] else None
    return rows


def eval_noise(runs: list[dict]) -> list[dict]:
    """Evaluation noise against seed spread, per task: ``eval_sd`` is the sd of one evaluation
    from the runs' two evaluations with different sampling seeds (``eval_repeat``; sd of their
    difference / sqrt 2, pooled), ``seed_sd`` the pooled sd over seeds of the first evaluation
    within each arm; evaluation noise is small enough when ``eval_sd`` < ``seed_sd``.
    """
    out = []
    for task in dict.fromkeys(r["task"] for r in runs if r.get("eval_repeat")):
        rs = [r for r in runs if r["task"] == task and r.get("eval_repeat")]
        d2 = [(r["eval_repeat"][0] - r["eval_repeat"][1]) ** 2 / 2 for r in rs]
        spread = [(mean_ci(x["eval_repeat"][0] for x in g)["std"], len(g)) for g in arms(rs).values() if len(g) > 1]
        pooled = sum((n - 1) * sd**2 for sd, n in spread) / max(1, sum(n - 1 for _, n in spread))
        out.append({"task": task, "runs": len(rs), "eval_sd": math.sqrt(sum(d2) / len(d2)),
                    "seed_sd": math.sqrt(pooled) if spread else None})
    return out
