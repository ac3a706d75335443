"""The notebook widgets build and react without a browser (traitlets run in plain Python)."""

import matplotlib

matplotlib.use("Agg")

from course_lib.notebook.mdp import build_tree, random_policy, sum_verifier  # noqa: E402
from course_lib.notebook.tree import draw_tree, tree_layout  # noqa: E402
from course_lib.notebook.widgets import mdp_explorer, verifier_playground  # noqa: E402
from course_lib.tasks import get_task  # noqa: E402


def test_tree_layout_puts_parents_over_their_children():
    tree = build_tree(("a", "b"), depth=2, eos="$")
    pos = tree_layout(tree)
    assert pos[()] == ((pos[(0,)][0] + pos[(1,)][0] + pos[(2,)][0]) / 3, 0.0)
    assert sorted(pos[s][0] for s in tree.leaves) == list(range(len(tree.leaves)))
    assert all(pos[s][1] == -len(s) for s in tree.states)


def test_draw_tree_with_and_without_values():
    tree = build_tree(("1", "2", "+"), depth=2, eos="$")
    fig = draw_tree(tree)
    assert len(fig.axes) == 1
    fig = draw_tree(tree, random_policy(tree), sum_verifier(2))
    assert len(fig.axes) == 2  # the tree and the V(s) colour bar


def test_mdp_explorer_redraws_when_a_slider_moves(capsys):
    box = mdp_explorer()
    sliders = {w.description: w for col in box.children[0].children for w in col.children}
    assert set(sliders) == {"vocab size", "depth", "temperature", "seed", "target"}
    sliders["depth"].value = 2
    printed = capsys.readouterr().out  # outside a kernel the Output widget prints here
    v, e = (float(line.rsplit("=", 1)[1]) for line in printed.strip().splitlines()[-2:])
    assert abs(v - e) < 1e-12


def test_verifier_playground_shows_verdict_and_reason():
    task = get_task("countdown-micro")
    examples = [{"nums": [3, 7, 5], "target": 26}]
    pick, text, verdict = verifier_playground(task, examples).children
    text.value = "<answer>3*7+5</answer>"
    assert "reward 1" in verdict.value and "correct=True" in verdict.value
    text.value = "<answer>99**98**97</answer>"
    assert "reward 0" in verdict.value and "not allowed" in verdict.value


def test_every_widget_in_a_notebook_has_a_running_kernel_note_beside_it():
    """Opened without a kernel (GitHub, nbviewer) a widget shows no controls; the note says so."""
    import json
    import re
    from pathlib import Path

    found = 0
    for path in sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for i, cell in enumerate(cells):
            text = "".join(cell["source"])
            if cell["cell_type"] == "code" and re.search(r"from course_lib(\.notebook)?\.widgets import", text):
                found += 1
                before = "".join(cells[i - 1]["source"]) if i else ""
                assert cells[i - 1]["cell_type"] == "markdown" and "needs a running kernel" in before.lower(), (
                    f"{path.name}: cell {i} shows a widget without a note that it needs a running kernel")
    assert found >= 2  # notebooks 01 and 03
