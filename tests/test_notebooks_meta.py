"""The notebooks follow one template: badge, Colab-only install, setup(), numbered, small.

These checks read the committed .ipynb files; executing them is nbval's job (`make test`).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import course_lib
from course_lib.notebook import fast_mode

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.ipynb$")
MAX_BYTES = 1_000_000  # each committed notebook, figures included
MAX_OUTPUT_LINES = 40  # per stream output: no training logs in the committed files


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell):
    return "".join(cell["source"])


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(params=PATHS, ids=[p.stem for p in PATHS])
def notebook(request):
    return request.param, load(request.param)


def test_there_are_notebooks():
    assert PATHS, f"no notebooks found in {NOTEBOOKS}"


def test_numbered_00_to_09_without_gaps():
    numbers = []
    for p in PATHS:
        m = NAME.match(p.name)
        assert m, f"{p.name}: notebook names are NN_lower_snake.ipynb"
        numbers.append(int(m.group(1)))
    assert numbers == list(range(len(numbers))), f"numbers {numbers} must run 00, 01, ... without gaps"
    assert len(numbers) <= 10  # 00-08 and the optional methods notebook 09


def test_badge_points_at_this_notebook(notebook):
    path, nb = notebook
    first = source(nb["cells"][0])
    assert nb["cells"][0]["cell_type"] == "markdown" and first.startswith("# ")
    urls = re.findall(r"https://colab\.research\.google\.com/github/[^)\s]+", first)
    assert urls, f"{path.name}: first cell needs an 'Open in Colab' badge"
    prefix = f"https://colab.research.google.com/github/{course_lib.REPO_SLUG}/blob/main/notebooks/"
    for url in urls:
        assert url.startswith(prefix), f"{path.name}: badge {url} does not use REPO_SLUG"
        target = NOTEBOOKS / url[len(prefix):]
        assert target.exists() and target == path, f"{path.name}: badge points at {target.name}"


def test_install_cell_runs_only_on_colab_and_installs_this_package(notebook):
    path, nb = notebook
    install = source(code_cells(nb)[0])
    assert 'if "google.colab" in sys.modules:' in install, f"{path.name}: install cell not guarded"
    assert f"https://github.com/{course_lib.REPO_SLUG}" in install
    # course_lib.notebook.colab_install: the clone with --no-deps, then only what Colab lacks
    assert "colab_install(root)" in install, f"{path.name}: must call colab_install(root)"
    assert "jupyterlab" not in install and '"pip"' not in install, f"{path.name}: pip is colab_install's"
    # nothing outside the guard: the cell does nothing locally or in CI
    body = install.split('if "google.colab" in sys.modules:')[0]
    assert all(line.startswith(("#", "import sys")) or not line.strip()
               for line in body.splitlines())


def test_install_cells_are_all_the_same():
    cells = {p.name: source(code_cells(load(p))[0]) for p in PATHS}
    first = cells[PATHS[0].name]
    assert [name for name, cell in cells.items() if cell != first] == [], "copy the install cell"


def test_environment_cell_calls_setup(notebook):
    path, nb = notebook
    env = source(code_cells(nb)[1])
    assert re.search(r"FAST = setup\(", env), f"{path.name}: 2nd code cell should be FAST = setup(...)"


def test_numbered_sections_and_exercises(notebook):
    path, nb = notebook
    headings = [line for c in nb["cells"] if c["cell_type"] == "markdown"
                for line in source(c).splitlines() if line.startswith("## ")]
    numbered = [int(m.group(1)) for h in headings if (m := re.match(r"## (\d+)\. ", h))]
    assert numbered == list(range(1, len(numbered) + 1)) and numbered, f"{path.name}: {headings}"
    if not path.name.startswith("00_"):
        assert any(h.startswith("## Exercises") for h in headings), f"{path.name}: no exercises"


def test_committed_executed_small_and_without_errors(notebook):
    path, nb = notebook
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    for i, cell in enumerate(code_cells(nb)):
        assert cell.get("execution_count"), f"{path.name}: code cell {i} was not executed"
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"{path.name}: cell {i} stored an error"
            if out["output_type"] == "stream":
                lines = "".join(out["text"]).count("\n")
                assert lines <= MAX_OUTPUT_LINES, f"{path.name}: cell {i} prints {lines} lines"


@pytest.mark.parametrize(
    "env,fast",
    [({}, False), ({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": "false"}, False),
     ({"CI": ""}, False), ({"COURSE_FAST": "1"}, True), ({"COURSE_FAST": "0"}, False)],
)
def test_fast_mode(monkeypatch, env, fast):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("COURSE_FAST", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert fast_mode() is fast


@pytest.mark.parametrize("name, capability, gpu, expected", [
    ("qwen2.5-0.5b", (7, 5), "Tesla T4",
     "qwen2.5-0.5b on cuda (Tesla T4, compute capability 7.5): float16 + GradScaler"),
    ("qwen2.5-1.5b", (8, 0), "NVIDIA A100-SXM4-40GB",
     "qwen2.5-1.5b on cuda (NVIDIA A100-SXM4-40GB, compute capability 8.0): bfloat16"),
    ("micro", (7, 5), "Tesla T4", "micro on cpu: float32"),  # micro stays on the CPU on a GPU runtime
    ("micro", None, None, "micro on cpu: float32"),
])
def test_setup_banner_names_the_gpu_its_capability_and_the_dtype(monkeypatch, capsys, name, capability, gpu,
                                                                 expected):
    import torch

    from course_lib.notebook import setup

    monkeypatch.setattr(torch.cuda, "is_available", lambda: capability is not None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # as on a T4: emulated
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: gpu)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    setup(profile=name)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("precision")]
    assert lines == [f"precision     {expected}"]


def test_notebooks_that_use_a_gpu_ask_colab_for_one(notebook):
    """A badge opens a CPU runtime unless the notebook's metadata asks for a GPU (a T4 on the free
    tier); the notebooks that train on CUDA (they test torch.cuda) must ask, the micro ones need not."""
    path, nb = notebook
    if "torch.cuda.is_available()" not in "".join(source(c) for c in code_cells(nb)):
        return
    meta = nb["metadata"]
    assert meta.get("accelerator") == "GPU" and meta.get("colab", {}).get("gpuType") == "T4", path.name


def test_the_gpu_section_of_notebook_06_runs_alone_after_a_disconnect(tmp_path):
    """Section 11's code cells import what they need: run alone, in order, in a fresh Python (as
    after a Colab disconnect; here on a CPU, so on the micro model, shrunk), they complete and
    show the format check, completions with verdicts, a live line per step and the verdicts."""
    nb = load(NOTEBOOKS / "06_head_to_head.ipynb")
    start = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown" and source(c).startswith("## 11."))
    cells = []
    for c in nb["cells"][start + 1:]:
        if c["cell_type"] == "markdown" and source(c).lstrip().startswith("## "):
            break
        if c["cell_type"] == "code":
            cells.append(source(c))
    assert len(cells) >= 2 and any("format_check(" in c for c in cells)
    script = tmp_path / "section11.py"
    script.write_text("\n\n".join(cells))
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script)], cwd=NOTEBOOKS, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    for want in ("base model: format check on", "[3] ", "grpo step   1/2: reward", "truncated", "after sft+-: format",
                 "sft+- - grpo = "):
        assert want in text, want
    if not torch_cuda():
        assert text.splitlines()[0].startswith("section 11's Qwen2.5 runs skipped: no CUDA GPU here")


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("on_colab", [True, False])
def test_download_bars_stay_on_colab_only(monkeypatch, capsys, on_colab):
    """On Colab the hub's download bars are the only sign of life during a 1-3 GB download; in
    the committed outputs (made elsewhere) the loading bars stay off."""
    import torch
    import transformers

    from course_lib.notebook import setup

    calls = []
    monkeypatch.setattr(transformers.utils.logging, "disable_progress_bar", lambda: calls.append(1))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the test process keeps its threads
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", object())
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    setup(profile="micro")
    assert calls == ([] if on_colab else [1])
