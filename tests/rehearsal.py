"""``make rehearsal``: the Colab T4 code path of the Qwen profiles, end to end, on a CPU.

What runs is what a learner's Colab session runs, shrunk only where a CPU must:

- a randomly initialised model with Qwen2.5-0.5B's widths and vocabulary (151,936 tokens) but
  2 layers instead of 24, saved to disk and loaded through ``course_lib.models.load_policy``
  with the ``qwen2.5-0.5b`` profile: 4-bit NF4 weights (bitsandbytes), LoRA on every projection,
  gradient checkpointing, float16 compute (a T4 has no bfloat16) with a ``GradScaler``;
- the real Qwen tokenizer (the offline copy in tests/offline_qwen.py) and real GSM8K prompts in
  the profile's format (the bundled data/gsm8k copy);
- the profile's ``colab`` budget, shrunk to 1 prompt x G = 4 x 8 new tokens and 2 steps on the
  shortest GSM8K problems, rewarded by a coin (``course_lib.tasks.coin``: a random model is never
  right, and GRPO needs groups with mixed rewards to have a gradient);
- GRPO with its KL term against the adapters-off reference (so every completion goes through
  the backward pass even when a random model earns no reward), the chunked log-probs at the
  full vocabulary, a checkpoint, and an exact resume: 2 steps in one go must equal 1 step then
  a resume to 2 (same LoRA weights and GradScaler state bit for bit, same metrics).

What a CPU cannot do like a T4: torch runs float16 on a CPU, but its float16 matrix products in
the backward pass have no fast kernel here (measured: the backward of the 151,936 x 896 output
layer for 32 tokens took 36 s in float16 against 0.5 s in float32 and 0.7 s in bfloat16). The
rehearsal therefore keeps the sizes tiny; the numbers it checks (finiteness, the GradScaler's
skip-and-shrink, exact resume) do not depend on the speed.

It prints one line starting with ``rehearsal`` (step time, peak RSS, finite or not, resume exact
or not) and exits 1 if any loss or gradient was non-finite or the resume was not exact.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline_qwen import qwen_tokenizer_files  # noqa: E402

QWEN05 = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_attention_heads=14,
              num_key_value_heads=2, max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
              tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643)
SHRUNK = dict(steps=2, prompts_per_step=1, group_size=4, max_new_tokens=8, micro_batch_size=4,
              eval_examples=1, eval_samples=1, eval_every=0, checkpoint_every=1, learning_rate=1e-3)


def short_gsm8k():
    """GSM8K with only its shortest problems (real prompts in the profile's format): on a CPU the
    float16 backward pass is slow (see the module docstring), and its cost grows with the prompt length."""
    import dataclasses

    from course_lib.tasks import coin, get_task
    from course_lib.tasks.common import Score

    task = get_task("gsm8k")
    pick = {split: sorted(task.load(split), key=lambda e: len(task.prompt(e)))[:4] for split in ("train", "test")}

    def score(completion, example):  # a random model is never right: a coin gives GRPO mixed groups
        verdict = task.score(completion, example)
        return Score(coin(completion, example), verdict.correct, verdict.well_formed, verdict.reason)

    return dataclasses.replace(task, load=lambda split, n=None, seed=0: pick[split][:n], score=score)


def build(folder: Path, layers: int = 2) -> Path:
    """A random Qwen2.5-0.5B-shaped model with ``layers`` layers and the Qwen tokenizer, in ``folder``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    Qwen2ForCausalLM(Qwen2Config(**QWEN05, num_hidden_layers=layers)).to(torch.float16).save_pretrained(folder)
    for f in qwen_tokenizer_files().iterdir():
        shutil.copy(f, folder)
    return folder


def run(folder: Path, run_dir: Path, steps: int, resume: bool, precision: str):
    from course_lib.models import load_policy
    from course_lib.trainer import TrainConfig, train

    cfg = TrainConfig.from_profile("qwen2.5-0.5b", "colab", task="gsm8k", objective="grpo",
                                   precision=precision, **{**SHRUNK, "steps": steps})
    torch.manual_seed(cfg.seed)  # the LoRA initialisation draws from torch's generator, as train() does
    with contextlib.redirect_stderr(io.StringIO()):
        model, tok = load_policy("qwen2.5-0.5b", device="cpu", precision=precision, model_id=str(folder))
    res = train(cfg, run_dir=run_dir, resume=resume, model=model, tokenizer=tok, task=short_gsm8k(),
                progress=False)
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return res, lora, model


def check(precision: str = "fp16", keep: Path | None = None) -> dict:
    """Run the rehearsal; returns the summary (also what the one printed line says)."""
    tmp = Path(tempfile.mkdtemp(prefix="rehearsal-")) if keep is None else keep
    try:
        folder = build(tmp / "model")
        prompt = short_gsm8k().prompt(short_gsm8k().load("train", n=1)[0])
        t0 = time.perf_counter()
        full, lora_full, model = run(folder, tmp / "full", SHRUNK["steps"], False, precision)
        wall = time.perf_counter() - t0
        run(folder, tmp / "split", SHRUNK["steps"] - 1, False, precision)
        resumed, lora_resumed, _ = run(folder, tmp / "split", SHRUNK["steps"], True, precision)
        drop = ("seconds_gen", "seconds_score", "seconds_train", "cpu_seconds")
        same_rows = [{k: v for k, v in r.items() if k not in drop} for r in full.history] == \
                    [{k: v for k, v in r.items() if k not in drop} for r in resumed.history]
        from course_lib.runs import load_checkpoint

        scalers = [load_checkpoint(tmp / d)["scaler"] for d in ("full", "split")]
        same_lora = all(torch.equal(lora_full[n], lora_resumed[n]) for n in lora_full)
        exact = same_rows and scalers[0] == scalers[1] and same_lora
        if not exact:
            diff = [(k, a.get(k), b.get(k)) for a, b in zip(full.history, resumed.history) for k in a
                    if k not in drop and a.get(k) != b.get(k)]
            print(f"resume differs: rows {diff[:6]}, scalers {scalers}, LoRA equal {same_lora}", file=sys.stderr)
        losses = [r["loss"] for r in full.history]
        norms = [r["grad_norm"] for r in full.history]
        finite = all(x is not None and math.isfinite(x) for x in losses + norms) and not any(
            r["skipped"] for r in full.history)
        kinds = {type(m).__name__ for m in model.modules()}
        return {
            "precision": precision, "steps": len(full.history),
            "step_s": sum(r["seconds_gen"] + r["seconds_score"] + r["seconds_train"] for r in full.history) / len(full.history),
            "run_wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "finite": finite, "resume_exact": exact, "losses": losses, "grad_norms": norms,
            "kl": [r["kl"] for r in full.history], "n_backward": [r["n_backward"] for r in full.history],
            "grad_scale": scalers[0].get("scale"),
            "nf4": "Linear4bit" in kinds, "lora": any("lora" in k.lower() for k in kinds),
            "checkpointing": bool(getattr(model.get_base_model(), "is_gradient_checkpointing", False)),
            "vocab": model.get_output_embeddings().weight.shape[0], "prompt_chars": len(prompt),
        }
    finally:
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    torch.set_num_threads(1)
    s = check(sys.argv[1] if len(sys.argv) > 1 else "fp16")
    ok = s["finite"] and s["resume_exact"] and s["nf4"] and s["lora"]
    print(json.dumps({k: v for k, v in s.items()}, indent=1), file=sys.stderr)
    print(f"rehearsal {'passed' if ok else 'FAILED'}: qwen2.5-0.5b shape (2 layers, vocab {s['vocab']}), "
          f"NF4={s['nf4']} LoRA={s['lora']} checkpointing={s['checkpointing']} {s['precision']}+GradScaler, "
          f"KL to the adapters-off reference, {s['steps']} steps at {s['step_s']:.1f} s/step, "
          f"peak RSS {s['peak_rss_mb']:.0f} MB, every loss and gradient finite: {s['finite']}, "
          f"resume exact: {s['resume_exact']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
