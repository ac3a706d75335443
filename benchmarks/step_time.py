"""Where one training step's time goes, by phase, at the settings of the shipped runs.

    OMP_NUM_THREADS=2 python benchmarks/step_time.py --profile smollm2-135m --precision bf16 --threads 1 2
    OMP_NUM_THREADS=2 python benchmarks/step_time.py --profile micro --threads 1 2
    OMP_NUM_THREADS=1 python benchmarks/step_time.py --profile smollm2-135m --task word-problems --precision bf16 \
        --threads 1 --steps 2 --max-new-tokens 128 --eval-samples 4
    OMP_NUM_THREADS=1 python benchmarks/step_time.py --profile smollm2-135m --task arith --precision bf16 \
        --threads 1 --steps 2 --max-new-tokens 128 --micro-batch-size 32 8   # one padded batch vs length-sorted 8s

Runs ``trainer.train`` on the profile's default budget (``--task``, ``--objective``) for
``--steps`` steps after one warm-up step, with no held-out evaluation, and prints, per thread
count, the median seconds per step of each phase:

- ``sample``: ``generate_rollouts`` (KV-cached decoding of prompts_per_step x G completions);
- ``score``: the verifier and the weights;
- ``no_grad_lp``: every log-prob forward without gradient (the reference policy for the KL term,
  the old policy when mu > 1);
- ``forward``: the update's forward passes with gradient; ``backward``: their backward passes;
- ``optimizer``: gradient clipping excluded, the optimizer's step;
- ``other``: the rest of the step (micro-batch selection, metrics, parameter checks);
- ``step``: the whole step.

The machine may be shared: the script reports process CPU seconds per step too, and the
numbers are only comparable when before/after runs alternate back-to-back.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import time
from collections import defaultdict

import torch

from course_lib import models, trainer
from course_lib.trainer import TrainConfig, train

PHASES = ("sample", "score", "no_grad_lp", "forward", "backward", "optimizer", "other", "step", "cpu")


def _timed(clock: dict, fn, name_of):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock[name_of()] += time.perf_counter() - t
    return wrapper


def measure(cfg: TrainConfig, model, tokenizer, steps: int) -> dict[str, float]:
    """Median seconds per step of each phase over ``steps`` steps (after one warm-up step)."""
    clock, rows = defaultdict(float), []
    lp_name = lambda: "forward" if torch.is_grad_enabled() else "no_grad_lp"  # noqa: E731
    patches = {(trainer, "generate_rollouts"): lambda: "sample", (trainer, "completion_logprobs"): lp_name,
               (torch.autograd, "backward"): lambda: "backward"}
    saved = {key: getattr(*key) for key in patches}
    for (mod, name), name_of in patches.items():
        setattr(mod, name, _timed(clock, saved[(mod, name)], name_of))
    step_opt = torch.optim.AdamW.step

    def callback(m, history):
        row = {k: clock.pop(k, 0.0) for k in ("sample", "no_grad_lp", "forward", "backward", "optimizer")}
        row["score"] = m["seconds_score"]
        row["step"] = m["seconds_gen"] + m["seconds_score"] + m["seconds_train"]
        row["other"] = row["step"] - sum(row[k] for k in ("sample", "score", "no_grad_lp", "forward", "backward",
                                                          "optimizer"))
        row["cpu"] = m["cpu_seconds"]
        rows.append(row)
        clock.clear()

    torch.optim.AdamW.step = _timed(clock, step_opt, lambda: "optimizer")
    try:
        train(cfg, model=model, tokenizer=tokenizer, callback=callback, progress=False)
    finally:
        torch.optim.AdamW.step = step_opt
        for (mod, name), fn in saved.items():
            setattr(mod, name, fn)
    rows = rows[1:]  # the first step warms caches and allocators
    return {k: statistics.median(r[k] for r in rows) for k in PHASES}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smollm2-135m")
    ap.add_argument("--task", default=None, help="default: the profile's first task")
    ap.add_argument("--objective", default="grpo")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=4, help="measured steps (after one warm-up step)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: the budget's cap")
    ap.add_argument("--micro-batch-size", type=int, nargs="+", default=None,
                    help="completions per forward/backward (default: the budget's); several: each in turn, same weights")
    ap.add_argument("--eval-samples", type=int, default=0,
                    help="also time one held-out evaluation of every test problem x this many samples")
    args = ap.parse_args(argv)
    if args.steps < 1 or min(args.threads) < 1 or min(args.micro_batch_size or [1]) < 1:
        print("step_time: --steps, --threads and --micro-batch-size must be >= 1", file=sys.stderr)
        return 2
    cap = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    cfg = TrainConfig.from_profile(args.profile, objective=args.objective, task=args.task, precision=args.precision,
                                   steps=args.steps + 1, seed=args.seed, eval_examples=0, checkpoint_every=0, **cap)
    torch.manual_seed(args.seed)
    t = time.perf_counter()
    model, tokenizer = models.load_policy(cfg.profile, precision=cfg.precision)
    print(f"{cfg.profile} on {cfg.task}, {cfg.objective}, {cfg.prompts_per_step} prompts x G={cfg.group_size}, "
          f"{cfg.max_new_tokens} new tokens, precision {cfg.precision}, mu {cfg.mu}; loaded in "
          f"{time.perf_counter() - t:.1f} s; median of {args.steps} steps, seconds")
    print(f"{'threads':>8} {'micro':>6} " + " ".join(f"{p:>10}" for p in PHASES))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    for n, mb in itertools.product(args.threads, args.micro_batch_size or [cfg.micro_batch_size]):
        torch.set_num_threads(n)
        model.load_state_dict(initial)  # every row starts from the same weights (and samples the same first rollout)
        run = dataclasses.replace(cfg, micro_batch_size=mb)
        res = measure(run, model, tokenizer, args.steps)
        print(f"{n:>8} {run.micro_batch_size:>6} " + " ".join(f"{res[p]:>10.3f}" for p in PHASES), flush=True)
        if args.eval_samples:
            from course_lib.evaluate import evaluate_as_trained
            from course_lib.tasks import get_task

            task = get_task(cfg.task)
            test, t = task.load("test"), time.perf_counter()
            evaluate_as_trained(model, tokenizer, task, cfg, test, samples=args.eval_samples, greedy=False, seed=0)
            print(f"{'':>8} one held-out evaluation, {len(test)} problems x {args.eval_samples} samples: "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
