"""Installing the course: the Colab install cell's helper and the Makefile.

Nothing here installs anything: pip and the venv's python are stand-ins.
"""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import notebook
from course_lib.notebook import colab_install, missing_requirements

ROOT = Path(__file__).resolve().parent.parent
# what the Colab GPU image ships among course_lib's core dependencies, from
# github.com/googlecolab/backend-info pip-freeze.gpu.txt (2026-08-19): everything but bitsandbytes
# (and gguf, which the smollm2 profile reads its offline copy with)
COLAB_HAS = {"torch", "transformers", "peft", "datasets", "tokenizers", "safetensors", "numpy",
             "tqdm", "matplotlib", "ipywidgets"}


def core_requirements():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


# --- colab_install ------------------------------------------------------------------------------


def test_notebook_module_needs_only_the_standard_library_and_numpy():
    """The install cell imports course_lib.notebook before peft or bitsandbytes are there."""
    code = ("import sys; before = set(sys.modules); import course_lib.notebook; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(new - set(sys.stdlib_module_names) - {'course_lib', 'numpy'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_missing_requirements_counts_presence_only():
    reqs = ["numpy>=1.26", "numpy>=999", 'pytest>=8; extra == "dev"', "surely-not-a-package>=1",
            "no_such_pkg[extra]>=2 ; python_version >= '3'"]
    assert missing_requirements(reqs) == ["surely-not-a-package>=1", "no_such_pkg[extra]>=2"]


@pytest.fixture
def fake_colab(monkeypatch):
    """A Python with COLAB_HAS installed and course_lib not yet; pip calls are recorded."""
    installed = set(COLAB_HAS)
    calls = []

    def run(cmd, check):
        assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and check
        calls.append(cmd[4:])
        installed.update(["course_lib"] if "-e" in cmd else [r.split(">")[0] for r in cmd[5:]])

    monkeypatch.setattr(notebook, "_installed", lambda name: name in installed)
    monkeypatch.setattr(notebook.subprocess, "run", run)
    monkeypatch.setattr(notebook.metadata, "requires", lambda name: core_requirements() + [
        f'{r}; extra == "dev"' for r in ("pytest>=8.0", "jupyterlab>=4.0")])
    return calls


def test_colab_install_adds_the_clone_and_only_what_colab_lacks(fake_colab, capsys):
    assert colab_install("/content/course") == ["bitsandbytes>=0.46", "gguf>=0.17"]
    assert fake_colab == [["-q", "--no-deps", "-e", "/content/course"],
                          ["-q", "bitsandbytes>=0.46", "gguf>=0.17"]]
    assert capsys.readouterr().out.startswith("installed: course_lib (editable, --no-deps), bitsa")


def test_colab_install_rerun_calls_no_pip(fake_colab, capsys):
    colab_install("/content/course")
    fake_colab.clear()
    assert colab_install("/content/course") == [] and fake_colab == []
    assert capsys.readouterr().out.splitlines()[-1] == "everything already installed"


def test_core_dependencies_leave_out_the_local_jupyter():
    names = {r.split(">")[0].split("=")[0] for r in core_requirements()}
    assert "jupyterlab" not in names and names - COLAB_HAS == {"bitsandbytes", "gguf"}


# --- the Makefile: a CPU build of torch on a machine without an NVIDIA GPU ----------------------

FAKE_PYTHON = """#!/bin/sh
# a stand-in for the venv's python: logs its arguments; FAKE_TORCH=1: torch is importable,
# FAKE_INDEX_FAILS=1: the torch index cannot be reached
echo "$*" >> "$FAKE_LOG"
case "$*" in
  "-c import torch") [ "$FAKE_TORCH" = 1 ] ;;
  *--index-url*) [ "$FAKE_INDEX_FAILS" != 1 ] ;;
esac
"""


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def make_install(tmp_path, torch=False, gpu=None, index_fails=False, *args):
    """Run the Makefile's install rule against a fake venv; return (output, python calls).

    ``gpu``: None = no nvidia-smi on PATH; True / False = an nvidia-smi that succeeds / fails.
    """
    venv, bin_ = tmp_path / "venv", tmp_path / "bin"
    (venv / "bin").mkdir(parents=True)
    bin_.mkdir()
    executable(venv / "bin" / "python", FAKE_PYTHON)
    if gpu is not None:
        executable(bin_ / "nvidia-smi", f"#!/bin/sh\nexit {0 if gpu else 9}\n")
    path = [str(bin_)] + [d for d in os.environ["PATH"].split(os.pathsep)
                          if d and not (Path(d) / "nvidia-smi").exists()]
    # an outer make's flags and variables (under `make test`) and the environment's settings of
    # the variables under test would reach this make: drop them
    env = {k: v for k, v in os.environ.items() if k not in
           ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TORCH_INDEX", "UNAME")}
    env.update(PATH=os.pathsep.join(path), FAKE_LOG=str(tmp_path / "log"),
               FAKE_TORCH=str(int(torch)), FAKE_INDEX_FAILS=str(int(index_fails)))
    out = subprocess.run(["make", "-s", "-C", str(ROOT), f"VENV={venv}", "UNAME=Linux", *args,
                          str(venv / ".installed")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (venv / ".installed").exists()
    return out.stdout, (tmp_path / "log").read_text().splitlines()


CPU_TORCH = ("-m pip install --quiet --retries 1 --timeout 15 torch "
             "--index-url https://download.pytorch.org/whl/cpu")
UPGRADE_PIP, COURSE = "-m pip install --quiet --upgrade pip", '-m pip install --quiet -e .[dev,local]'

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


@needs_make
@pytest.mark.parametrize("gpu", [None, False])
def test_make_installs_cpu_torch_first_without_a_gpu(tmp_path, gpu):
    out, calls = make_install(tmp_path, gpu=gpu)
    assert calls == [UPGRADE_PIP, "-c import torch", CPU_TORCH, COURSE]
    assert "no NVIDIA GPU: installing the CPU build of torch" in out


@needs_make
def test_make_leaves_torch_to_pip_with_a_gpu(tmp_path):
    assert make_install(tmp_path, gpu=True)[1] == [UPGRADE_PIP, COURSE]


@needs_make
def test_make_keeps_a_preinstalled_torch(tmp_path):
    """CI pre-installs its torch pin: nothing is reinstalled."""
    assert make_install(tmp_path, torch=True)[1] == [UPGRADE_PIP, "-c import torch", COURSE]


@needs_make
def test_make_falls_back_to_the_default_index(tmp_path):
    out, calls = make_install(tmp_path, False, None, True, "TORCH_INDEX=http://127.0.0.1:9/")
    assert calls == [UPGRADE_PIP, "-c import torch",
                     CPU_TORCH.replace("https://download.pytorch.org/whl/cpu",
                                       "http://127.0.0.1:9/"), COURSE]
    assert "http://127.0.0.1:9/ unreachable: torch comes from the default index" in out


@needs_make
@pytest.mark.parametrize("arg", ["UNAME=Darwin", "TORCH_INDEX="])
def test_make_cpu_torch_only_on_linux_and_when_asked(tmp_path, arg):
    assert make_install(tmp_path, False, None, False, arg)[1] == [UPGRADE_PIP, COURSE]
