"""What every notebook runs first: print the environment and decide on fast mode.

Fast mode (environment variable ``CI`` set, or ``COURSE_FAST=1``) tells a notebook to use
reduced step counts so the whole course executes in CI on two CPU cores. The profile line is
``course_lib.models.get_profile()``'s choice (``COURSE_PROFILE``, else ``micro`` on a CPU and
``qwen2.5-0.5b`` with a CUDA GPU); notebooks that train call ``get_profile`` themselves.
"""

from __future__ import annotations

import logging
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
    """Seed Python, NumPy and torch, print versions, device and profile; return fast mode.

    Also turns off transformers' progress bars, which would otherwise land in stored outputs.

    Example (first cell of a notebook)::

        FAST = course_lib.notebook.setup()
        steps = 20 if FAST else 200
    """
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bars in outputs
    # bitsandbytes announces on CPU that an optional kernels package is missing; nothing is wrong
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    else:
        device = f"cpu ({os.cpu_count()} cores)"
    fast = fast_mode()
    print(f"course_lib    {course_lib.__version__}  (data: {course_lib.DATA_DIR.name}/)")
    print(f"device        {device}")
    print(f"python        {platform.python_version()}")
    print(f"torch         {torch.__version__}")
    print(f"transformers  {transformers.__version__}")
    print(f"fast mode     {fast}" + ("  (CI or COURSE_FAST=1: reduced steps)" if fast else ""))
    from course_lib.models import choose_profile, use_profile_threads

    profile, why = choose_profile()
    threads = use_profile_threads(profile)  # micro: one thread, steady on a busy machine
    print(f"threads       {threads}")
    print(f"profile       {profile.name} ({why}): {profile.describe()}")
    return fast
