"""The micro path is quiet and a reproduction is alive: no bitsandbytes import (and so no
CPU-kernel warning) and no weight-loading bar when micro trains, and one progress line per
finished run of a reproduction (runs done of planned, elapsed)."""

import subprocess
import sys

from loop_fixtures import char_tokenizer, fake_task, tiny_model

from course_lib import plans
from course_lib import reproduce as R
from course_lib.__main__ import _run_line

MICRO_STEP = """
import sys
from course_lib.trainer import TrainConfig, train
cfg = TrainConfig.from_profile("micro", objective="grpo", steps=1, prompts_per_step=2, group_size=2,
                               max_new_tokens=8, eval_examples=2, eval_samples=1)
train(cfg, progress=False)
print("imported:", sorted(m for m in ("peft", "bitsandbytes") if m in sys.modules))
"""


def test_a_micro_run_imports_neither_peft_nor_bitsandbytes_and_shows_no_loading_bar():
    done = subprocess.run([sys.executable, "-c", MICRO_STEP], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported: []" in done.stdout
    assert "gemm_4bit" not in done.stderr and "Loading weights" not in done.stderr, done.stderr[-2000:]


def test_a_reproduction_reports_each_finished_run(tmp_path, capsys):
    specs = [plans.RunSpec("countdown-micro", o, 0) for o in ("grpo", "sft+")]
    seen = []
    R.run_reproduction(tmp_path, profile="micro", specs=specs, settings=plans.Settings(steps=1, eval_every=0,
                       eval_examples=2, eval_samples=1), extra=dict(prompts_per_step=2, group_size=2, max_new_tokens=4),
                       model=tiny_model(), tokenizer=char_tokenizer(), get_task=lambda name: fake_task(),
                       progress=False, on_run=lambda *a: seen.append(a))
    assert [(done, planned, rec["objective"]) for done, planned, rec in seen] == [(1, 2, "grpo"), (2, 2, "sft+")]
    _run_line(0.0)(*seen[-1])
    _run_line(0.0)(3, 3, {**seen[-1][2], "objective": "grpo", "aggregation": "token", "ablation": True})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("  2/2 runs done, ") and lines[0].endswith("s elapsed: sft+ on countdown-micro, seed 0 (ran)")
    assert lines[1].endswith("grpo on countdown-micro, seed 0, token aggregation (ran)")
