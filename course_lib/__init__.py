"""course_lib: the small library behind the course "RL in Name Only?".

Modules, in the order the course meets them:

- ``tasks``       Countdown and GSM8K (and their micro variants): data, prompts, verifiers.
- ``mdp``         the toy token-tree MDP of the first notebooks.
- ``models``      profiles (micro / qwen2.5-*), model loading, QLoRA, the reference policy.
- ``rollout``     batched sampling of G completions per prompt.
- ``objectives``  group advantages, the GRPO loss and the signed-SFT loss.
- ``trainer``     the one on-policy loop shared by every objective, with checkpoint/resume.
- ``evaluate``    held-out accuracy, pass@k and answer lengths.
"""

__version__ = "0.1.0"

import os
from pathlib import Path

#: GitHub "owner/name" of this course; the notebooks' Colab badges and install cells use it.
REPO_SLUG = "rl-in-name-only/course"

#: Bundled data (GSM8K copy, micro base model, the paper's numbers). The package is meant to be
#: installed editable from a clone (``pip install -e .``), so data/ sits beside course_lib/;
#: ``COURSE_DATA_DIR`` points elsewhere if needed.
DATA_DIR = Path(os.environ.get("COURSE_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))
