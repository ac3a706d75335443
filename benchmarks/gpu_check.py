"""``make gpu-check``: everything that needs a CUDA GPU, in one command, with one table at the end.

1. the ``gpu`` test tier (``pytest -m gpu -s tests``): the Qwen2.5 profiles load in 4-bit on
   CUDA, sample a full rollout batch to the token cap and take a training micro-batch;
2. the GPU benchmark against TRL (``benchmarks/grpo_vs_trl.py --device cuda``) for the
   Qwen2.5-0.5B and 1.5B shapes (random weights, NF4 + LoRA, fp16, 8 prompts x G = 8 x 256
   tokens): peak GPU memory and seconds per step of both systems;
3. a 10-step run of the ``colab`` budget of ``qwen2.5-0.5b`` on GSM8K (hub weights when the hub
   is reachable, else random weights of the real shape), with its seconds per step and the
   estimate for notebook 06's GPU section it implies.

Targets (issue: the Colab path): 1.5B at most 6 GB peak, 0.5B at most 3 GB, course_lib's step
time no worse than TRL's. Without CUDA each GPU part prints one line saying it was skipped, and
the CPU rehearsal (``tests/rehearsal.py``) runs instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_GB = {"qwen2.5-0.5b": 3.0, "qwen2.5-1.5b": 6.0}


def run(cmd: list[str], timeout: int) -> tuple[int, str]:
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    print(p.stdout[-4000:] + p.stderr[-2000:], flush=True)
    return p.returncode, p.stdout


def gpu_tests(rows: list) -> None:
    code, out = run([sys.executable, "-m", "pytest", "-m", "gpu", "-s", "-q", "tests"], 1800)
    peaks = [line.strip() for line in out.splitlines() if "peak GiB" in line]
    rows.append(("gpu test tier", "passed" if code == 0 else f"exit {code}", "; ".join(peaks) or "-", code == 0))


def versus_trl(rows: list, model: str) -> None:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        code, out = run([sys.executable, "benchmarks/grpo_vs_trl.py", "--device", "cuda", "--model", model,
                         "--json", f.name], 3000)
        if code != 0:
            rows.append((f"{model} vs TRL", f"exit {code}", "-", False))
            return
        data = json.loads(Path(f.name).read_text())["runs"]
    import statistics

    step = {s: statistics.median(data[s][0]["step_s"]) for s in ("course_lib", "trl")}
    peak = {s: data[s][0].get("cuda_peak_mb", 0) / 1024 for s in ("course_lib", "trl")}
    ok = peak["course_lib"] <= TARGET_GB[model] and step["course_lib"] <= step["trl"]
    rows.append((f"{model} vs TRL", f"{step['course_lib']:.2f} vs {step['trl']:.2f} s/step, "
                 f"peak {peak['course_lib']:.2f} vs {peak['trl']:.2f} GB",
                 f"<= {TARGET_GB[model]} GB, s/step <= TRL's", ok))


def colab_budget(rows: list) -> None:
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from grpo_vs_trl import random_qwen_folder

    from course_lib.models import ModelUnavailableError, load_policy
    from course_lib.trainer import TrainConfig, train

    cfg = TrainConfig.from_profile("qwen2.5-0.5b", "colab", task="gsm8k", objective="grpo", steps=10,
                                   eval_examples=20)
    try:
        model, tok = load_policy("qwen2.5-0.5b", precision=cfg.precision)
        source = "hub weights"
    except ModelUnavailableError:
        folder = random_qwen_folder("qwen2.5-0.5b", Path(tempfile.gettempdir()) / "grpo_vs_trl")
        model, tok = load_policy("qwen2.5-0.5b", precision=cfg.precision, model_id=str(folder))
        source = "random weights, real shape"
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    res = train(cfg, model=model, tokenizer=tok, progress=False)
    wall = time.perf_counter() - t0
    steps = [h["seconds_gen"] + h["seconds_score"] + h["seconds_train"] for h in res.history]
    step_s = sum(steps[1:]) / len(steps[1:])  # the first step pays for warm-up
    eval_20 = (wall - sum(steps)) / 2  # two evaluations of 20 problems (start and end)
    nb06 = 2 * 40 * step_s + 4 * eval_20 * 100 / 20  # 2 runs x 40 steps + 4 evaluations of 100 problems
    rows.append(("colab budget, 10 steps", f"{step_s:.1f} s/step ({source}), peak "
                 f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GB",
                 f"notebook 06 GPU section ~{nb06 / 60:.0f} min (target <= 60)", nb06 <= 3600))


def main() -> int:
    import torch

    rows: list[tuple[str, str, str, bool]] = []
    if torch.cuda.is_available():
        gpu_tests(rows)
        for model in TARGET_GB:
            versus_trl(rows, model)
        colab_budget(rows)
    else:
        for part in ("gpu test tier", "GPU benchmark against TRL (0.5B, 1.5B)", "10-step colab budget run"):
            print(f"skipped: {part} needs a CUDA GPU (torch.cuda.is_available() is False)")
        code, _ = run([sys.executable, "tests/rehearsal.py"], 1800)
        rows.append(("CPU rehearsal of the Colab path", "passed" if code == 0 else f"exit {code}",
                     "see its rehearsal line", code == 0))
    width = max(len(r[0]) for r in rows)
    print("\n" + "\n".join(f"{name:<{width}}  {'ok  ' if ok else 'FAIL'}  {what}  [{target}]"
                           for name, what, target, ok in rows))
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
