"""Draw the course's three conceptual diagrams as PNGs beside this file.

    python notebooks/figures/diagrams.py

1. mdp_vs_bandit.png: the LLM MDP as a token tree (state = prompt + tokens so far, one parent per
   state, reward only at the leaves) beside the contextual bandit it reduces to (prompt = context,
   whole response = arm).
2. on_policy_loop.png: sample -> score -> weigh -> update -> (repeat with the new model), the loop
   every objective of the course shares; only the "weigh" box differs.
3. weights_on_samples.png: one group of G = 8 own samples (3 right, 5 wrong) and the weight each
   objective puts on it: GRPO's advantages A+ / A-, plain signed SFT's +1 / -1, and F-ISFT+'s 1 / 0.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent
RIGHT, WRONG, NEUTRAL = "#2a9d8f", "#e76f51", "#6c757d"


def _box(ax, x, y, text, w=0.2, h=0.12, color="#e9ecef", fontsize=12):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01,rounding_size=0.02",
                                fc=color, ec="0.3", lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, a, b, text="", color="0.3", rad=0.0, fontsize=10, offset=(0, 0.03)):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=16, color=color, lw=1.5,
                                 connectionstyle=f"arc3,rad={rad}"))
    if text:
        ax.text((a[0] + b[0]) / 2 + offset[0], (a[1] + b[1]) / 2 + offset[1], text, ha="center",
                va="bottom", fontsize=fontsize, color=color)


def mdp_vs_bandit(path):
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.4, 1]})
    for ax in (left, right):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
    # the token tree: root -> 3 tokens -> 2 each; leaves carry the verifier's reward
    root = (0.1, 0.5)
    _box(left, *root, "q\n(prompt)", w=0.12, h=0.14)
    level1 = {"1": 0.82, "2": 0.5, "+": 0.18}
    leaves = {"1": [("1+", 0), ("11", 0)], "2": [("2$", 1), ("22", 0)], "+": [("+2", 0), ("+$", 0)]}
    for tok, y in level1.items():
        _arrow(left, (root[0] + 0.06, root[1]), (0.38, y), f"'{tok}'", fontsize=12, offset=(-0.02, 0.0))
        _box(left, 0.44, y, f"q{tok if tok != '+' else '+'}", w=0.11, h=0.09)
        for j, (text, r) in enumerate(leaves[tok]):
            ly = y + (0.08 if j == 0 else -0.08)
            _arrow(left, (0.5, y), (0.7, ly), f"'{text[-1]}'", fontsize=11, offset=(0, 0.0))
            _box(left, 0.76, ly, f"q{text}", w=0.11, h=0.07, color="#d8f3dc" if r else "#fde2e4")
            left.text(0.84, ly, f"r = {r}", va="center", fontsize=12, color=RIGHT if r else WRONG)
    left.set_title("LLM as an MDP: a token tree\nstate = prompt + tokens so far; one parent per state;"
                   " reward only at the end", fontsize=12)
    # the bandit: the prompt is the context, each whole response is one arm
    _box(right, 0.15, 0.5, "context\nq", w=0.18, h=0.16)
    arms = [("'2$'", 1), ("'1+'", 0), ("'11'", 0), ("'22'", 0), ("'+2'", 0), ("'+$'", 0)]
    for i, (text, r) in enumerate(arms):
        y = 0.9 - i * 0.16
        _arrow(right, (0.25, 0.5), (0.55, y))
        _box(right, 0.65, y, f"arm {text}", w=0.2, h=0.1, color="#d8f3dc" if r else "#fde2e4")
        right.text(0.8, y, f"r = {r}", va="center", fontsize=12, color=RIGHT if r else WRONG)
    right.set_title("The same problem as a contextual bandit\none pull = one whole response, one reward",
                    fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def on_policy_loop(path):
    fig, ax = plt.subplots(figsize=(10, 5.2))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    stages = [
        ((0.2, 0.78), "1. sample\nG responses per prompt\nfrom the current model"),
        ((0.8, 0.78), "2. score\nverifier: reward 1 or 0\nper response"),
        ((0.8, 0.25), "3. weigh\none number w_i per response\n(GRPO: A_i; signed SFT: +1 / -1)"),
        ((0.2, 0.25), "4. update\nloss = -(weighted log-prob)\none optimizer step"),
    ]
    for (x, y), text in stages:
        _box(ax, x, y, text, w=0.3, h=0.22, color="#fff3bf" if text.startswith("3") else "#e9ecef")
    _arrow(ax, (0.36, 0.8), (0.64, 0.8), "texts")
    _arrow(ax, (0.8, 0.66), (0.8, 0.37), "rewards r_i", offset=(0.09, 0))
    _arrow(ax, (0.64, 0.25), (0.36, 0.25), "weights w_i")
    _arrow(ax, (0.2, 0.37), (0.2, 0.66), "new model", offset=(-0.09, 0))
    ax.text(0.5, 0.52, "5. log\nreward, lengths,\nloss, grad norm", ha="center", va="center", fontsize=11,
            color=NEUTRAL)
    ax.set_title("The on-policy loop every objective shares: only step 3 differs", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def weights_on_samples(path):
    G, k = 8, 3
    p = k / G
    a_plus, a_minus = np.sqrt((1 - p) / p), -np.sqrt(p / (1 - p))
    rows = {
        "GRPO: advantage A_i": [a_plus] * k + [a_minus] * (G - k),
        "F-ISFT+- (sft+-): +1 / -1": [1.0] * k + [-1.0] * (G - k),
        "F-ISFT+ (sft+): 1 / 0": [1.0] * k + [0.0] * (G - k),
    }
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    x = np.arange(G)
    for ax, (name, w) in zip(axes, rows.items()):
        colors = [RIGHT if i < k else WRONG for i in range(G)]
        ax.bar(x, w, color=colors)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(x, ["right" if i < k else "wrong" for i in range(G)], rotation=60, fontsize=10)
        up, down = sum(v for v in w if v > 0), -sum(v for v in w if v < 0)
        ax.set_title(f"{name}\npush up {up:.2f}, push down {down:.2f}", fontsize=12)
        ax.set_xlabel("the model's own samples (one group, G = 8)")
    axes[0].set_ylabel("weight w_i on the sample's log-prob")
    fig.suptitle("GRPO and signed SFT put one weight on each of the model's own samples; only the weights differ",
                 fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    for draw in (mdp_vs_bandit, on_policy_loop, weights_on_samples):
        out = HERE / f"{draw.__name__}.png"
        draw(out)
        print("wrote", out.relative_to(HERE.parent.parent))
