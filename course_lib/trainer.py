"""The one on-policy loop. Every objective of the paper runs through the same ``train``:

    for step in range(steps):
        examples = next prompts_per_step training problems        (data position is saved)
        rollout  = generate_rollouts(model, prompts, G)           (sample)
        scores   = task.score(text, example) for each completion  (verify)
        weights  = completion_weights(config, rewards, correct)   (GRPO: advantages; SFT: +1/-lambda/0)
        loss     = objective_loss(config, logprobs, ...)          (GRPO: clipped ratio [+ KL]; SFT: weighted NLL)
        backward over micro-batches, clip, AdamW step; log; maybe evaluate and checkpoint

The objectives differ only in :func:`completion_weights` and :func:`objective_loss`, which sit
next to each other below. Names follow the paper: ``grpo`` and ``grpo-no-kl`` (GRPO,
GRPO-wo-KL), ``sft+``, ``sft-``, ``sft+-`` (Filtered-ISFT+, -, +-).

What is simplified, and why:

- The learning-rate schedule is linear warm-up then constant (the prototype and the paper's
  short runs do not need decay).
- Completions whose weight is 0 (a GRPO group that is all right or all wrong; an SFT sample
  the objective ignores) are not run through the training forward/backward at all when
  beta = 0: they contribute exactly nothing to the gradient. The loss normalisers still count
  the whole batch, so the loss equals the full-batch loss. This is most of the speed.
- The KL reference for a LoRA model is the same model with adapters disabled; for a fully
  fine-tuned model (the micro profile) it is a snapshot of the initial weights
  (``course_lib.models.reference_policy``), swapped in for the reference forward.
- Each step reseeds torch from (seed, step), so a resumed run samples exactly what the
  uninterrupted run sampled; the RNG states are saved anyway for anything else that draws.
- Entropy is measured on the completions that go through the training forward.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from course_lib.evaluate import evaluate
from course_lib.objectives import (
    ADVANTAGE_SCALES,
    AGGREGATIONS,
    clip_fraction,
    group_advantages,
    grpo_loss,
    kl_k3,
    signed_sft_loss,
    signed_weights,
)
from course_lib.rollout import Rollout, completion_logprobs, generate_rollouts

__all__ = [
    "OBJECTIVES",
    "TrainConfig",
    "RunResult",
    "completion_weights",
    "objective_loss",
    "train",
    "load_run",
    "main",
]

#: the paper's five runs: GRPO, GRPO-wo-KL, Filtered-ISFT+, -, +-
OBJECTIVES = ("grpo", "grpo-no-kl", "sft+", "sft-", "sft+-")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
CHECKPOINT = "checkpoint.pt"
DEFAULT_GRPO_BETA = 0.001  # the paper's rebuttal runs (DeepSeekMath used 0.04)


@dataclass
class TrainConfig:
    """Every setting of one run. ``TrainConfig.from_profile("micro", objective="sft+-")`` fills
    the sizes from a profile in ``course_lib.models``; invalid values raise ValueError."""

    objective: str = "grpo"          # one of OBJECTIVES
    task: str = "countdown-micro"    # a name from course_lib.tasks.TASK_NAMES
    profile: str = "micro"           # a name from course_lib.models.PROFILES
    steps: int = 50                  # training steps (one rollout each)
    seed: int = 0
    # sampling
    prompts_per_step: int = 16       # problems per step (the paper: 64)
    group_size: int = 8              # G completions per problem (the paper: 5)
    max_new_tokens: int = 64         # completion cap; longer answers are truncated
    temperature: float = 1.0         # the paper: 0.6
    top_p: float = 1.0
    micro_batch_size: int = 128      # completions per forward/backward (memory knob; same maths)
    gen_batch_size: int | None = None  # completions per generate call (None = all at once)
    # optimisation
    learning_rate: float = 1e-4      # the paper: 1e-6 on 0.5B-1.5B models (full fine-tune)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    grad_clip: float = 1.0           # max gradient norm (0 = no clipping)
    mu: int = 1                      # updates per rollout; > 1 makes the PPO ratio/clip matter
    # objective
    beta: float | None = None        # KL weight; None = 0.001 for "grpo", 0 otherwise
    epsilon: float = 0.2             # PPO clip, ratio >= 1 - epsilon
    epsilon_high: float | None = None  # ratio <= 1 + epsilon_high (None = epsilon; DAPO: 0.28)
    aggregation: str = "sequence"    # "sequence" (GRPO 1/|o_i|), "token" (DAPO), "constant" (Dr. GRPO)
    advantage_scale: str = "group"   # "group", "batch" or "none" (Dr. GRPO)
    neg_weight: float = 1.0          # lambda: size of the push-down on incorrect samples (sft-, sft+-)
    sized_weights: bool = False      # signed SFT with GRPO-advantage magnitudes instead of 1
    balance: bool = False            # scale negatives per group by min(1, k/(G-k))
    # evaluation, checkpoints, safety
    eval_every: int = 25             # held-out evaluation every N steps (0 = only start and end)
    eval_examples: int = 100
    eval_samples: int = 4            # samples per held-out problem
    eval_greedy: bool = False        # also greedy accuracy (slower; a poor signal on micro)
    checkpoint_every: int = 0        # 0 = only at the end and on KeyboardInterrupt
    guard: bool = False              # stop if reward is 0 for 10 steps or grad norm > 3x start
    max_nonfinite: int = 5           # non-finite updates in a row before stopping with an error
    precision: str = "auto"          # CUDA: bf16 if supported else fp16 (+ GradScaler); CPU: fp32
    logprob_chunk: int = 256         # positions per output-layer chunk

    def __post_init__(self):
        self.validate()

    @property
    def kl_beta(self) -> float:
        """The KL weight actually used."""
        if self.objective != "grpo":
            return 0.0
        return DEFAULT_GRPO_BETA if self.beta is None else float(self.beta)

    def validate(self) -> None:
        def bad(name, allowed):
            raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} is invalid; allowed: {allowed}")

        if self.objective not in OBJECTIVES:
            bad("objective", ", ".join(OBJECTIVES))
        if self.aggregation not in AGGREGATIONS:
            bad("aggregation", ", ".join(AGGREGATIONS))
        if self.advantage_scale not in ADVANTAGE_SCALES:
            bad("advantage_scale", ", ".join(ADVANTAGE_SCALES))
        if self.precision not in PRECISIONS:
            bad("precision", ", ".join(PRECISIONS))
        if self.objective.startswith("grpo") and self.group_size < 2:
            bad("group_size", "an integer >= 2 for GRPO (advantages compare samples of one problem)")
        if self.group_size < 1:
            bad("group_size", "an integer >= 1")
        if (self.balance or self.sized_weights) and self.group_size < 2:
            bad("group_size", "an integer >= 2 with balance or sized_weights")
        if not self.epsilon > 0:
            bad("epsilon", "a number > 0")
        if self.epsilon_high is not None and not self.epsilon_high > 0:
            bad("epsilon_high", "None or a number > 0")
        if self.beta is not None and self.beta < 0:
            bad("beta", "None or a number >= 0")
        if self.beta and self.objective != "grpo":
            bad("beta", f"0 or None for objective {self.objective!r} (only 'grpo' has a KL term)")
        for name in ("prompts_per_step", "micro_batch_size", "max_new_tokens", "mu", "logprob_chunk", "max_nonfinite"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "an integer >= 1")
        if self.gen_batch_size is not None and self.gen_batch_size < 1:
            bad("gen_batch_size", "None or an integer >= 1")
        n = self.prompts_per_step * self.group_size
        if n % self.micro_batch_size:
            bad("micro_batch_size", f"a divisor of prompts_per_step x group_size = {n} (completions per step)")
        for name in ("steps", "warmup_steps", "eval_every", "eval_examples", "eval_samples", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                bad(name, "an integer >= 0")
        if not self.learning_rate > 0:
            bad("learning_rate", "a number > 0")
        if self.temperature < 0:
            bad("temperature", "a number >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            bad("top_p", "a number in (0, 1]")
        if self.neg_weight < 0:
            bad("neg_weight", "a number >= 0 (the sign is applied for you)")
        if self.grad_clip < 0 or self.weight_decay < 0:
            bad("grad_clip" if self.grad_clip < 0 else "weight_decay", "a number >= 0")

    @classmethod
    def from_profile(cls, profile: str = "micro", **overrides) -> TrainConfig:
        """Sizes (batch, G, lengths, learning rate, steps, beta ...) from a profile, then overrides."""
        from course_lib.models import get_profile

        prof = get_profile(profile)
        names = {f.name for f in dataclasses.fields(cls)}
        values = {n: getattr(prof, n) for n in names if hasattr(prof, n) and n not in ("task", "profile")}
        for ours, theirs in (("epsilon", "clip_eps"), ("grad_clip", "max_grad_norm")):
            if hasattr(prof, theirs):
                values[ours] = getattr(prof, theirs)
        values["profile"] = prof.name
        if getattr(prof, "tasks", None) and "task" not in overrides:
            values["task"] = prof.tasks[0]
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("objective", "grpo") != "grpo" and overrides.get("beta") is None:
            values["beta"] = None  # the profile's KL weight belongs to "grpo" only
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}; allowed: {sorted(names)}")
        return cls(**values)


@dataclass
class RunResult:
    """What ``train`` returns. ``history`` = one dict per step (also in RUN_DIR/metrics.jsonl);
    ``evals`` = held-out evaluations, each with the step it followed (0 = before training)."""

    config: TrainConfig
    history: list[dict]
    evals: list[dict]
    model: object = None
    tokenizer: object = None
    run_dir: str | None = None
    stopped: str | None = None       # why the run stopped early (guard), else None
    interrupted: bool = False        # KeyboardInterrupt: a checkpoint was written
    skipped_updates: int = 0


# --------------------------------------------------------------------------------------------
# The two objectives, side by side. This is the whole difference between GRPO and signed SFT.
# --------------------------------------------------------------------------------------------

def completion_weights(cfg: TrainConfig, rewards: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """(B,) weight of each completion: GRPO's group advantage, or signed SFT's +1 / -lambda / 0."""
    if cfg.objective in ("grpo", "grpo-no-kl"):
        return group_advantages(rewards, cfg.group_size, scale=cfg.advantage_scale)
    return signed_weights(
        correct, cfg.group_size,
        positive=0.0 if cfg.objective == "sft-" else 1.0,
        negative=0.0 if cfg.objective == "sft+" else cfg.neg_weight,
        sized=cfg.sized_weights, balance=cfg.balance, rewards=rewards,
    )


def objective_loss(cfg, logprobs, old_logprobs, weights, mask, ref_logprobs=None, **norm):
    """Scalar loss: GRPO's clipped ratio (+ KL), or signed SFT's weighted negative log-likelihood."""
    if cfg.objective in ("grpo", "grpo-no-kl"):
        return grpo_loss(
            logprobs, old_logprobs, weights, mask, epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high,
            beta=cfg.kl_beta, ref_logprobs=ref_logprobs, aggregation=cfg.aggregation, **norm,
        )
    return signed_sft_loss(logprobs, weights, mask, aggregation=cfg.aggregation, **norm)


# --------------------------------------------------------------------------------------------
# helpers: data order, precision, reference policy, checkpoints
# --------------------------------------------------------------------------------------------

def _example_indices(n: int, seed: int, start: int, count: int) -> list[int]:
    """Positions start..start+count of an endless stream that reshuffles the n examples each
    epoch. A pure function of (seed, position): resuming only needs the position."""
    out, perms = [], {}
    for p in range(start, start + count):
        epoch = p // n
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(int(perms[epoch][p % n]))
    return out


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7919 + 17) % (2**31)


def _amp(cfg: TrainConfig, device: torch.device):
    """(autocast context factory, GradScaler or None)."""
    prec = cfg.precision
    if device.type != "cuda":
        if prec in ("fp16", "bf16"):
            raise ValueError(f"TrainConfig.precision={prec!r} needs a CUDA GPU; use 'auto' or 'fp32' on CPU")
        return contextlib.nullcontext, None
    if prec == "auto":
        prec = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if prec == "fp32":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if prec == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if prec == "fp16" else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


class _Reference:
    """Context manager factory under which a model computes pi_ref: ``models.reference_policy``
    (LoRA adapters off, or the micro model's snapshot of its initial weights swapped in)."""

    def __init__(self, model):
        from course_lib.models import has_reference, snapshot_reference

        self.model = model
        if not has_reference(model):
            snapshot_reference(model)  # a model not loaded by load_policy: freeze it now

    def __call__(self):
        from course_lib.models import reference_policy

        @contextlib.contextmanager
        def ctx():
            with reference_policy(self.model):
                yield self.model

        return ctx()


def _rng_state() -> dict:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def _trainable(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _save_checkpoint(run_dir: Path, state: dict) -> None:
    tmp = run_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, run_dir / CHECKPOINT)  # atomic: a kill mid-save keeps the previous file


def _clean(d: dict) -> dict:
    """JSON-safe: NaN/inf -> None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(_clean(r)) + "\n")


def _mean(xs) -> float | None:
    xs = list(xs)
    return float(sum(xs) / len(xs)) if xs else None


# --------------------------------------------------------------------------------------------
# one update on one rollout
# --------------------------------------------------------------------------------------------

def _update(cfg, model, optimizer, scaler, autocast, reference, roll: Rollout, weights, params):
    """mu optimizer steps on one rollout. Returns metrics and whether the update was finite."""
    B = roll.completion_ids.shape[0]
    mask = roll.completion_mask
    beta = cfg.kl_beta
    has_tokens = mask.sum(dim=1) > 0
    active = has_tokens if beta > 0 else has_tokens & (weights != 0)
    rows = active.nonzero().flatten()
    # shortest completions first: each micro-batch then holds similar lengths and runs a short,
    # little-padded forward/backward (Rollout.select trims the padding columns)
    rows = rows[torch.argsort(roll.lengths[rows], stable=True)]
    norm = {"num_sequences": B, "num_tokens": int(mask.sum()), "max_length": cfg.max_new_tokens}
    mb = cfg.micro_batch_size
    batches = [rows[i : i + mb] for i in range(0, len(rows), mb)]
    stats = {"loss": 0.0, "grad_norm": 0.0, "clip_frac": None, "kl": None, "entropy": None,
             "n_backward": len(rows), "finite": True}
    if not batches:
        return stats
    device = next(model.parameters()).device
    parts = [roll.select(b) for b in batches]
    w_parts = [weights[b].to(device) for b in batches]

    old, ref = [None] * len(parts), [None] * len(parts)
    with torch.no_grad(), autocast():
        for i, p in enumerate(parts):
            if cfg.mu > 1:
                old[i] = completion_logprobs(model, p.prompt_ids, p.prompt_mask, p.completion_ids,
                                             p.completion_mask, chunk_size=cfg.logprob_chunk)[0]
            if beta > 0:
                with reference() as ref_model:
                    ref[i] = completion_logprobs(ref_model, p.prompt_ids, p.prompt_mask, p.completion_ids,
                                                 p.completion_mask, chunk_size=cfg.logprob_chunk)[0]

    for inner in range(cfg.mu):
        optimizer.zero_grad(set_to_none=True)
        loss_sum, clip_n, kl_sum, ent_sum, tok_n = 0.0, 0.0, 0.0, 0.0, 0
        for i, p in enumerate(parts):
            m = p.completion_mask.to(device)
            with autocast():
                lp, ent = completion_logprobs(model, p.prompt_ids, p.prompt_mask, p.completion_ids,
                                              p.completion_mask, chunk_size=cfg.logprob_chunk,
                                              with_entropy=inner == 0)
            o = old[i] if old[i] is not None else lp.detach()
            loss = objective_loss(cfg, lp, o, w_parts[i], m, ref[i], **norm)
            (scaler.scale(loss) if scaler else loss).backward()
            n = int(m.sum())
            loss_sum += float(loss.detach())
            tok_n += n
            clip_n += clip_fraction(lp.detach(), o, w_parts[i], m, epsilon=cfg.epsilon,
                                    epsilon_high=cfg.epsilon_high) * n
            if ent is not None:
                ent_sum += float((ent * m).sum())
            if ref[i] is not None:
                kl_sum += float((kl_k3(lp.detach(), ref[i]) * m).sum())
        if scaler:
            scaler.unscale_(optimizer)
        gn = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        gn = float(gn)
        if inner == 0:
            stats.update(loss=loss_sum, grad_norm=gn, clip_frac=clip_n / max(tok_n, 1),
                         entropy=ent_sum / max(tok_n, 1), kl=kl_sum / max(tok_n, 1) if beta > 0 else None)
        else:
            stats["clip_frac"] = max(stats["clip_frac"], clip_n / max(tok_n, 1))
        if not (math.isfinite(loss_sum) and math.isfinite(gn)):
            optimizer.zero_grad(set_to_none=True)
            if scaler:
                scaler.update()
            stats["finite"] = False
            return stats
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return stats


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------

def train(
    config: TrainConfig,
    *,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    model=None,
    tokenizer=None,
    task=None,
    callback: Callable[[dict, list[dict]], object] | None = None,
    progress: bool = True,
) -> RunResult:
    """Run the on-policy loop for ``config.steps`` steps.

    Args:
        config: a :class:`TrainConfig`.
        run_dir: where metrics.jsonl, eval.jsonl, config.json and checkpoint.pt go (None = keep
            nothing on disk; no checkpoints).
        resume: continue from ``run_dir/checkpoint.pt`` if it exists (same config; ``steps``
            may be larger than before).
        model, tokenizer: the policy (default: ``course_lib.models.load_policy(profile)``).
        task: a Task (default: ``course_lib.tasks.get_task(config.task)``).
        callback: called after every step as ``callback(metrics, history)`` (live plots).
            Returning ``False`` stops the run (with a checkpoint).
        progress: show a tqdm progress bar.

    Returns:
        :class:`RunResult`. KeyboardInterrupt is caught: a checkpoint is written and the result
        comes back with ``interrupted=True`` (resume with ``resume=True``).

    Example::

        cfg = TrainConfig(objective="sft+-", steps=20, balance=True)
        res = train(cfg, run_dir="runs/sft")
        res.history[-1]["accuracy"], res.evals[-1]["accuracy"]
    """
    cfg = config
    cfg.validate()
    if model is None or tokenizer is None:
        from course_lib.models import get_profile, load_policy

        model, tokenizer = load_policy(get_profile(cfg.profile))
    if task is None:
        from course_lib.tasks import get_task

        task = get_task(cfg.task)
    task = _chat_wrapped(task, tokenizer, cfg.profile)
    device = next(model.parameters()).device
    autocast, scaler = _amp(cfg, device)
    reference = _Reference(model) if cfg.kl_beta > 0 else None
    params = list(_trainable(model).values())
    if not params:
        raise ValueError("the model has no trainable parameters (requires_grad=False everywhere)")
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = cfg.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warm) if warm > 0 else 1.0
    )
    train_examples = task.load("train")
    eval_examples = task.load("test", n=cfg.eval_examples) if cfg.eval_examples else []
    if not train_examples:
        raise ValueError(f"task {getattr(task, 'name', task)!r} has no training examples")

    out = Path(run_dir) if run_dir is not None else None
    history: list[dict] = []
    evals: list[dict] = []
    step, position, nonfinite, skipped = 0, 0, 0, 0
    guard = {"zero_streak": 0, "start_norms": []}
    ckpt_path = out / CHECKPOINT if out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    if resume and ckpt_path is not None and ckpt_path.exists():
        st = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # our own file
        trainable = _trainable(model)
        missing = set(trainable) ^ set(st["trainable"])
        if missing:
            raise ValueError(f"checkpoint does not match the model's trainable parameters: {sorted(missing)[:5]}")
        with torch.no_grad():
            for n, p in trainable.items():
                p.copy_(st["trainable"][n].to(p.device, p.dtype))
        optimizer.load_state_dict(st["optimizer"])
        scheduler.load_state_dict(st["scheduler"])
        if scaler is not None and st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        _set_rng_state(st["rng"])
        step, position, history, evals = st["step"], st["position"], st["history"], st["evals"]
        guard, skipped = st["guard"], st["skipped"]
        if st["config"].get("objective") != cfg.objective:
            raise ValueError(
                f"checkpoint in {out} was written by objective {st['config'].get('objective')!r}, "
                f"not {cfg.objective!r}; use another run directory or the same objective"
            )
    if out:
        with open(out / "config.json", "w") as f:
            json.dump(asdict(cfg), f, indent=2)
        _write_jsonl(out / "metrics.jsonl", history)
        _write_jsonl(out / "eval.jsonl", evals)

    def state() -> dict:
        return {
            "format": 1, "config": asdict(cfg), "step": step, "position": position,
            "trainable": {n: p.detach().cpu().clone() for n, p in _trainable(model).items()},
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": _rng_state(), "history": history, "evals": evals, "guard": guard, "skipped": skipped,
        }

    def run_eval():
        if not eval_examples:
            return
        was = model.training
        res = evaluate(model, tokenizer, task, eval_examples, samples=cfg.eval_samples,
                       greedy=cfg.eval_greedy, max_new_tokens=cfg.max_new_tokens,
                       temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed + 1234)
        model.train(was)
        row = {"step": step, **res}
        evals.append(row)
        if out:
            with open(out / "eval.jsonl", "a") as f:
                f.write(json.dumps(_clean(row)) + "\n")

    from tqdm.auto import tqdm

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc=cfg.objective)
    stopped, interrupted = None, False
    P, G = cfg.prompts_per_step, cfg.group_size
    model.train()
    try:
        if step == 0 and not evals:
            run_eval()
        while step < cfg.steps:
            torch.manual_seed(_step_seed(cfg.seed, step))
            idx = _example_indices(len(train_examples), cfg.seed, position, P)
            examples = [train_examples[i] for i in idx]
            t0, c0 = time.perf_counter(), time.process_time()
            roll = generate_rollouts(model, tokenizer, [task.prompt(e) for e in examples], G,
                                     max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                     top_p=cfg.top_p, micro_batch_size=cfg.gen_batch_size)
            t1 = time.perf_counter()
            scores = [task.score(t, e) for t, e in zip(roll.texts, (e for e in examples for _ in range(G)))]
            rewards = torch.tensor([float(s.reward) for s in scores], dtype=torch.float32)
            correct = torch.tensor([bool(s.correct) for s in scores])
            t2 = time.perf_counter()
            weights = completion_weights(cfg, rewards, correct)
            st = _update(cfg, model, optimizer, scaler, autocast, reference, roll, weights, params)
            t3, c3 = time.perf_counter(), time.process_time()
            lengths = roll.lengths.tolist()
            groups = rewards.reshape(-1, G)
            lr = scheduler.get_last_lr()[0]
            with warnings.catch_warnings():  # a skipped update makes torch warn about the order
                warnings.simplefilter("ignore", UserWarning)
                scheduler.step()
            metrics = {
                "step": step + 1,
                "reward_mean": float(rewards.mean()),
                "accuracy": float(correct.float().mean()),
                "well_formed": _mean(float(s.well_formed) for s in scores),
                "len_mean": _mean(lengths),
                "len_correct": _mean(n for n, c in zip(lengths, correct.tolist()) if c),
                "len_incorrect": _mean(n for n, c in zip(lengths, correct.tolist()) if not c),
                "truncated": float(roll.truncated.float().mean()),
                "zero_var_groups": float((groups == groups[:, :1]).all(dim=1).float().mean()),
                "weight_pos": float(weights.clamp(min=0).sum()), "weight_neg": float(weights.clamp(max=0).sum()),
                "loss": st["loss"], "grad_norm": st["grad_norm"], "clip_frac": st["clip_frac"],
                "kl": st["kl"], "entropy": st["entropy"], "n_backward": st["n_backward"], "lr": lr,
                "skipped": not st["finite"],
                "seconds_gen": t1 - t0, "seconds_score": t2 - t1, "seconds_train": t3 - t2,
                "cpu_seconds": c3 - c0,  # process CPU time of the step (all threads): honest on a busy machine
            }
            step += 1
            position += P
            if st["finite"]:
                nonfinite = 0
            else:
                nonfinite += 1
                skipped += 1
                if nonfinite >= cfg.max_nonfinite:
                    raise FloatingPointError(
                        f"{nonfinite} updates in a row had a non-finite loss or gradient (step {step}); "
                        "lower learning_rate, use precision='fp32' or check the data"
                    )
            history.append(metrics)
            if out:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(_clean(metrics)) + "\n")
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                run_eval()
            if out and cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                _save_checkpoint(out, state())
            bar.update(1)
            bar.set_postfix(acc=f"{metrics['accuracy']:.2f}", len=f"{metrics['len_mean']:.0f}")
            if cfg.guard:
                stopped = _guard(guard, metrics)
            if callback is not None and callback(metrics, history) is False:
                stopped = stopped or "callback"
            if stopped:
                break
        run_eval()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    if out:
        _save_checkpoint(out, state())
    if interrupted:
        print(f"interrupted after step {step}; checkpoint saved"
              + (f" in {out}: rerun with resume=True (--resume)" if out else " nowhere (no run_dir)"),
              file=sys.stderr)
    return RunResult(cfg, history, evals, model, tokenizer, str(out) if out else None, stopped,
                     interrupted, skipped)


class _ChatTask:
    """A task whose prompts go through the tokenizer's chat template (instruct profiles)."""

    def __init__(self, task, tokenizer, profile):
        from course_lib.models import format_prompt

        self.name, self.load, self.score = task.name, task.load, task.score
        self.prompt = lambda ex: format_prompt(tokenizer, profile, task.prompt(ex))


def _chat_wrapped(task, tokenizer, profile_name: str):
    from course_lib.models import PROFILES

    prof = PROFILES.get(profile_name)
    return _ChatTask(task, tokenizer, prof) if prof is not None and prof.chat_template else task


def _guard(g: dict, m: dict) -> str | None:
    """The prototype's safety net: a run whose reward is 0 for 10 steps, or whose gradient norm
    exceeds 3x its starting value (mean of the first 3 non-zero norms), is stopped."""
    g["zero_streak"] = g["zero_streak"] + 1 if m["reward_mean"] == 0 else 0
    if g["zero_streak"] >= 10:
        return "reward 0 for 10 steps in a row"
    if m["grad_norm"] and math.isfinite(m["grad_norm"]):
        if len(g["start_norms"]) < 3:
            g["start_norms"].append(m["grad_norm"])
        elif m["grad_norm"] > 3 * (sum(g["start_norms"]) / 3):
            return f"gradient norm {m['grad_norm']:.2f} > 3x its start {sum(g['start_norms']) / 3:.2f}"
    return None


def load_run(run_dir, *, base: bool = False):
    """(config, model, tokenizer, task) of a run directory, with the checkpoint's trainable
    weights loaded (``base=True``: the untouched base model)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.exists():
        raise FileNotFoundError(f"{cfg_path} not found: is {run_dir} a directory written by `train`?")
    cfg = TrainConfig(**json.loads(cfg_path.read_text()))
    from course_lib.models import get_profile, load_policy
    from course_lib.tasks import get_task

    model, tok = load_policy(get_profile(cfg.profile))
    if not base:
        ck = run_dir / CHECKPOINT
        if not ck.exists():
            raise FileNotFoundError(f"{ck} not found: the run wrote no checkpoint yet")
        st = torch.load(ck, map_location="cpu", weights_only=False)
        params = dict(model.named_parameters())
        with torch.no_grad():
            for n, v in st["trainable"].items():
                params[n].copy_(v.to(params[n].device, params[n].dtype))
    return cfg, model, tok, get_task(cfg.task)


def _arg_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m course_lib train",
        description="One on-policy run (GRPO or signed SFT). Unset options come from the profile.",
    )
    ap.add_argument("--run-dir", required=True, help="metrics.jsonl, eval.jsonl and checkpoint.pt go here")
    ap.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's choice; 1 is faster on a busy machine)")
    types = {"beta": float, "epsilon_high": float, "gen_batch_size": int}
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            typ = types.get(f.name, type(f.default) if f.default is not None else str)
            choices = {"objective": OBJECTIVES, "aggregation": AGGREGATIONS,
                       "advantage_scale": ADVANTAGE_SCALES, "precision": PRECISIONS}.get(f.name)
            ap.add_argument(flag, type=typ, default=None, choices=choices)
    return ap


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib train --profile micro --task countdown-micro --objective grpo ...``"""
    args = vars(_arg_parser().parse_args(argv))
    run_dir, resume, quiet = args.pop("run_dir"), args.pop("resume"), args.pop("no_progress")
    threads = args.pop("threads")
    if threads:
        torch.set_num_threads(threads)
    profile = args.pop("profile") or "micro"
    try:
        cfg = TrainConfig.from_profile(profile, **args)
    except ValueError as e:
        print(f"error: {e}")
        return 2
    res = train(cfg, run_dir=run_dir, resume=resume, progress=not quiet)
    last = res.evals[-1] if res.evals else {}
    print(json.dumps({"steps": len(res.history), "stopped": res.stopped, "interrupted": res.interrupted,
                      "final_eval": _clean(last)}, indent=2))
    return 130 if res.interrupted else 0
