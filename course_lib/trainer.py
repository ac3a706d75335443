"""The one on-policy loop. Every objective of the course runs through the same :func:`train`::

    for step in range(steps):
        examples = the next prompts_per_step training problems        (data position is saved)
        rollout  = generate_rollouts(model, prompts, G)                (sample)
        scores   = task.score(text, example) for each completion       (verify)
        w        = objectives.weights(objective, rewards, correct, G)  (GRPO: advantages; SFT: +1/-1/0)
        update(...): objectives.loss per micro-batch, backward, clip, optimizer   (update)
        log; maybe evaluate; maybe checkpoint (only ever at a step boundary)

The objectives differ only in their row of ``course_lib.objectives.OBJECTIVES``; nothing here
branches on an objective's name.

What is simplified, and why:

- The learning rate is a linear warm-up then constant (the paper's short runs need no decay).
- Completions whose weight is 0 (a GRPO group that is all right or all wrong; a sample the
  objective ignores) skip the training forward/backward when no KL term applies: they add
  exactly nothing to the gradient. The loss normalisers still count the whole batch, so the
  loss equals the full-batch loss. This is most of the speed.
- The log-probabilities are those of the sampling distribution: logits / temperature (as TRL
  and verl do), so the samples are on-policy for the loss at any temperature.
- Each step reseeds torch from (seed, step) and the data order is a pure function of
  (seed, position), so a resumed run samples exactly what the uninterrupted run sampled.
- Half precision: autocast in the compute dtype; float16 adds ``GradScaler`` (T4 GPUs have no
  bfloat16). A GradScaler overflow skips that update, as ``GradScaler`` always does.

The run directory (its files, checkpoints, resume rules, Ctrl-C) is ``course_lib.runs``; the
held-out evaluation is ``course_lib.evaluate.evaluate_as_trained``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from course_lib import models, objectives, runs
from course_lib.evaluate import evaluate_as_trained, judge
from course_lib.models import autocast
from course_lib.objectives import OBJECTIVES, get_objective, loss, weights
from course_lib.rollout import Rollout, completion_logprobs, generate_rollouts
from course_lib.tasks import TASK_NAMES, get_task

MAX_NONFINITE = 5  # non-finite updates in a row (each skipped) before the run stops
LOGPROB_CHUNK = 256  # positions per output-layer chunk (course_lib.rollout)
OPTIMIZERS = {"adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.0),
              "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr)}


@dataclass
class TrainConfig:
    """Every setting of one run, defined and validated here only. Build it from a profile's
    budget with ``TrainConfig.from_profile("micro", objective="sft+-")``."""

    objective: str = "grpo"          # a name in course_lib.objectives.OBJECTIVES
    task: str = "countdown-micro"    # a name in course_lib.tasks.TASK_NAMES
    profile: str = "micro"           # a name in course_lib.models.PROFILES: the model to load
    steps: int = 50                  # training steps, one rollout each
    seed: int = 0
    # sampling
    prompts_per_step: int = 16       # problems per step (the paper: 64)
    group_size: int = 8              # G completions per problem (the paper: 5)
    max_new_tokens: int = 64         # completion cap; longer answers are truncated (the paper: 1,024)
    truncated: str = "scored"        # a completion cut at the cap: "scored" by the verifier, or "wrong" (reward 0)
    temperature: float = 1.0         # sampling temperature, also applied to the training log-probs (the paper: 0.6)
    top_p: float = 1.0               # nucleus sampling (1 = off; the paper: not reported)
    # optimisation
    learning_rate: float = 1e-4      # the paper: 1e-6 on full 0.5B-1.5B models
    optimizer: str = "adamw"         # "adamw" (no weight decay) or "sgd" (plain: no momentum, the step is lr x gradient)
    warmup_steps: int = 0            # linear warm-up, then constant
    grad_clip: float = 1.0           # max gradient norm (0 = no clipping)
    micro_batch_size: int = 16       # completions per forward/backward (memory knob; same maths)
    mu: int = 1                      # updates per rollout; > 1 makes the PPO ratio and clip matter
    precision: str = "auto"          # auto (bf16/fp16 on CUDA, fp32 on CPU), fp32, fp16, bf16
    # objective
    beta: float = 0.001              # KL weight, used by objectives with kl=True (the paper's rebuttal runs)
    epsilon: float = 0.2             # PPO clip: ratio kept in [1 - epsilon, 1 + epsilon]
    aggregation: str = "sequence"    # "sequence" (GRPO's 1/|o_i|), "token" (DAPO), "constant" (Dr. GRPO's normaliser)
    # evaluation and checkpoints
    eval_every: int = 25             # held-out evaluation every N steps (0 = only at start and end)
    eval_examples: int = 100         # held-out problems
    eval_samples: int = 4            # sampled completions per held-out problem
    checkpoint_every: int = 10       # steps between checkpoints (0 = only at the end and on Ctrl-C)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and what it allows."""
        def _num(v) -> bool:  # a finite number, not a bool
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        def _int(v, low: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        checks = [
            ("objective", self.objective in OBJECTIVES, ", ".join(OBJECTIVES)),
            ("task", self.task in TASK_NAMES, ", ".join(TASK_NAMES)),
            ("profile", self.profile in models.PROFILES, ", ".join(models.PROFILES)),
            ("aggregation", self.aggregation in objectives.AGGREGATIONS, ", ".join(objectives.AGGREGATIONS)),
            ("precision", self.precision in models.PRECISIONS, ", ".join(models.PRECISIONS)),
            ("optimizer", self.optimizer in OPTIMIZERS, ", ".join(OPTIMIZERS)),
            ("truncated", self.truncated in ("scored", "wrong"), "scored, wrong"),
            ("group_size", _int(self.group_size, 2), "an integer >= 2 (groups compare samples of one problem)"),
        ]
        checks += [(n, _int(getattr(self, n), 1), "an integer >= 1")
                   for n in ("prompts_per_step", "max_new_tokens", "micro_batch_size", "mu")]
        checks += [(n, _int(getattr(self, n), 0), "an integer >= 0")
                   for n in ("steps", "seed", "warmup_steps", "eval_every", "eval_examples",
                             "eval_samples", "checkpoint_every")]
        checks += [
            ("temperature", _num(self.temperature) and self.temperature > 0, "a finite number > 0"),
            ("top_p", _num(self.top_p) and 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("learning_rate", _num(self.learning_rate) and self.learning_rate > 0, "a finite number > 0"),
            ("grad_clip", _num(self.grad_clip) and self.grad_clip >= 0, "a finite number >= 0"),
            ("beta", _num(self.beta) and self.beta >= 0, "a finite number >= 0"),
            ("epsilon", _num(self.epsilon) and 0 < self.epsilon < 1, "a number in (0, 1)"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} is invalid; allowed: {allowed}")

    @classmethod
    def from_profile(cls, profile: str = "micro", budget: str = "default", **overrides) -> TrainConfig:
        """The profile's budget, its first task, then ``overrides`` (None values are ignored)."""
        prof = models.get_profile(profile)
        if budget not in prof.budgets:
            raise ValueError(f"profile {prof.name!r} has no budget {budget!r}; it has: {', '.join(prof.budgets)}")
        values = {"profile": prof.name, "task": prof.tasks[0], **prof.budgets[budget],
                  **{k: v for k, v in overrides.items() if v is not None}}
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {sorted(unknown)}")
        return cls(**values)


@dataclass
class RunResult:
    """What ``train`` returns. ``history``: one dict per step (also RUN_DIR/metrics.jsonl);
    ``evals``: held-out evaluations, each with the step it followed (0 = before training)."""

    history: list[dict]
    evals: list[dict]
    model: object = None
    stopped: str | None = None       # why the run stopped early ("callback"), else None
    interrupted: bool = False        # Ctrl-C: stopped at a step boundary (checkpointed when run_dir is set)
    skipped_updates: int = 0


# -------------------------------------------------------------------------------- one update


def update(cfg: TrainConfig, objective, model, optimizer, scaler, roll: Rollout, w: torch.Tensor, *,
           reference=None, dtype=torch.float32) -> dict:
    """``cfg.mu`` optimizer steps on one rollout, in micro-batches of ``cfg.micro_batch_size``.

    Args: objective: a row of ``OBJECTIVES``. roll: B = P * G completions. w: (B,) weights.
        reference: a context manager factory under which ``model`` is pi_ref (KL rows only).
        dtype: the compute dtype (autocast when it is not float32).
    Returns: ``loss``, ``grad_norm``, ``clip_frac``, ``kl`` (token means of the first pass),
        ``n_backward`` (completions through backward) and ``finite`` (False: the
        update was skipped because the loss or gradient was not finite).
    """
    mask, beta = roll.completion_mask, cfg.beta if objective.kl else 0.0
    rows = ((mask.sum(dim=1) > 0) & ((w != 0) | (beta > 0))).nonzero().flatten()  # the rest add nothing
    rows = rows[torch.argsort(roll.lengths[rows], stable=True)]  # similar lengths share a micro-batch
    norm = {"num_sequences": mask.shape[0], "num_tokens": int(mask.sum()), "max_length": cfg.max_new_tokens}
    stats = {"loss": 0.0, "grad_norm": 0.0, "clip_frac": None, "kl": None, "n_backward": len(rows), "finite": True}
    device = next(model.parameters()).device
    parts = [(roll.select(b), w[b].to(device)) for b in rows.split(cfg.micro_batch_size) if len(b)]  # none: no row
    lp_of = lambda m, p: completion_logprobs(  # noqa: E731
        m, p.prompt_ids, p.prompt_mask, p.completion_ids, p.completion_mask, chunk_size=LOGPROB_CHUNK,
        temperature=cfg.temperature)
    with torch.no_grad(), autocast(model, dtype):
        old = [lp_of(model, p) if cfg.mu > 1 else None for p, _ in parts]
        with reference() if beta > 0 else contextlib.nullcontext():
            ref = [lp_of(model, p) if beta > 0 else None for p, _ in parts]
    params = models.trainable_parameters(model)
    for inner in range(cfg.mu):
        optimizer.zero_grad(set_to_none=True)
        total, cut, kl_sum, tokens = 0.0, 0.0, 0.0, 0
        for (p, wp), o, r in zip(parts, old, ref):
            m = p.completion_mask.to(device)
            with autocast(model, dtype):
                lp = lp_of(model, p)
            o = lp.detach() if o is None else o
            value = loss(objective, lp, o, wp, m, beta=beta, ref_logprobs=r, epsilon=cfg.epsilon,
                         aggregation=cfg.aggregation, **norm)
            scaler.scale(value).backward()
            n = int(m.sum())
            total, tokens = total + float(value.detach()), tokens + n
            cut += objectives.clipped(objective, lp.detach(), o, wp, m, epsilon=cfg.epsilon) * n
            kl_sum += float((objectives.kl_k3(lp.detach(), r) * m).sum()) if r is not None else 0.0
        scaler.unscale_(optimizer)
        gn = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or float("inf")))
        t = max(tokens, 1)
        if inner == 0:
            stats.update(loss=total, grad_norm=gn, clip_frac=cut / t, kl=kl_sum / t if beta > 0 else None)
        stats["clip_frac"] = max(stats["clip_frac"] or 0.0, cut / t)
        if not math.isfinite(total) or (not math.isfinite(gn) and not scaler.is_enabled()):
            optimizer.zero_grad(set_to_none=True)
            stats["finite"] = False
            if scaler.is_enabled():  # close unscale_() -> update(): the scale shrinks, the next step can unscale
                scaler.update()
            return stats
        scaler.step(optimizer)  # with float16: skipped on overflow, and the scale shrinks
        scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return stats


# ---------------------------------------------------------------------------------- the loop


def train(config: TrainConfig, *, run_dir: str | os.PathLike | None = None, resume: bool | str = False,
          overwrite: bool = False, model=None, tokenizer=None, task=None, first_eval: dict | None = None,
          callback: Callable[[dict, list[dict]], object] | None = None, progress: bool = True) -> RunResult:
    """Run the on-policy loop for ``config.steps`` steps.

    Args:
        run_dir: where the record goes (None: nothing on disk). resume: continue the run there
            (same settings; ``steps`` may be larger; ``"auto"``: if there is one). overwrite:
            replace a run already there.
        model, tokenizer, task: default ``models.load_policy(profile)`` and ``get_task(task)``.
        callback: ``callback(metrics, history)`` after every step (live plots); ``False`` stops.
        first_eval: the step-0 held-out evaluation, if known (before any update: ``reproduce`` shares it).

    Returns: :class:`RunResult`. Ctrl-C finishes the current step, writes a checkpoint and
        returns with ``interrupted=True``; a second Ctrl-C stops at once and discards that step.
    Raises: RunDirError (``run_dir`` holds another run, nothing to resume, or cannot be written);
        FloatingPointError (updates stayed non-finite; the last finite state is checkpointed).
    """
    cfg, objective, task = config, get_objective(config.objective), task or get_task(config.task)
    cfg.validate()
    model, tokenizer, asked, reference, dtype = models.training_setup(  # "KL is on": decided here, once
        cfg.profile, cfg.precision, task, model=model, tokenizer=tokenizer, seed=cfg.seed, kl=objective.kl and cfg.beta > 0)
    optimizer = OPTIMIZERS[cfg.optimizer](models.trainable_parameters(model), cfg.learning_rate)
    scaler = torch.amp.GradScaler(next(model.parameters()).device.type, enabled=dtype == torch.float16)
    out, run = runs.open_run(run_dir, cfg, resume=resume, overwrite=overwrite, model=model, optimizer=optimizer,
                             scaler=scaler)
    if run.step >= cfg.steps and run.evals and run.evals[-1]["step"] == run.step:  # finished already
        return RunResult(run.history, run.evals, model, skipped_updates=run.skipped)
    pool, held_out = task.load("train"), task.load("test", n=cfg.eval_examples) if cfg.eval_examples else []
    evaluate = functools.partial(_evaluate, cfg, model, tokenizer, task, held_out, run, out)
    bar, start, error, stopped = tqdm(total=cfg.steps, initial=run.step, disable=not progress, desc=cfg.objective), \
        run.step, None, None
    try:
        with runs.interrupts() as stop:
            if not run.evals:
                evaluate(known=first_eval)
            while run.step < cfg.steps and not stop.requested and not stopped:
                m = _step(cfg, objective, model, tokenizer, asked, pool, optimizer, scaler, reference, dtype, run, out)
                if cfg.eval_every and run.step % cfg.eval_every == 0 and run.step < cfg.steps:
                    evaluate()
                if out is not None and cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
                    runs.save_state(out, cfg, run, model, optimizer, scaler)
                bar.update(1)
                if run.step == start + 1:
                    _say_estimate(cfg, m, start)
                if callback is not None and callback(m, run.history) is False:
                    stopped = "callback"
            if not stop.requested and run.evals[-1:] and run.evals[-1]["step"] != run.step:
                evaluate()
    except (KeyboardInterrupt, FloatingPointError) as err:
        error = err
    finally:
        bar.close()
    if out is not None and not run.dirty:  # only a state at a step boundary is ever saved
        runs.save_state(out, cfg, run, model, optimizer, scaler)
    if isinstance(error, FloatingPointError):
        raise error
    if stop.requested or error is not None:
        runs.say_interrupted(run, out)
    return RunResult(run.history, run.evals, model, stopped, stop.requested or error is not None, run.skipped)


def _step(cfg, objective, model, tokenizer, asked, pool, optimizer, scaler, reference, dtype, run, out) -> dict:
    """One step: sample, verify, weigh, update, record. Returns the step's metrics row."""
    t0, c0, G = time.perf_counter(), time.process_time(), cfg.group_size
    torch.manual_seed((cfg.seed * 1_000_003 + run.step * 7919 + 17) % (2**31))  # a pure function of (seed, step)
    examples = [pool[i] for i in _example_indices(len(pool), cfg.seed, run.position, cfg.prompts_per_step)]
    with autocast(model, dtype):
        roll = generate_rollouts(model, tokenizer, [asked.prompt(e) for e in examples], G,             # sample
                                 max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p)
    t1 = time.perf_counter()
    scores = [asked.score(t, e) for t, e in zip(roll.texts, (e for e in examples for _ in range(G)))]  # verify
    rewards, correct = map(torch.tensor, judge(scores, roll.truncated.tolist(), cfg.truncated == "wrong"))
    # the confidence control weighs by the sampler's own log-probs instead of the reward
    w = weights(objective, rewards, correct, G, logprobs=roll.logprobs, mask=roll.completion_mask)       # weigh
    t2 = time.perf_counter()
    for group in optimizer.param_groups:  # linear warm-up, then constant
        group["lr"] = cfg.learning_rate * (min(1.0, (run.step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0)
    run.dirty = True
    st = update(cfg, objective, model, optimizer, scaler, roll, w, reference=reference, dtype=dtype)  # update
    _check_parameters(model, run.step + 1)
    m = _metrics(run.step + 1, scores, rewards, correct, roll, w, st, optimizer, G,
                 (t0, t1, t2, time.perf_counter(), time.process_time() - c0))
    run.step, run.position = run.step + 1, run.position + cfg.prompts_per_step  # the only place the step moves
    run.history.append(m)
    run.skipped, run.streak, run.dirty = run.skipped + (not st["finite"]), 0 if st["finite"] else run.streak + 1, False
    if out is not None:
        runs.append_jsonl(out / "metrics.jsonl", m)
    if run.streak >= MAX_NONFINITE:
        raise FloatingPointError(
            f"{run.streak} updates in a row had a non-finite loss or gradient (step {run.step}); "
            "the last finite state is checkpointed: lower --learning-rate or use --precision fp32")
    return m


def _evaluate(cfg, model, tokenizer, task, held_out, run, out, known: dict | None = None) -> None:
    """The held-out evaluation (``known``: its result, measured before), recorded in ``run.evals`` (and eval.jsonl)."""
    if held_out:
        res = {k: v for k, v in known.items() if k != "step"} if known is not None else evaluate_as_trained(
            model, tokenizer, task, cfg, held_out, samples=cfg.eval_samples, greedy=False, seed=cfg.seed + 1234)
        model.train()
        run.evals.append({"step": run.step, **res})
        if out is not None:
            runs.append_jsonl(out / "eval.jsonl", run.evals[-1])


def _check_parameters(model, step: int) -> None:
    if not all(bool(torch.isfinite(p).all()) for p in models.trainable_parameters(model)):
        raise FloatingPointError(f"the parameters became non-finite in step {step}; the last checkpoint "
                                 "is the last finite state: lower --learning-rate or use --precision fp32")


def load_run(run_dir, *, base: bool = False):
    """``(config, model, tokenizer, task)`` of a run directory, with the newest usable
    checkpoint's weights loaded (``base=True``: the untouched base model). It lives here, not in
    ``runs``, because it builds a :class:`TrainConfig`."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise runs.RunDirError(f"{run_dir / 'config.json'} not found: is {run_dir} a directory written by `train`?")
    cfg = TrainConfig(**json.loads((run_dir / "config.json").read_text()))
    model, tok = models.load_policy(cfg.profile, precision=cfg.precision)
    if not base:
        runs.load_weights(model, runs.load_checkpoint(run_dir)["trainable"])
    return cfg, model, tok, get_task(cfg.task)


def _metrics(step, scores, rewards, correct, roll, w, st, optimizer, G, times) -> dict:
    t0, t1, t2, t3, cpu = times
    lengths, ok = roll.lengths.tolist(), correct.tolist()

    def _mean(xs) -> float | None:
        xs = list(xs)
        return float(sum(xs) / len(xs)) if xs else None

    groups = rewards.reshape(-1, G)
    return {
        "step": step, "reward_mean": float(rewards.mean()), "accuracy": float(correct.float().mean()),
        "well_formed": _mean(float(s.well_formed) for s in scores), "len_mean": _mean(lengths),
        "len_correct": _mean(n for n, c in zip(lengths, ok) if c),
        "len_incorrect": _mean(n for n, c in zip(lengths, ok) if not c),
        "truncated": float(roll.truncated.float().mean()),
        "zero_var_groups": float((groups == groups[:, :1]).all(dim=1).float().mean()),
        "correct_per_group": correct.reshape(-1, G).sum(dim=1).tolist(),
        "weight_pos": float(w.clamp(min=0).sum()), "weight_neg": float(w.clamp(max=0).sum()),
        "loss": st["loss"], "grad_norm": st["grad_norm"], "clip_frac": st["clip_frac"], "kl": st["kl"],
        "entropy": float(roll.entropy.sum() / roll.completion_mask.sum().clamp(min=1)), "n_backward": st["n_backward"], "lr": optimizer.param_groups[0]["lr"],
        "skipped": not st["finite"], "seconds_gen": t1 - t0, "seconds_score": t2 - t1,
        "seconds_train": t3 - t2, "cpu_seconds": cpu,  # process CPU time of the step: honest on a busy machine
    }


def _example_indices(n: int, seed: int, start: int, count: int) -> list[int]:
    """Positions start..start+count of an endless stream that reshuffles the n examples each
    epoch: a pure function of (seed, position), so resuming needs only the position."""
    out, perms = [], {}
    for p in range(start, start + count):
        epoch = p // n
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(int(perms[epoch][p % n]))
    return out


def _say_estimate(cfg: TrainConfig, first: dict, start: int, threshold_s: float = 300.0) -> None:
    """After the first step of a long run, one line: the measured step time and the estimate."""
    step_s = first["seconds_gen"] + first["seconds_score"] + first["seconds_train"]
    left = step_s * (cfg.steps - start - 1)
    if left > threshold_s:
        print(f"first step took {step_s:.1f} s: about {left / 60:.0f} min for the remaining "
              f"{cfg.steps - start - 1} steps, plus the evaluations", file=sys.stderr)


