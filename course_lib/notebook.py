"""What every notebook runs first: print the environment and decide on fast mode.

Fast mode (environment variable ``CI`` set, or ``COURSE_FAST=1``) tells a notebook to use
reduced step counts so the whole course executes in CI on two CPU cores. Simplified: the
profile is only *named* here (``COURSE_PROFILE``, default ``micro``); notebooks that train
load it with ``course_lib.models.get_profile``.
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np

import course_lib


def fast_mode() -> bool:
    """True under CI (``CI`` set to anything but ``""``/``0``/``false``) or ``COURSE_FAST=1``.

    Example: with ``COURSE_FAST=1`` in the environment, ``fast_mode()`` is ``True``.
    """
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return ci or os.environ.get("COURSE_FAST", "").strip() == "1"


def setup(seed: int = 0) -> bool:
    """Seed Python, NumPy and torch, print profile, device and versions; return fast mode.

    Example (first cell of a notebook)::

        FAST = course_lib.notebook.setup()
        steps = 20 if FAST else 200
    """
    import torch
    import transformers

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        device = f"cpu ({os.cpu_count()} cores)"
    fast = fast_mode()
    profile = os.environ.get("COURSE_PROFILE", "micro")
    print(f"course_lib    {course_lib.__version__}  (data: {course_lib.DATA_DIR.name}/)")
    print(f"profile       {profile}")
    print(f"device        {device}")
    print(f"python        {platform.python_version()}")
    print(f"torch         {torch.__version__}")
    print(f"transformers  {transformers.__version__}")
    print(f"fast mode     {fast}" + ("  (CI or COURSE_FAST=1: reduced steps)" if fast else ""))
    return fast
