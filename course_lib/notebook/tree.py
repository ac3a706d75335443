"""The token tree of notebooks 01-02, drawn: states as dots coloured by their value, edges
labelled with the token and its probability. Plain matplotlib; returns the Figure.

Simplified: no styling framework, no interactivity (``course_lib.notebook.widgets`` redraws
this figure instead).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .mdp import Policy, Reward, TokenTree, state_values

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
        tree: from :func:`course_lib.notebook.mdp.build_tree`.
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
    _edges(ax, tree, pos, policy, labels=small)
    xs, ys = np.array([pos[s] for s in tree.states]).T
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
                ax.text(pos[s][0], pos[s][1] - 0.3, repr(tree.text(s)), fontsize=9, ha="center", va="top")
    ax.set_yticks(-np.arange(tree.depth + 1), [f"t={d}" for d in range(tree.depth + 1)])
    ax.set_xticks([])
    ax.set_ylim(-tree.depth - 0.7, 0.4)
    ax.spines[["top", "right", "bottom"]].set_visible(False)
    ax.set_title(title or f"{len(tree.states)} states, {len(leaves)} complete responses")
    fig.tight_layout()
    return fig


def _edges(ax, tree: TokenTree, pos: dict, policy: Policy | None, labels: bool) -> None:
    """Each edge as a line as wide as ``pi(a|s)``; with ``labels``, the token, and ``pi(a|s)`` on
    edges into inner states (edges into leaves are crowded), in a box near the child."""
    for s, kids in tree.children.items():
        probs = policy.probs(s) if policy is not None and kids else None
        for a, c in enumerate(kids):
            (x0, y0), (x1, y1) = pos[s], pos[c]
            ax.plot([x0, x1], [y0, y1], color="0.6", lw=0.4 + 3.0 * probs[a] if probs is not None else 0.8, zorder=1)
            if labels:
                inner = bool(tree.children[c])
                label = tree.actions[a] + (f"\n{probs[a]:.2f}" if probs is not None and inner else "")
                f = 0.55 if inner else 0.75
                ax.text(x0 + f * (x1 - x0), y0 + f * (y1 - y0), label, fontsize=9 if inner else 8,
                        ha="center", va="center", color="0.1", family="monospace", linespacing=0.9,
                        bbox=dict(fc="white", ec="0.85", lw=0.5, boxstyle="round,pad=0.15"))
