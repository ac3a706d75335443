"""ipywidgets the notebooks use: the token-tree explorer and the verifier playground.

Each function returns a widget; display it as a cell's last expression. A widget needs a running
kernel: under nbval, on GitHub or nbviewer it shows only as text (or "model not found"), so
each notebook shows the same thing statically before it (01: the tree figure; 03: the tables
of verdicts) and says so in a one-line note beside it. Simplified: no custom widget code, only
``ipywidgets`` built-ins.
"""

from __future__ import annotations

import html

import ipywidgets as W
import matplotlib.pyplot as plt
from IPython.display import display

from .mdp import build_tree, expected_reward, random_policy, state_values, sum_verifier
from .tree import draw_tree

TOKENS = ("1", "2", "+", "*")  # vocabulary size k uses the first k tokens


def mdp_explorer(eos: str = "$") -> W.VBox:
    """Sliders for vocabulary size, depth, temperature, seed and target over a drawn tree.

    Below the tree it prints ``V(root)`` (backward induction) next to the expected terminal
    reward (enumeration over complete responses); they agree for every setting.
    """
    style = {"description_width": "90px"}
    vocab = W.IntSlider(3, min=1, max=4, description="vocab size", style=style)
    depth = W.IntSlider(3, min=1, max=4, description="depth", style=style)
    temp = W.FloatLogSlider(1.0, base=10, min=-1, max=1, step=0.05, description="temperature", style=style)
    seed = W.IntSlider(0, min=0, max=20, description="seed", style=style)
    target = W.IntSlider(2, min=1, max=12, description="target", style=style)
    out = W.Output()

    def redraw(vocab, depth, temperature, seed, target):
        tree = build_tree(TOKENS[:vocab], depth, eos)
        policy = random_policy(tree, temperature, seed)
        reward = sum_verifier(target)
        with out:
            out.clear_output(wait=True)
            fig = draw_tree(tree, policy, reward,
                            title=f"vocab {TOKENS[:vocab]} + {eos!r}, reward: text == {target}")
            display(fig)
            plt.close(fig)
            v = state_values(tree, policy, reward)[()]
            e = expected_reward(tree, policy, reward)
            print(f"V(root) by backward induction = {v:.6f}")
            print(f"E[r(o)] over {len(tree.leaves)} responses = {e:.6f}")

    W.interactive_output(redraw, {"vocab": vocab, "depth": depth, "temperature": temp,
                                  "seed": seed, "target": target})
    return W.VBox([W.HBox([W.VBox([vocab, depth, temp]), W.VBox([seed, target])]), out])


def verifier_playground(task, examples: list[dict]) -> W.VBox:
    """Pick an example, type a completion, see the verifier's Score (reward and reason).

    Args:
        task: a ``course_lib.tasks.Task`` (uses ``task.prompt`` and ``task.score``).
        examples: a few examples from ``task.load``.
    """
    pick = W.Dropdown(options=[(task.prompt(e)[-60:], i) for i, e in enumerate(examples)],
                      description="example", layout=W.Layout(width="95%"))
    text = W.Textarea(value="<answer></answer>", description="completion",
                      layout=W.Layout(width="95%", height="80px"))
    verdict = W.HTML()

    def update(_=None):
        s = task.score(text.value, examples[pick.value])
        colour = "green" if s.correct else "firebrick"
        verdict.value = (
            f"<b style='color:{colour}'>reward {s.reward:g}, correct={s.correct}, "
            f"well_formed={s.well_formed}</b><br>reason: {html.escape(s.reason)}"
        )

    pick.observe(update, "value")
    text.observe(update, "value")
    update()
    return W.VBox([pick, text, verdict])
