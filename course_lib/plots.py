"""Figures the notebooks share. Plain matplotlib; each function returns its Figure.

Simplified: no styling framework, no interactivity (the widgets in ``course_lib.widgets``
redraw these figures instead).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from course_lib.mdp import Policy, Reward, TokenTree, state_values

LABEL_LIMIT = 40  # above this many leaves, token and probability labels are left out


def tree_layout(tree: TokenTree) -> dict[tuple[int, ...], tuple[float, float]]:
    """(x, y) for each state: leaves evenly spaced in depth-first order, a parent centred
    over its children, ``y = -depth``.

    Example: for ``build_tree(("a", "b"), 1)`` the root sits at ``(0.5, 0)`` above leaves at
    ``(0, -1)`` and ``(1, -1)``.
    """
    pos: dict[tuple[int, ...], tuple[float, float]] = {}
    next_x = 0

    def place(s):
        nonlocal next_x
        kids = tree.children[s]
        if not kids:
            pos[s] = (float(next_x), -float(len(s)))
            next_x += 1
        else:
            for c in kids:
                place(c)
            pos[s] = (float(np.mean([pos[c][0] for c in kids])), -float(len(s)))

    place(())
    return pos


def draw_tree(
    tree: TokenTree,
    policy: Policy | None = None,
    reward: Reward | None = None,
    *,
    ax=None,
    title: str | None = None,
):
    """Draw the token tree; with a policy and a reward, colour states by ``V(s)``.

    Edges carry the token (and ``pi(a|s)`` when a policy is given) while the tree is small;
    rewarded leaves get a black ring and their text underneath.

    Args:
        tree: from :func:`course_lib.mdp.build_tree`.
        policy, reward: optional; both are needed for the value colouring.
        ax: an Axes to draw into (a new figure otherwise).

    Returns:
        The matplotlib Figure.
    """
    pos = tree_layout(tree)
    leaves = tree.leaves
    small = len(leaves) <= LABEL_LIMIT
    if ax is None:
        _, ax = plt.subplots(figsize=(min(14.0, 2 + 0.3 * len(leaves)), 1.3 * tree.depth + 1.5))
    fig = ax.figure
    V = state_values(tree, policy, reward) if policy is not None and reward is not None else None
    for s, kids in tree.children.items():
        probs = policy.probs(s) if policy is not None and kids else None
        for a, c in enumerate(kids):
            (x0, y0), (x1, y1) = pos[s], pos[c]
            w = 0.4 + 3.0 * probs[a] if probs is not None else 0.8
            ax.plot([x0, x1], [y0, y1], color="0.6", lw=w, zorder=1)
            if small:
                wide = bool(tree.children[c]) or not any(tree.children[k] for k in kids)
                show_p = probs is not None and tree.children[c] and wide
                label = tree.actions[a] + (f" {probs[a]:.2f}" if show_p else "")
                f = 0.7 if kids and tree.children[c] else 0.8  # near the child: less overlap
                ax.text(x0 + f * (x1 - x0), y0 + f * (y1 - y0), label, fontsize=6, ha="center",
                        va="center", color="0.2", bbox=dict(fc="white", ec="none", pad=0.1))
    xs = np.array([pos[s][0] for s in tree.states])
    ys = np.array([pos[s][1] for s in tree.states])
    size = 60 if small else 12
    if V is not None:
        sc = ax.scatter(xs, ys, c=[V[s] for s in tree.states], cmap="viridis", vmin=0, vmax=1,
                        s=size, zorder=2, edgecolors="none")
        fig.colorbar(sc, ax=ax, fraction=0.03, pad=0.01, label="V(s)")
    else:
        ax.scatter(xs, ys, s=size, color="tab:blue", zorder=2)
    if reward is not None:
        good = [s for s in leaves if reward(tree.text(s))]
        ax.scatter([pos[s][0] for s in good], [pos[s][1] for s in good], s=size * 2.2,
                   facecolors="none", edgecolors="black", lw=1.2, zorder=3)
        if small:
            for s in good:
                ax.text(pos[s][0], pos[s][1] - 0.3, repr(tree.text(s)), fontsize=7,
                        ha="center", va="top")
    ax.set_yticks(-np.arange(tree.depth + 1), [f"t={d}" for d in range(tree.depth + 1)])
    ax.set_xticks([])
    ax.set_ylim(-tree.depth - 0.7, 0.4)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or f"{len(tree.states)} states, {len(leaves)} complete responses")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------ reproduction figures


def smooth(xs: list, k: int) -> list:
    """Trailing moving average over ``k`` values that skips None (steps with no such answer).

    Example: ``smooth([1, None, 3], 2)`` -> ``[1.0, 1.0, 3.0]``.
    """
    out = []
    for i in range(len(xs)):
        w = [x for x in xs[max(0, i - k + 1): i + 1] if x is not None]
        out.append(sum(w) / len(w) if w else float("nan"))
    return out


def arm_label(objective: str, mu: int = 1) -> str:
    """An arm's name in tables and legends: the objective, and its mu when the ratio and clip act."""
    return objective + (f" (mu {mu})" if mu != 1 else "")


def _curve(results: dict, task, objective, aggregation, key, k, mu=1):
    """``(x, y)`` of one arm from ``results["curves"]`` (means over seeds): the held-out
    evaluations for ``key="eval:accuracy"``, else a training metric smoothed over ``k`` steps."""
    c = next((c for c in results.get("curves", []) if (c["task"], c["objective"], c["aggregation"],
              c.get("mu", 1)) == (task, objective, aggregation, mu)), None)
    if c is None:
        return None, None
    if key == "eval:accuracy":
        return np.array(c["eval_step"]), np.array(c["eval_accuracy"], dtype=float)
    ys = c.get(key) or []
    return (np.arange(1, len(ys) + 1), np.array(smooth(ys, k))) if ys else (None, None)


def result_figures(out, results: dict) -> list[str]:
    """The figures of a reproduction, drawn from its results (``curves``, ``pass_at_k``) into the
    folder ``out``: accuracy and lengths over steps, the aggregation ablation and pass@k (when
    measured). Returns the file names written."""
    from pathlib import Path

    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    out, runs, written = Path(out), results["runs"], []
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    main = [r for r in runs if not r["ablation"]]
    arms = list(dict.fromkeys((r["objective"], r.get("mu", 1)) for r in main))  # mu > 1: its own line
    agg = main[0]["aggregation"] if main else "sequence"
    k = max(1, min(10, max(r["steps"] for r in runs) // 6))
    panels = {"accuracy_over_steps.png": (("eval:accuracy", "held-out sampled accuracy"),
                                          ("accuracy", "accuracy of the training rollouts")),
              "lengths_over_steps.png": (("len_correct", "length of correct answers (tokens)"),
                                         ("len_incorrect", "length of incorrect answers (tokens)"))}
    for name, cols in panels.items():
        fig = Figure(figsize=(11, 3.3 * len(tasks)))
        axes = fig.subplots(len(tasks), 2, squeeze=False)
        for row, task in enumerate(tasks):
            for col, (key, title) in enumerate(cols):
                for i, (obj, mu) in enumerate(arms):
                    x, y = _curve(results, task, obj, agg, key, k, mu)
                    if x is not None:
                        axes[row, col].plot(x, y, "o-" if key.startswith("eval") else "-", ms=3, color=f"C{i}",
                                            label=arm_label(obj, mu))
                axes[row, col].set_title(f"{task}: {title}", fontsize=9)
                axes[row, col].set_xlabel("step")
            axes[row, 0].legend(fontsize=7)
        fig.suptitle(f"mean over seeds; training curves: moving average of {k} steps", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        written.append(name)
    if results["ablation"]:
        written.append(_ablation_figure(out, results, k))
    if results["pass_at_k"]:
        written.append(_pass_at_k_figure(out, results))
    return written


def _ablation_figure(out, results: dict, k: int) -> str:
    from matplotlib.figure import Figure

    pairs = list(dict.fromkeys((s["task"], s["objective"]) for s in results["ablation"]))
    fig = Figure(figsize=(14, 3.3 * len(pairs)))
    axes = fig.subplots(len(pairs), 3, squeeze=False)
    cols = (("len_correct", "length of correct answers"), ("len_incorrect", "length of incorrect answers"),
            ("eval:accuracy", "held-out sampled accuracy"))
    for row, (task, obj) in enumerate(pairs):
        for i, agg in enumerate(("sequence", "token", "constant")):
            for col, (key, title) in enumerate(cols):
                x, y = _curve(results, task, obj, agg, key, k)
                if x is not None:
                    axes[row, col].plot(x, y, ("o" if col == 2 else "") + ["-", "--", ":"][i], ms=3,
                                        color=f"C{i}", label=agg)
                axes[row, col].set_title(f"{task} {obj}: {title}", fontsize=9)
        axes[row, 0].legend(fontsize=7, title="aggregation", title_fontsize=7)
    fig.suptitle(f"aggregation ablation, mean over seeds (training curves: moving average of {k} steps)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "aggregation_ablation.png", dpi=100)
    return "aggregation_ablation.png"


def pass_at_k_axes(ax, rows: list[dict], task: str) -> None:
    """pass@k against k (log scale) for every model of ``task`` in ``rows`` (results' pass_at_k)."""
    models = list(dict.fromkeys(r["model"] for r in rows if r["task"] == task))
    for i, m in enumerate(models):
        pts = sorted((r["k"], r["pass_at_k"], r["ci_low"], r["ci_high"]) for r in rows
                     if r["task"] == task and r["model"] == m)
        ks = [p[0] for p in pts]
        ax.plot(ks, [100 * p[1] for p in pts], "o-", ms=3, color="k" if m == "base" else f"C{i}", label=m)
        if pts and pts[0][2] is not None:
            ax.fill_between(ks, [100 * p[2] for p in pts], [100 * p[3] for p in pts],
                            color="k" if m == "base" else f"C{i}", alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("pass@k %")
    ax.set_title(f"{task}: pass@k on held-out problems", fontsize=9)
    ax.legend(fontsize=7)


def _pass_at_k_figure(out, results: dict) -> str:
    from matplotlib.figure import Figure

    tasks = list(dict.fromkeys(r["task"] for r in results["pass_at_k"]))
    fig = Figure(figsize=(5.5 * len(tasks), 3.8))
    for ax, task in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks):
        pass_at_k_axes(ax, results["pass_at_k"], task)
    fig.tight_layout()
    fig.savefig(out / "pass_at_k.png", dpi=100)
    return "pass_at_k.png"
