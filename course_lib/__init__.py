"""course_lib: the small library behind the course "RL in Name Only?".

The argument, in the order the course meets it (each module, one job):

- ``tasks``       Countdown and GSM8K, their micro variants, one-step arithmetic for SmolLM2:
                  data, prompts, verifiers.
- ``models``      profiles (model + named budgets), the policy, the reference policy, the dtype.
- ``rollout``     sampling G completions per prompt; log-probs at the sampling temperature.
- ``objectives``  the objective table (GRPO, signed SFT and the variants): weights and losses.
- ``trainer``     the one on-policy loop: ``TrainConfig``, ``train()``, ``update()``.
- ``evaluate``    held-out accuracy, pass@k and answer lengths, asked as training asked.
- ``notebook``    what only the notebooks use: toy MDPs, widgets, the setup cell, the tree drawing.

Machinery a learner may skip: ``runs`` (run directories, checkpoints, resume), ``loading``
(hub, offline copies, SmolLM2's GGUF, 4-bit and LoRA set-up), ``plans`` (what a reproduction
runs), ``reproduce`` (the experiment grid), ``stats`` (intervals, TOST, power, bootstrap, Holm, verdict rules), ``report`` (tables
and result figures), ``demo`` and ``__main__`` (the command line).

Outside the package, in tools/: ``pretrain_micro.py`` (how the micro model was made; it writes
data/micro/) and ``scale.py`` (the objectives on TRL + accelerate, the optional ``scale`` extra).
"""

__version__ = "0.2.0"

import os
from pathlib import Path

#: GitHub "owner/name" of this course; the notebooks' Colab badges and install cells use it.
REPO_SLUG = "rl-in-name-only/course"

#: Bundled data (GSM8K copy, micro base model, the paper's numbers, the shipped results). The
#: package is meant to be installed editable from a clone (``pip install -e .``), so data/ sits
#: beside course_lib/; ``COURSE_DATA_DIR`` points elsewhere if needed.
DATA_DIR = Path(os.environ.get("COURSE_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))
