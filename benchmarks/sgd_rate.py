"""The plain-SGD learning rate of the ``lr-sweep`` plan: SGD's first update as large as AdamW's.

    OMP_NUM_THREADS=1 python benchmarks/sgd_rate.py            # about a minute on one core

AdamW's first step is lr x m / (sqrt(v) + eps) = lr x g / |g| per weight: about lr x sqrt(number
of weights with a gradient), whatever the gradient's size. Plain SGD's is lr x the (clipped)
gradient, so its size follows the gradient norm. For each micro task, objective (grpo, sft+-) and
seed this script takes the first step of the lr-sweep plan's run (T = 0.6, full fine-tuning of
the micro model) twice from the same weights and rollout: with AdamW at the sweep's middle rate
and with SGD at rate 1, and prints the L2 norm of each update (the change of all trainable
weights), the gradient norm and the SGD rate that matches AdamW's norm (SGD's update is linear in
its rate). The chosen rate is the geometric mean of those, to one significant figure: one rate for
every SGD run, so grpo and sft+- are compared at the same step rule.
"""
from __future__ import annotations

import argparse
import dataclasses
import math

import torch

from course_lib import models, plans
from course_lib.trainer import train


def first_update(cfg, model, tokenizer, start: dict) -> tuple[float, float]:
    """``(L2 norm of the first update over all trainable weights, gradient norm before clipping)``
    of ``cfg`` (one step, no held-out evaluation) from the weights ``start``."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in start:
                p.copy_(start[n])
    res = train(dataclasses.replace(cfg, steps=1, eval_examples=0), model=model, tokenizer=tokenizer, progress=False)
    with torch.no_grad():
        sq = sum(float(((p - start[n]) ** 2).sum()) for n, p in model.named_parameters() if n in start)
    return math.sqrt(sq), res.history[0]["grad_norm"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per task and objective (default %(default)s)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tasks = models.get_profile("micro").tasks
    specs, settings, _ = plans.plan_evidence("lr-sweep", tasks, seeds=args.seeds)
    rates = plans.PLANS["lr-sweep"]["learning_rates"]
    middle = rates[len(rates) // 2]
    torch.manual_seed(0)
    model, tokenizer = models.load_policy("micro")
    start = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    print(f"{sum(p.numel() for p in start.values()):,} trainable weights; AdamW at {middle:g}, SGD probed at 1")
    print("task             objective  seed  grad norm  |AdamW update|  |SGD update| at 1  matching SGD rate")
    matched = []
    for spec in specs:
        if spec.learning_rate != middle or spec.optimizer != "adamw":
            continue
        cfg = plans.make_config("micro", spec, settings)
        adam, grad = first_update(cfg, model, tokenizer, start)
        sgd, _ = first_update(dataclasses.replace(cfg, optimizer="sgd", learning_rate=1.0), model, tokenizer, start)
        matched.append(adam / sgd)
        print(f"{spec.task:16s} {spec.objective:9s} {spec.seed:5d} {grad:10.4f} {adam:15.4f} {sgd:18.4f} "
              f"{adam / sgd:18.3g}")
    mean = math.exp(sum(map(math.log, matched)) / len(matched))
    chosen = float(f"{mean:.0e}")
    print(f"geometric mean of the matching rates: {mean:.3g}; chosen SGD rate (one significant figure): {chosen:g}; "
          f"its first update is {chosen / max(matched):.2f}-{chosen / min(matched):.2f} x AdamW's")


if __name__ == "__main__":
    main()
