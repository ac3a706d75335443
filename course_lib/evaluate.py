"""Held-out evaluation: accuracy (greedy and sampled), unbiased pass@k, answer lengths.

``evaluate(model, tokenizer, task, examples)`` is what the trainer calls every N steps and what
``python -m course_lib evaluate --run-dir DIR`` runs on a finished (or interrupted) run.

Simplified: one temperature and one top-p per evaluation (those of training unless told
otherwise); lengths are counted in tokens, end-of-sequence token included. The sampled
accuracy is the mean over ``samples`` draws per problem: with 200 problems one draw each has a
standard error of about 3 points, four draws make the curve much steadier.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch

from course_lib.rollout import generate_rollouts

__all__ = ["pass_at_k", "evaluate", "main"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    Example: n=4, c=1, k=1 -> 0.25; n=4, c=1, k=4 -> 1.0; n=4, c=0, k=2 -> 0.0.
    """
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    # product form, stable for large n
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def _mean(xs: Sequence[float]) -> float | None:
    return float(sum(xs) / len(xs)) if xs else None


def _score_rollout(task, roll, examples, group):
    exs = [ex for ex in examples for _ in range(group)]
    scores = [task.score(text, ex) for text, ex in zip(roll.texts, exs)]
    lengths = roll.lengths.tolist()
    correct = [bool(s.correct) for s in scores]
    return {
        "correct": correct,
        "reward": [float(s.reward) for s in scores],
        "len_correct": [n for n, ok in zip(lengths, correct) if ok],
        "len_incorrect": [n for n, ok in zip(lengths, correct) if not ok],
        "truncated": roll.truncated.tolist(),
        "lengths": lengths,
    }


def evaluate(
    model,
    tokenizer,
    task,
    examples: Sequence[dict],
    *,
    samples: int = 4,
    greedy: bool = True,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    k_values: Sequence[int] | None = None,
    batch_size: int = 64,
    seed: int = 1234,
) -> dict:
    """Accuracy and lengths on held-out examples.

    Args:
        model, tokenizer: the policy.
        task: a ``course_lib.tasks.Task`` (``prompt`` and ``score`` are used).
        examples: held-out examples (``task.load("test", n)``).
        samples: sampled completions per problem (0 = no sampled evaluation).
        greedy: also decode greedily (one completion per problem).
        k_values: pass@k to report (default: 1 and ``samples``).
        batch_size: completions per ``generate`` call.
        seed: sampling seed. The caller's random state is left untouched (``fork_rng``), so
            evaluating in the middle of training does not change the training run.

    Returns:
        dict with ``accuracy`` (sampled), ``accuracy_greedy``, ``pass@k``, ``reward_mean``,
        ``len_mean``, ``len_correct``, ``len_incorrect``, ``truncated``, ``n_examples``,
        ``samples``. Lengths are None when there is no completion of that kind.

    Example::

        evaluate(model, tok, get_task("countdown-micro"), test[:100], samples=4)["accuracy"]
    """
    if not examples:
        raise ValueError("examples is empty: pass held-out examples, e.g. task.load('test', n=100)")
    prompts = [task.prompt(ex) for ex in examples]
    out: dict = {"n_examples": len(examples), "samples": samples}
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        if samples > 0:
            roll = generate_rollouts(
                model, tokenizer, prompts, samples, max_new_tokens=max_new_tokens,
                temperature=temperature, top_p=top_p, micro_batch_size=batch_size,
            )
            s = _score_rollout(task, roll, examples, samples)
            out["accuracy"] = _mean([float(c) for c in s["correct"]])
            out["reward_mean"] = _mean(s["reward"])
            out["len_mean"] = _mean(s["lengths"])
            out["len_correct"] = _mean(s["len_correct"])
            out["len_incorrect"] = _mean(s["len_incorrect"])
            out["truncated"] = _mean([float(t) for t in s["truncated"]])
            per_problem = [sum(s["correct"][i * samples : (i + 1) * samples]) for i in range(len(examples))]
            for k in sorted(set(k_values or (1, samples))):
                if 1 <= k <= samples:
                    out[f"pass@{k}"] = _mean([pass_at_k(samples, c, k) for c in per_problem])
        if greedy:
            roll = generate_rollouts(
                model, tokenizer, prompts, 1, max_new_tokens=max_new_tokens,
                temperature=0.0, micro_batch_size=batch_size,
            )
            g = _score_rollout(task, roll, examples, 1)
            out["accuracy_greedy"] = _mean([float(c) for c in g["correct"]])
            out["len_greedy"] = _mean(g["lengths"])
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib evaluate --run-dir DIR``: evaluate a run's latest checkpoint."""
    from course_lib.trainer import load_run

    ap = argparse.ArgumentParser(prog="python -m course_lib evaluate", description=main.__doc__)
    ap.add_argument("--run-dir", required=True, help="a directory written by `train`")
    ap.add_argument("--examples", type=int, default=None, help="held-out problems (default: the run's)")
    ap.add_argument("--samples", type=int, default=None, help="samples per problem (default: the run's)")
    ap.add_argument("--no-greedy", action="store_true", help="skip greedy decoding")
    ap.add_argument("--base", action="store_true", help="evaluate the base model, not the checkpoint")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 is faster on a busy machine)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg, model, tok, task = load_run(args.run_dir, base=args.base)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}")
        return 2
    n = args.examples or cfg.eval_examples
    examples = task.load("test", n=n)
    res = evaluate(
        model, tok, task, examples, samples=args.samples or cfg.eval_samples,
        greedy=not args.no_greedy, max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature, top_p=cfg.top_p, seed=args.seed,
    )
    res["checkpoint"] = "base" if args.base else "latest"
    print(json.dumps(res, indent=2))
    with open(Path(args.run_dir) / "evaluate.json", "w") as f:
        json.dump(res, f, indent=2)
    return 0
