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

import course_lib
from course_lib import notebook
from course_lib.notebook import check_requirements, colab_install

ROOT = Path(__file__).resolve().parent.parent
# what the Colab GPU image ships among course_lib's core dependencies, from
# github.com/googlecolab/backend-info pip-freeze.gpu.txt (2026-08-19): everything but bitsandbytes
# (and gguf, which the smollm2 profile reads its offline copy with)
COLAB_VERSIONS = {"torch": "2.11.0+cu128", "transformers": "5.15.0", "peft": "0.20.0", "datasets": "4.0.0",
                  "tokenizers": "0.22.2", "safetensors": "0.8.0", "numpy": "2.1.3", "tqdm": "4.67.3",
                  "matplotlib": "3.10.0", "ipywidgets": "7.7.1"}
COLAB_HAS = set(COLAB_VERSIONS)


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


def test_missing_requirements_count_presence_only():
    reqs = ["numpy>=1.26", "numpy>=999", 'pytest>=8; extra == "dev"', "surely-not-a-package>=1",
            "no_such_pkg[extra]>=2 ; python_version >= '3'"]
    assert check_requirements(reqs)[0] == ["surely-not-a-package>=1", "no_such_pkg[extra]>=2"]


@pytest.mark.parametrize("reqs, installed, expected", [
    (["numpy>=1.26"], {"numpy": "2.1.3"}, []),
    (["numpy>=999"], {"numpy": "2.1.3"}, [("numpy", "2.1.3", "numpy>=999")]),
    (["transformers>=4.56"], {"transformers": "4.55.4"}, [("transformers", "4.55.4", "transformers>=4.56")]),
    (["torch>=2.4"], {"torch": "2.11.0+cu128"}, []),  # a local version label is still 2.11
    (["ipywidgets>=7.7"], {"ipywidgets": "7.7.1"}, []),  # Colab's ipywidgets is accepted
    (["ipywidgets>=8.1"], {"ipywidgets": "7.7.1"}, [("ipywidgets", "7.7.1", "ipywidgets>=8.1")]),
    (["gguf>=0.17"], {}, []),  # missing, not outdated
    (['pytest>=99; extra == "dev"'], {"pytest": "8.0"}, []),
    (["peft"], {"peft": "0.1"}, []),  # no specifier: any version
])
def test_outdated_requirements_compare_versions(monkeypatch, reqs, installed, expected):
    monkeypatch.setattr(notebook, "_version", installed.get)
    assert check_requirements(reqs)[1] == expected


class FakeColab(list):
    """The pip calls made (a list), plus the git calls and the fake Python's versions."""

    git: list
    versions: dict


@pytest.fixture
def fake_colab(monkeypatch):
    """A Python with COLAB_HAS installed (at Colab's versions) and course_lib not yet, in a git
    clone; pip and git calls are recorded (and succeed)."""
    calls = FakeColab()
    calls.git, calls.versions = [], dict(COLAB_VERSIONS)

    def run(cmd, check=False, **kw):
        if cmd[0] == "git":
            calls.git.append(cmd)
            return subprocess.CompletedProcess(cmd, 0, "", "")
        assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and check
        calls.append(cmd[4:])
        calls.versions.update(dict.fromkeys(["course_lib"] if "-e" in cmd else [r.split(">")[0] for r in cmd[5:]],
                                            "99.0"))

    monkeypatch.setattr(notebook, "_version", lambda name: calls.versions.get(name))
    monkeypatch.setattr(notebook.os.path, "isdir", lambda path: True)
    monkeypatch.setattr(notebook.subprocess, "run", run)
    monkeypatch.setattr(notebook.metadata, "requires", lambda name: core_requirements() + [
        f'{r}; extra == "dev"' for r in ("pytest>=8.0", "jupyterlab>=4.0")])
    return calls


def test_colab_install_adds_the_clone_and_only_what_colab_lacks(fake_colab, capsys):
    assert colab_install("/content/course") == ["bitsandbytes>=0.46", "gguf>=0.17"]
    assert fake_colab == [["-q", "--no-deps", "-e", "/content/course"],
                          ["-q", "bitsandbytes>=0.46", "gguf>=0.17"]]
    assert capsys.readouterr().out.splitlines()[1].startswith("installed: course_lib (editable, --no-deps), bitsa")


def test_colab_install_rerun_calls_no_pip(fake_colab, capsys):
    colab_install("/content/course")
    fake_colab.clear()
    assert colab_install("/content/course") == [] and fake_colab == []
    assert capsys.readouterr().out.splitlines()[-1] == "everything already installed"


def test_colab_install_refreshes_the_clone_and_accepts_colabs_versions(fake_colab, capsys):
    colab_install("/content/course")
    assert fake_colab.git == [["git", "-C", "/content/course", "pull", "--ff-only", "-q"]]
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "clone refreshed (git pull --ff-only)" and "warning" not in out


def test_colab_install_warns_in_one_line_about_a_version_it_cannot_use(fake_colab, capsys):
    fake_colab.versions["transformers"] = "4.55.4"  # an older Colab runtime
    colab_install("/content/course")
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
    assert warnings == ["warning: transformers 4.55.4 is installed, the course needs transformers>=4.56: "
                        "run !pip install -q 'transformers>=4.56' and then Runtime > Restart session"]
    assert fake_colab == [["-q", "--no-deps", "-e", "/content/course"], ["-q", "bitsandbytes>=0.46", "gguf>=0.17"]]


def test_a_clone_that_cannot_fast_forward_is_left_alone_with_one_line(monkeypatch, tmp_path):
    (tmp_path / ".git").mkdir()
    monkeypatch.setattr(notebook.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 128, "", "hint: blah\nfatal: Not possible to fast-forward, aborting.\n"))
    line = notebook.refresh_clone(str(tmp_path))
    assert line.startswith("clone not refreshed (fatal: Not possible to fast-forward") and "\n" not in line


@pytest.mark.parametrize("clone_rc, exists", [(128, False), (0, False), (0, True)])
def test_the_install_cell_names_the_slug_when_the_clone_fails(monkeypatch, tmp_path, clone_rc, exists):
    """notebook.INSTALL_CELL run as on Colab: a failing clone stops with one line naming the
    repository and `make slug`; a clone that exists is not cloned again."""
    root = tmp_path / "course"
    calls = []

    def run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, clone_rc)

    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(notebook, "colab_install", lambda r: calls.append(["colab_install", r]))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(["chdir", path]))
    monkeypatch.setattr(os.path, "isdir", lambda path: exists)
    code = notebook.INSTALL_CELL.replace('"/content/course"', repr(str(root)))
    if clone_rc:
        with pytest.raises(SystemExit) as stop:
            exec(code, {})
        msg = str(stop.value)
        assert "\n" not in msg and f"github.com/{course_lib.REPO_SLUG}" in msg and "make slug" in msg
    else:
        exec(code, {})
        assert calls[-2:] == [["colab_install", str(root)], ["chdir", f"{root}/notebooks"]]
    assert [c[:2] for c in calls if c[0] == "git"] == ([] if exists else [["git", "clone"]])
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(root)])


def test_the_install_cell_carries_the_clone_url_set_repo_slug_rewrites():
    import importlib.util

    spec = importlib.util.spec_from_file_location("slug", Path(__file__).resolve().parents[1] / "tools" / "slug.py")
    slug = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(slug)
    assert slug._CLONE.findall(notebook.INSTALL_CELL) == [("https://github.com/", course_lib.REPO_SLUG, "")]


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
