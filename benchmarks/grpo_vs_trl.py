"""course_lib's GRPO step against TRL's GRPOTrainer on the same work: seconds per step and peak memory.

Run from the repository root (TRL comes with the bench extra: ``pip install -e '.[bench]'``):

    python benchmarks/grpo_vs_trl.py                       # CPU, micro model, about 2 minutes
    python benchmarks/grpo_vs_trl.py --reward coin         # every completion gets a gradient
    python benchmarks/grpo_vs_trl.py --device cuda --model qwen2.5-0.5b   # GPU (T4 settings)
    python benchmarks/grpo_vs_trl.py --device cuda --model qwen2.5-1.5b

The same work on both sides: the same initial weights, the same prompts in the same order, G
completions per prompt sampled with a KV cache (TRL: Hugging Face ``generate``, no vLLM;
course_lib: ``course_lib.rollout.generate_rollouts``) at the same temperature and length cap, the same reward, beta = 0 (no reference model), one optimizer step
per rollout (``num_iterations=1``), the per-completion length normalisation of the original
GRPO (course_lib ``aggregation="sequence"`` = TRL ``loss_type="grpo"``), AdamW with the same
learning rate and gradient clipping, the same dtype and the same number of threads.

- CPU (``--model micro``): the course's micro model (``data/micro``), full fine-tuning in
  float32, 16 prompts x G = 8, 64 new tokens, Countdown-micro scored by the course verifier.
- GPU (``--model qwen2.5-0.5b`` / ``qwen2.5-1.5b``): a randomly initialised model with the
  Qwen2.5 architecture (speed and memory do not depend on the weights), 4-bit NF4 with double
  quantisation, LoRA r 16 / alpha 32 on every projection, gradient checkpointing, float16
  compute as on a Colab T4, 8 GSM8K prompts x G = 8, 256 new tokens.

Rewards (``--reward``): ``verifier`` scores with the task's verifier. A randomly initialised
model never answers correctly, so every group has zero variance and zero advantage; course_lib
would then skip the whole backward pass (it runs only completions with a non-zero weight) and
the comparison would measure nothing. ``coin`` gives each completion a reward of 0 or 1 from a
hash of its text: groups almost always have both, so both systems back-propagate every
completion (the worst case for course_lib). ``auto`` = ``verifier`` for the trained micro
model, ``coin`` for random weights.

How it measures: each system runs in its own process (``--worker``); the two processes take
steps in turn (course_lib, TRL, TRL, course_lib, ...), the idle one blocked on a pipe, so that a
machine shared with other jobs slows both alike. The first ``--warmup`` steps are excluded. A
step's time runs from the go-ahead to the end of the optimizer step (sampling, scoring,
log-probs, backward, optimizer and the loop's own overhead), in wall-clock seconds and in CPU
seconds of the process; the figures are medians over the measured steps. One torch thread per
process by default (``--threads``): on a machine shared with other jobs, several threads per
process make every small operation wait for a descheduled thread, and times become erratic.
Peak memory on CPU is the process's peak resident set size (``getrusage`` ``ru_maxrss``: the
whole process, Python, libraries and model included; the increase over the resident size just
before the first step is printed too); on GPU it is ``torch.cuda.max_memory_allocated``
(weights included). The last line is ``ratio_step_time=X ratio_peak_mem=Y``, course_lib / TRL
(below 1 = course_lib is faster / leaner).

What is simplified: TRL is timed through its public ``train()`` with a callback; its rollout
time is read by wrapping its ``_generate_and_score_completions`` method (a private name; if a
TRL release renames it, only the breakdown column is lost). No evaluation, logging to disk or
checkpointing is timed on either side.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("micro", "qwen2.5-0.5b", "qwen2.5-1.5b")
SYSTEMS = ("course_lib", "trl")

# The published Qwen2.5 configurations (config.json of Qwen/Qwen2.5-0.5B and -1.5B), so the random
# models have exactly their shapes without a download.
QWEN25 = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2),
}
QWEN25_COMMON = dict(vocab_size=151936, max_position_embeddings=32768, rope_theta=1000000.0,
                     rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
                     bos_token_id=151643, eos_token_id=151643, use_sliding_window=False)


# ------------------------------------------------------------------------------ the settings

def settings(args) -> dict:
    """The work of one step, identical for both systems."""
    from course_lib.models import get_profile

    prof = get_profile(args.model)  # the profile's micro-batch, learning rate and checkpointing
    budget = prof.budgets["default"]
    if args.model == "micro":
        s = dict(task="countdown-micro", prompts=16, group=8, new_tokens=64,
                 micro_batch=budget["micro_batch_size"], lr=budget["learning_rate"], lora=False,
                 dtype="float32", checkpointing=prof.gradient_checkpointing)
    else:
        s = dict(task="gsm8k", prompts=8, group=8, new_tokens=256, micro_batch=budget["micro_batch_size"],
                 lr=budget["learning_rate"], lora=True, dtype="float16" if args.device == "cuda" else "float32",
                 checkpointing=prof.gradient_checkpointing)
    s.update(temperature=1.0, top_p=1.0, grad_clip=1.0, epsilon=0.2)
    if args.prompts:
        s["prompts"] = args.prompts
    if args.new_tokens:
        s["new_tokens"] = args.new_tokens
    n = s["prompts"] * s["group"]
    if n % s["micro_batch"]:
        s["micro_batch"] = math.gcd(n, s["micro_batch"])
    return s


def coin_reward(text: str) -> float:
    """0 or 1 from a hash of the completion: deterministic, about half of each group rewarded."""
    return float(zlib.crc32(text.encode("utf-8")) & 1)


# ------------------------------------------------------------------------------ the models

def random_qwen_folder(name: str, cache: Path, smoke: bool = False) -> Path:
    """A randomly initialised Qwen2.5-architecture model (float16) and the Qwen tokenizer, saved
    once to ``cache/name`` so both systems load the very same weights through from_pretrained.
    ``smoke``: a 2-layer model of the same vocabulary, to check the wiring on a CPU."""
    folder = cache / f"random-{name}{'-smoke' if smoke else ''}"
    if (folder / "config.json").exists() and (folder / "tokenizer.json").exists():
        return folder
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from offline_qwen import load_offline_qwen_tokenizer

    from course_lib.models import get_profile

    print(f"building a random {name} in {folder} (once) ...", flush=True)
    shape = dict(QWEN25[name])
    if smoke:
        shape.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
    config = Qwen2Config(**shape, **QWEN25_COMMON)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(config).to(torch.float16)
    model.save_pretrained(folder)
    load_offline_qwen_tokenizer(get_profile(name)).save_pretrained(folder)
    del model
    return folder


def micro_model(path: str | None = None):
    """(model, tokenizer, trained?) the shipped micro base model (or the one in ``path``), or a
    random one when there is none (built as tools/pretrain_micro.py builds it)."""
    from course_lib import models

    try:
        model, tok = models.load_micro(path)
        return model, tok, True
    except FileNotFoundError:
        spec = importlib.util.spec_from_file_location("pretrain_micro", ROOT / "tools" / "pretrain_micro.py")
        pretrain = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(pretrain)
        model = pretrain.build_micro_model(tok := pretrain.build_micro_tokenizer())
        return model, tok, False


# ------------------------------------------------------------------------------ the workers

def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20  # macOS reports bytes


def _examples(task, s: dict, total_steps: int, seed: int) -> list[dict]:
    """The prompts of every step in the order course_lib's trainer draws them (so TRL, which is told
    not to shuffle, sees the same prompts at the same step)."""
    from course_lib import trainer

    pool = task.load("train")
    n = s["prompts"] * total_steps
    order = getattr(trainer, "_example_indices", None)
    idx = order(len(pool), seed, 0, n) if order is not None else list(range(n))
    return [pool[i % len(pool)] for i in idx]


def _now() -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of this process: all its threads)."""
    return time.perf_counter(), time.process_time()


def wait_for_turn() -> tuple[float, float]:
    """Tell the driver this process is idle, block until it says "go", return :func:`_now` at the go.
    The driver lets the two systems take steps in turn, so both see the same machine load."""
    print("WAIT", flush=True)
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"worker: expected 'go' from the driver, got {line!r}")
    return _now()


def _durations(starts, ends, warmup: int) -> dict:
    return dict(step_s=[b[0] - a[0] for a, b in zip(starts, ends)][warmup:],
                cpu_s=[b[1] - a[1] for a, b in zip(starts, ends)][warmup:])


def run_course(args, s, model, tok, task, reward) -> dict:
    import torch

    from course_lib.trainer import TrainConfig, train

    total = args.warmup + args.steps
    cfg = TrainConfig(
        objective="grpo-no-kl", task=s["task"], profile="micro" if args.model == "micro" else args.model,
        steps=total, seed=args.seed, prompts_per_step=s["prompts"], group_size=s["group"],
        max_new_tokens=s["new_tokens"], temperature=s["temperature"], top_p=s["top_p"],
        micro_batch_size=s["micro_batch"], learning_rate=s["lr"], grad_clip=s["grad_clip"],
        epsilon=s["epsilon"], aggregation="sequence", mu=1, eval_examples=0, eval_every=0,
        precision="fp16" if s["dtype"] == "float16" else "fp32",
    )
    if reward == "coin":
        from course_lib.tasks import Task
        from course_lib.tasks.common import Score

        def score(text, example):
            r = coin_reward(text)
            return Score(reward=r, correct=r > 0, well_formed=True, reason="coin")

        task = Task(task.name, task.load, task.prompt, score)
    starts, ends, rows = [], [], []

    def callback(metrics, history):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ends.append(_now())
        rows.append(metrics)
        if len(ends) < total:
            starts.append(wait_for_turn())

    rss0 = _rss_mb()
    starts.append(wait_for_turn())
    train(cfg, model=model, tokenizer=tok, task=task, callback=callback, progress=False)
    return dict(
        **_durations(starts, ends, args.warmup),
        rollout_s=[m["seconds_gen"] + m["seconds_score"] for m in rows][args.warmup:],
        len_mean=[m["len_mean"] for m in rows][args.warmup:],
        backward_rows=[m["n_backward"] for m in rows][args.warmup:],
        rss_before_mb=rss0,
    )


def run_trl(args, s, model, tok, task, reward, examples, out_dir: str, peft_config=None) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    data = Dataset.from_list([{"prompt": task.prompt(e), "example": json.dumps(e)} for e in examples])

    def verifier_reward(prompts, completions, example, **kwargs):
        return [float(task.score(c, json.loads(e)).reward) for c, e in zip(completions, example)]

    def coin(prompts, completions, **kwargs):
        return [coin_reward(c) for c in completions]

    B = s["prompts"] * s["group"]
    cuda = args.device == "cuda"
    config = GRPOConfig(
        output_dir=out_dir, max_steps=args.warmup + args.steps, seed=args.seed,
        per_device_train_batch_size=s["micro_batch"], gradient_accumulation_steps=B // s["micro_batch"],
        num_generations=s["group"], max_completion_length=s["new_tokens"],
        temperature=s["temperature"], top_p=s["top_p"], top_k=0,
        beta=0.0, num_iterations=1, epsilon=s["epsilon"], loss_type="grpo", scale_rewards="group",
        learning_rate=s["lr"], lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=s["grad_clip"], optim="adamw_torch",
        gradient_checkpointing=s["checkpointing"],
        bf16=False, fp16=cuda and s["dtype"] == "float16", use_cpu=not cuda,
        use_vllm=False, shuffle_dataset=False, log_completions=False,
        logging_steps=10**6, save_strategy="no", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0,
    )
    starts, ends, rollout, lengths = [], [], [], []
    total = args.warmup + args.steps

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            if cuda:
                torch.cuda.synchronize()
            ends.append(_now())
            if len(ends) < total:
                starts.append(wait_for_turn())

    trainer = GRPOTrainer(
        model=model, reward_funcs=verifier_reward if reward == "verifier" else coin, args=config,
        train_dataset=data, processing_class=tok, callbacks=[Clock()], peft_config=peft_config,
    )
    inner = getattr(trainer, "_generate_and_score_completions", None)
    if inner is not None:
        def timed(*a, **k):
            t = time.perf_counter()
            out = inner(*a, **k)
            if cuda:
                torch.cuda.synchronize()
            rollout.append(time.perf_counter() - t)
            lengths.append(float(out["completion_mask"].sum(1).float().mean()))
            return out

        trainer._generate_and_score_completions = timed
    rss0 = _rss_mb()
    starts.append(wait_for_turn())
    trainer.train()
    w = args.warmup
    return dict(**_durations(starts, ends, w), rollout_s=rollout[w:], len_mean=lengths[w:],
                backward_rows=[B] * len(ends[w:]), rss_before_mb=rss0)


def worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    s = settings(args)
    from course_lib.tasks import get_task

    task = get_task(s["task"])
    total = args.warmup + args.steps
    peft_config = None
    if args.model == "micro":
        model, tok, trained = micro_model(args.micro_dir)
        model = model.to(torch.float32)
    else:
        folder = Path(args.model_dir)
        trained = False
        if args.worker == "course_lib":
            from course_lib.models import get_profile, load_policy

            model, tok = load_policy(get_profile(args.model), device=args.device, model_id=str(folder))
        else:
            from peft import LoraConfig
            from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

            from course_lib.models import get_profile

            lora = get_profile(args.model).lora
            tok = AutoTokenizer.from_pretrained(folder)
            tok.padding_side = "left"
            dtype = getattr(torch, s["dtype"])
            model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dtype, device_map={"": 0 if args.device == "cuda" else "cpu"},
                quantization_config=BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=dtype),
            )
            peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                     target_modules=list(lora.target_modules), bias="none",
                                     task_type="CAUSAL_LM")
    reward = args.reward if args.reward != "auto" else ("verifier" if trained else "coin")
    examples = _examples(task, s, total, args.seed)
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    if args.worker == "course_lib":
        res = run_course(args, s, model, tok, task, reward)
    else:
        with tempfile.TemporaryDirectory() as out_dir:
            res = run_trl(args, s, model, tok, task, reward, examples, out_dir, peft_config)
    res.update(system=args.worker, reward=reward, trained=trained, peak_rss_mb=_peak_rss_mb(),
               threads=torch.get_num_threads())
    if args.device == "cuda":
        res["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return res


# ------------------------------------------------------------------------------ the driver

class Worker:
    """One system in its own process, stepping when told to (see :func:`wait_for_turn`)."""

    def __init__(self, args, system: str, model_dir: str | None):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", system, "--device", args.device,
               "--model", args.model, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--threads", str(args.threads), "--seed", str(args.seed), "--reward", args.reward]
        for flag in ("prompts", "new_tokens", "micro_dir"):
            if getattr(args, flag):
                cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        if model_dir:
            cmd += ["--model-dir", model_dir]
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="ignore",
                   OMP_NUM_THREADS=str(args.threads))
        self.system = system
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives as long as the worker)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env, cwd=ROOT)
        self.result = None

    def _read_until_idle(self) -> None:
        """Read the worker's output until it waits for its next turn or reports its result."""
        for line in self.proc.stdout:
            if line.startswith("WAIT"):
                return
            if line.startswith("RESULT "):
                self.result = json.loads(line[len("RESULT "):])
                self.proc.wait()
                return
        self.proc.wait()
        self.log.seek(0)
        sys.stderr.write(self.log.read()[-6000:])
        raise RuntimeError(f"the {self.system} worker failed (exit code {self.proc.returncode}); "
                           "its error output is above")

    def ready(self) -> None:
        self._read_until_idle()

    def step(self) -> float:
        t = time.perf_counter()
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self._read_until_idle()
        return time.perf_counter() - t

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


def check_environment(args) -> None:
    import importlib.util

    import torch

    if importlib.util.find_spec("trl") is None:
        raise SystemExit("error: TRL is not installed. Install the bench extra: pip install -e '.[bench]'")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda needs a CUDA GPU, and torch.cuda.is_available() is False "
                         "here; run with --device cpu (the micro model) or on a GPU machine")
    if args.device == "cuda" and args.model == "micro":
        raise SystemExit("error: --device cuda benchmarks the Qwen2.5 shapes: pass --model qwen2.5-0.5b "
                         "or --model qwen2.5-1.5b")
    if args.device == "cpu" and args.model != "micro" and not args.smoke:
        raise SystemExit(f"error: --model {args.model} is the GPU benchmark (4-bit NF4, float16): "
                         "add --device cuda, or use --model micro on CPU")


def _fmt(xs, f="{:.2f}") -> str:
    return f.format(statistics.median(xs)) if xs else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--model", choices=MODELS, default=None,
                    help="default: micro on cpu, qwen2.5-0.5b on cuda")
    ap.add_argument("--steps", type=int, default=5, help="measured steps per system (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="excluded steps at the start (default 1)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per system (default 1: on a machine shared with other jobs, "
                    "several threads per process make every small operation wait for a descheduled thread)")
    ap.add_argument("--reward", choices=("auto", "verifier", "coin"), default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", type=int, default=None, help="override prompts per step")
    ap.add_argument("--new-tokens", type=int, default=None, help="override max new tokens")
    ap.add_argument("--micro-dir", default=None,
                    help="a micro model folder written by tools/pretrain_micro.py (default: data/micro)")
    ap.add_argument("--cache-dir", default=None, help="where the random Qwen models are saved (GPU)")
    ap.add_argument("--json", default=None, help="also write the raw figures to this file")
    ap.add_argument("--worker", choices=SYSTEMS, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", default=None, help=argparse.SUPPRESS)
    # a 2-layer Qwen-vocabulary model, allowed on CPU: checks the GPU path's wiring, measures nothing
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.model = args.model or ("micro" if args.device == "cpu" else "qwen2.5-0.5b")
    if args.warmup < 1 or args.steps < 1:
        ap.error("--warmup and --steps must be >= 1 (the first step of a process pays for set-up)")

    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return 0

    check_environment(args)
    import torch
    import transformers
    import trl

    model_dir = None
    if args.model != "micro":
        cache = Path(args.cache_dir or Path(tempfile.gettempdir()) / "grpo_vs_trl")
        model_dir = str(random_qwen_folder(args.model, cache, smoke=args.smoke))
    s = settings(args)
    dev = torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor() or platform.machine()
    print(f"{args.model} on {args.device} ({dev}, {args.threads} threads): {s['prompts']} prompts x "
          f"G={s['group']}, {s['new_tokens']} new tokens, T={s['temperature']}, beta=0, one update per "
          f"rollout, {'4-bit NF4 + LoRA' if s['lora'] else 'full fine-tune'}, {s['dtype']}"
          + (" (--smoke: a 2-layer model, wiring check only)" if args.smoke else ""))
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}; "
          f"one process per system, taking steps in turn: {args.warmup} warm-up + {args.steps} measured",
          flush=True)
    workers = {system: Worker(args, system, model_dir) for system in SYSTEMS}
    try:
        for w in workers.values():  # both load in parallel, then wait for their first turn
            w.ready()
        for k in range(args.warmup + args.steps):
            took = {system: workers[system].step() for system in (SYSTEMS if k % 2 == 0 else SYSTEMS[::-1])}
            label = "warm-up" if k < args.warmup else f"step {k - args.warmup + 1}"
            print(f"  {label:8s} " + "  ".join(f"{n} {took[n]:.2f} s" for n in SYSTEMS)
                  + (" (round trips; the last includes the process exit)" if k == 0 else ""), flush=True)
    finally:
        for w in workers.values():
            w.close()
    results = {system: [w.result] for system, w in workers.items()}

    summary = {}
    for system, runs in results.items():
        def cat(key, runs=runs):
            return [x for run in runs for x in run[key]]

        summary[system] = dict(
            step=statistics.median(cat("step_s")), cpu=statistics.median(cat("cpu_s")),
            rollout=cat("rollout_s"), len=cat("len_mean"),
            rows=cat("backward_rows"), peak_rss=max(run["peak_rss_mb"] for run in runs),
            step_rss=max(run["peak_rss_mb"] - run["rss_before_mb"] for run in runs),
            cuda=max(run.get("cuda_peak_mb", 0.0) for run in runs), reward=runs[0]["reward"],
            trained=runs[0]["trained"],
        )
    c, t = summary["course_lib"], summary["trl"]
    if not c["trained"] and args.model == "micro":
        print("note: data/micro has no trained model yet; a random micro model was used")
    print(f"reward: {c['reward']}; measured steps (s, each process's own clock): "
          + "; ".join(f"{n} " + " ".join(f"{x:.2f}" for r in results[n] for x in r["step_s"]) for n in SYSTEMS))
    print(f"{'':12s}{'s/step':>8s}{'cpu s':>7s}{'rollout':>9s}{'update':>8s}{'len':>6s}{'bwd rows':>9s}"
          + (f"{'GPU peak MB':>12s}" if args.device == "cuda" else f"{'peak RSS MB':>12s}{'step RSS MB':>12s}"))
    for name, m in summary.items():
        upd = m["step"] - statistics.median(m["rollout"]) if m["rollout"] else float("nan")
        mem = f"{m['cuda']:12.0f}" if args.device == "cuda" else f"{m['peak_rss']:12.0f}{m['step_rss']:12.0f}"
        print(f"{name:12s}{m['step']:8.2f}{m['cpu']:7.2f}{_fmt(m['rollout']):>9s}{upd:8.2f}{_fmt(m['len'], '{:.1f}'):>6s}"
              f"{_fmt(m['rows'], '{:.0f}'):>9s}{mem}")
    key = "cuda" if args.device == "cuda" else "peak_rss"
    ratio_t, ratio_m = c["step"] / t["step"], c[key] / t[key]
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": s, "args": vars(args), "runs": results}, indent=1))
    print("(medians over the measured steps. s/step: wall clock; cpu s: CPU seconds of the process per "
          "step, steadier on a shared machine; update = s/step - rollout; len: mean completion tokens; "
          "bwd rows: completions run through backward per step)")
    print(f"CPU-time ratio {c['cpu'] / t['cpu']:.2f}; step-memory ratio (peak RSS minus RSS before the "
          f"first step) {c['step_rss'] / t['step_rss']:.2f}" if args.device == "cpu" else
          f"CPU-time ratio {c['cpu'] / t['cpu']:.2f}")
    print(f"ratio_step_time={ratio_t:.2f} ratio_peak_mem={ratio_m:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
