"""What every notebook runs first: print the environment and decide on fast mode.

Fast mode (environment variable ``CI`` set, or ``COURSE_FAST=1``) tells a notebook to use
reduced step counts so the whole course executes in CI on two CPU cores. The profile line is
``course_lib.models.get_profile()``'s choice (``COURSE_PROFILE``, else ``micro`` on a CPU and
``qwen2.5-0.5b`` with a CUDA GPU); notebooks that train call ``get_profile`` themselves.

Also here: ``colab_install``, which every notebook's first code cell calls on Colab, and,
as submodules, what only notebooks use: ``mdp`` (the toy token-tree MDP), ``tree`` (its drawing), ``widgets``.
The install cell imports this module before the course's dependencies are installed, so at
module level it imports only the standard library and numpy (which Colab ships).
"""

from __future__ import annotations

import importlib
import logging
import os
import platform
import random
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

import course_lib


def fast_mode() -> bool:
    """True under CI (``CI`` set to anything but ``""``/``0``/``false``) or ``COURSE_FAST=1``.

    Example: with ``COURSE_FAST=1`` in the environment, ``fast_mode()`` is ``True``.
    """
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("COURSE_FAST", "").strip() == "1"


def setup(seed: int = 0, profile: str | None = None, budget: str | None = None) -> bool:
    """Seed Python, NumPy and torch, print versions, device, and the profile and budget this
    notebook will actually train with; return fast mode.

    Args:
        profile: the profile the notebook uses (None: ``COURSE_PROFILE``, else micro on a CPU
            and qwen2.5-0.5b on a GPU). Notebooks that always run micro pass ``"micro"``.
        budget: the profile's budget (None: ``"colab"`` where the profile has one, else
            ``"default"``).

    Example (first cell of a notebook)::

        FAST = course_lib.notebook.setup(profile="micro")
        steps = 20 if FAST else 200
    """
    import torch
    import transformers

    from course_lib.models import choose_profile, use_profile_threads

    if "google.colab" not in sys.modules:  # on Colab the hub's download bars are the only sign of life
        transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars in outputs
    # bitsandbytes announces on CPU that an optional kernels package is missing; nothing is wrong
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)"
    fast = fast_mode()
    prof, why = choose_profile(profile)
    budget = budget or ("colab" if "colab" in prof.budgets else "default")
    threads = use_profile_threads(prof)  # micro: one thread, steady on a busy machine
    print(f"course_lib    {course_lib.__version__}  (data: {course_lib.DATA_DIR.name}/)")
    print(f"device        {device}, {threads} CPU thread(s)")
    print(f"precision     {precision_line(prof, budget)}")
    print(f"python        {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}")
    print(f"fast mode     {fast}" + ("  (CI or COURSE_FAST=1: reduced steps)" if fast else ""))
    print(f"profile       {prof.name} ({'this notebook runs it' if profile else why})")
    print(f"budget        {prof.describe(budget)}" + ("; shrunk in fast mode" if fast else ""))
    return fast


def precision_line(profile, budget: str = "default") -> str:
    """Where ``profile`` runs and in which dtype its ``budget`` computes, for the setup banner.

    Examples: ``"micro on cpu: float32"``; on a Colab T4 ``"qwen2.5-0.5b on cuda (Tesla T4,
    compute capability 7.5): float16 + GradScaler"``.
    """
    import torch

    from course_lib.models import compute_dtype, resolve_device

    device = resolve_device(None, profile)
    dtype = compute_dtype(profile.budgets[budget].get("precision", "auto"), device)
    where = device.type
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        where += f" ({torch.cuda.get_device_name(device)}, compute capability {major}.{minor})"
    scaler = " + GradScaler" if dtype == torch.float16 else ""
    return f"{profile.name} on {where}: {str(dtype).removeprefix('torch.')}{scaler}"


def runs_root(name: str = "runs") -> Path:
    """Where a notebook keeps its run directories: on Google Drive when it is mounted at
    /content/drive (so a Colab disconnect loses nothing, and re-running a cell resumes), else
    ``name`` next to the notebook."""
    drive = Path("/content/drive/MyDrive")
    return drive / "rl-in-name-only" / name if drive.is_dir() else Path(name)


# --- Colab ------------------------------------------------------------------------------------


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_requirements(requirements: list[str]) -> tuple[list[str], list[tuple[str, str, str]]]:
    """``(missing, outdated)`` among the requirements not tied to an extra (markers dropped):
    ``missing`` the specifiers whose distribution is not installed at all; ``outdated`` a
    ``(name, installed version, specifier)`` for each one installed at a version it excludes.

    Example: ``check_requirements(["numpy>=999", 'pytest; extra == "dev"', "nope>=1"])`` is
    ``(["nope>=1"], [("numpy", "2.1.3", "numpy>=999")])`` where numpy 2.1.3 is installed.
    """
    from packaging.requirements import Requirement  # pip's own dependency: on every Python with pip

    missing, outdated = [], []
    for spec in (r.partition(";")[0].strip() for r in requirements if "extra" not in r.partition(";")[2]):
        req = Requirement(spec)
        version = _version(req.name)
        if version is None:
            missing.append(spec)
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            outdated.append((req.name, version, spec))
    return missing, outdated


def refresh_clone(root: str) -> str:
    """``git pull --ff-only`` in the clone at ``root`` (a re-opened notebook gets today's course);
    returns one line saying what happened. A clone with local changes is left as it is."""
    if not os.path.isdir(os.path.join(root, ".git")):
        return f"{root} is not a git clone: not refreshed"
    p = subprocess.run(["git", "-C", root, "pull", "--ff-only", "-q"], capture_output=True, text=True)
    if p.returncode:
        why = (p.stderr.strip().splitlines() or ["git failed"])[-1]
        return f"clone not refreshed ({why}); to start afresh: rm -rf {root} and re-run this cell"
    return "clone refreshed (git pull --ff-only)"


def colab_install(root: str = "/content/course") -> list[str]:
    """Install, from the clone at ``root``, the course and only what this Python lacks for it.

    1. The course itself, editable (data/ sits beside course_lib/, so only an editable install
       from a clone finds it) and with ``--no-deps``: Colab already ships torch, transformers,
       datasets, accelerate, numpy, matplotlib, ipywidgets and the rest at versions it tests
       together; upgrading them would need a restart and can break Colab's own Jupyter stack.
    2. Each of course_lib's core dependencies (``jupyterlab`` is in the ``local`` extra) that
       is not installed at all, at the version pyproject.toml asks for: on the Colab image of
       August 2026 that is bitsandbytes and gguf.

    3. Each dependency installed at a version the course does not accept gets one warning line
       with the command that fixes it (nothing Colab ships is replaced behind its back).

    The clone is refreshed first (:func:`refresh_clone`). A re-run finds everything installed
    and calls no pip. Returns the requirements installed in step 2 (``[]`` when none) and prints
    one line saying what it did.
    """
    print(refresh_clone(root))
    steps = []
    if _version("course_lib") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e", root], check=True)
        importlib.invalidate_caches()  # so this kernel sees what pip just installed
        steps.append("course_lib (editable, --no-deps)")
    missing = check_requirements(metadata.requires("course_lib") or [])[0]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)
        importlib.invalidate_caches()
        steps += missing
    print("installed: " + ", ".join(steps) if steps else "everything already installed")
    for name, version, spec in check_requirements(metadata.requires("course_lib") or [])[1]:
        print(f"warning: {name} {version} is installed, the course needs {spec}: run "
              f"!pip install -q '{spec}' and then Runtime > Restart session")
    return missing


#: The notebooks' install cell (their first code cell), run only on Colab: clone the course once
#: (a clone that fails names REPO_SLUG and ``make slug`` in one line), refresh it later, then
#: :func:`colab_install`. ``set_repo_slug`` rewrites the clone URL in it.
INSTALL_CELL = f"""\
# Runs only on Google Colab: clone the course once (later: refresh it), then pip-install only what
# Colab lacks: the course itself (without its dependencies), bitsandbytes and gguf. About 20 s the
# first time, a second or two when re-run.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    root = "/content/course"
    if not os.path.isdir(root):
        url = "https://github.com/{course_lib.REPO_SLUG}"
        if subprocess.run(["git", "clone", "--depth", "1", url, root]).returncode:
            raise SystemExit(f"cannot clone {{url}}: this copy of the course names a repository that does not "
                             "exist or is private (REPO_SLUG); open the notebook from the course's own "
                             "repository, or point it there with `make slug SLUG=owner/name`")
    if root not in sys.path:
        sys.path.insert(0, root)  # this kernel started before the install
    from course_lib.notebook import colab_install

    colab_install(root)  # refreshes the clone, prints what it installed and any version warnings
    os.chdir(f"{{root}}/notebooks")
"""
