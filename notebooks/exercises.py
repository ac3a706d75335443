"""Checks for the coding exercises: each compares a learner's function with course_lib on random inputs.

In a notebook::

    def group_advantages(rewards, G):
        raise NotImplementedError  # YOUR CODE
    check("group_advantages", group_advantages)

prints one line: the function matches ``course_lib`` (or an AssertionError says on which input
it does not). While the stub still raises NotImplementedError, ``check`` says the exercise is
not done and returns False, so the rest of the notebook still runs. Only under CI (the
environment variable ``CI`` set, as the notebook tests set it) does it check the reference
solution from ``solutions.py`` in its place, and it prints a line saying so: a learner running
the notebook is never handed the answer silently.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass

import solutions
import torch

from course_lib import objectives

TRIALS = 20  # random inputs per check


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def _close(mine, ref, what, inputs):
    mine = torch.as_tensor(mine, dtype=ref.dtype)
    if mine.shape != ref.shape or not torch.allclose(mine, ref, rtol=1e-5, atol=1e-6):
        raise AssertionError(f"{what} differs from course_lib's on the input {inputs}:\n"
                             f"yours   {mine}\nlibrary {ref}")


def _groups(gen):
    P, G = int(torch.randint(1, 5, (1,), generator=gen)), int(torch.randint(2, 7, (1,), generator=gen))
    return P, G


def _check_group_advantages(fn, gen):
    P, G = _groups(gen)
    if torch.rand(1, generator=gen) < 0.7:  # verdicts 0/1, with some all-right or all-wrong groups
        rewards = (torch.rand(P, G, generator=gen) < torch.rand(P, 1, generator=gen) * 1.4 - 0.2).float()
    else:
        rewards = torch.rand(P, G, generator=gen).round(decimals=1)
    rewards = rewards.reshape(-1)
    _close(fn(rewards.clone(), G), objectives.group_advantages(rewards, G), "advantages", dict(rewards=rewards, G=G))


def _check_clipped_surrogate(fn, gen):
    P, G = _groups(gen)
    B, T = P * G, int(torch.randint(1, 7, (1,), generator=gen))
    old = -torch.rand(B, T, generator=gen) * 3
    new = (old + torch.randn(B, T, generator=gen) * 0.3).requires_grad_(True)  # ratios in and out of the clip
    adv = torch.randn(B, generator=gen)
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    eps = float(torch.rand(1, generator=gen)) * 0.3 + 0.05
    inputs = dict(advantages=adv, lengths=lengths, epsilon=round(eps, 3))
    mine = fn(new, old, adv, mask, epsilon=eps)
    (g_mine,) = torch.autograd.grad(mine, new)
    ref = objectives.grpo_loss(new, old, adv, mask, epsilon=eps)
    (g_ref,) = torch.autograd.grad(ref, new)
    _close(mine.detach(), ref.detach(), "the loss", inputs)
    _close(g_mine, g_ref, "the gradient of the loss", inputs)


def _check_signed_weights(fn, gen):
    P, G = _groups(gen)
    correct = torch.rand(P * G, generator=gen) < torch.rand(1, generator=gen)
    positive, negative = [float(torch.randint(0, 3, (1,), generator=gen)) / 2 for _ in range(2)]
    balance = bool(torch.rand(1, generator=gen) < 0.5)
    ref = objectives.signed_weights(correct, G, positive=positive, negative=negative, balance=balance)
    _close(fn(correct.clone(), G, positive=positive, negative=negative, balance=balance), ref, "weights",
           dict(correct=correct.int(), G=G, positive=positive, negative=negative, balance=balance))


def _check_aggregate(fn, gen):
    B, T = int(torch.randint(1, 6, (1,), generator=gen)), int(torch.randint(1, 8, (1,), generator=gen))
    per_token = torch.randn(B, T, generator=gen)
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    for aggregation in objectives.AGGREGATIONS:
        _close(fn(per_token, mask, aggregation), objectives.aggregate(per_token, mask, aggregation),
               f"the {aggregation!r} aggregation", dict(per_token=per_token, lengths=lengths))


@dataclass(frozen=True)
class Exercise:
    compare: Callable  # (learner's function, torch.Generator) -> None, or AssertionError
    library: str       # the course_lib function it is compared with


EXERCISES = {
    "group_advantages": Exercise(_check_group_advantages, "course_lib.objectives.group_advantages"),
    "clipped_surrogate": Exercise(_check_clipped_surrogate, "course_lib.objectives.grpo_loss (beta = 0)"),
    "signed_weights": Exercise(_check_signed_weights, "course_lib.objectives.signed_weights"),
    "aggregate": Exercise(_check_aggregate, "course_lib.objectives.aggregate"),
}


def _run(ex: Exercise, fn) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(TRIALS):
        ex.compare(fn, gen)


def check(name: str, fn) -> bool:
    """Compare ``fn`` with the library on TRIALS random inputs; True when it (or, under CI for an
    unfilled stub, the reference solution) matches, False when the stub is not filled in yet."""
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; the exercises are: {', '.join(EXERCISES)}")
    ex = EXERCISES[name]
    try:
        _run(ex, fn)
    except NotImplementedError:
        if not in_ci():
            print(f"exercise {name!r} not done yet: replace the YOUR CODE line above and re-run both cells "
                  f"(a solution is in notebooks/solutions.py)")
            return False
        _run(ex, getattr(solutions, name))
        print(f"exercise {name!r}: stub not filled in, so (CI only) solutions.py's version was checked "
              f"against {ex.library}")
        return True
    print(f"exercise {name!r}: your function matches {ex.library} on {TRIALS} random inputs")
    return True
