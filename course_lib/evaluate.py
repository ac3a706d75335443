"""Held-out evaluation: accuracy (greedy and sampled), unbiased pass@k, answer lengths.

``evaluate(model, tokenizer, task, examples)`` is what the trainer calls every N steps and what
``python -m course_lib evaluate --run-dir DIR`` runs on a finished (or interrupted) run. It
imports only ``course_lib.rollout``.

Simplified: one temperature and one top-p per evaluation (those of training unless told
otherwise); lengths are counted in tokens, end-of-sequence token included. The sampled
accuracy is the mean over ``samples`` draws per problem: with 200 problems one draw each has a
standard error of about 3 points, four draws make the curve much steadier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from course_lib.rollout import generate_rollouts

__all__ = ["pass_at_k", "pass_at_k_curve", "evaluate", "format_check", "format_report", "show_completions"]


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


def pass_at_k_curve(correct_per_problem: Sequence[int], n: int, ks: Sequence[int]) -> dict[int, float]:
    """Mean unbiased pass@k over problems, for each k <= n.

    Example: counts ``[0, 2]`` of n = 2 -> ``{1: 0.5, 2: 0.5}``.
    """
    return {k: sum(pass_at_k(n, c, k) for c in correct_per_problem) / len(correct_per_problem)
            for k in ks if 1 <= k <= n}


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
        "len_incorrect_complete": [n for n, ok, t in zip(lengths, correct, roll.truncated.tolist())
                                   if not ok and not t],
        # the error mix: a wrong answer with working shows at least one "a op b = c" step
        "len_incorrect_worked": [n for n, ok, t, text in zip(lengths, correct, roll.truncated.tolist(), roll.texts)
                                 if not ok and not t and "=" in text],
        "incorrect_guess": [float("=" not in text) for ok, text in zip(correct, roll.texts) if not ok],
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
        ``len_mean``, ``len_correct``, ``len_incorrect``, ``len_incorrect_complete`` (wrong
        answers that ended before the cap), ``len_incorrect_worked`` (those of them that show
        working, an ``=``), ``share_incorrect_guess`` (wrong answers without any ``=``: bare
        guesses), ``truncated``, ``n_examples``, ``samples`` and
        ``correct_per_problem`` (right answers among each problem's samples). Lengths are None
        when there is no completion of that kind.

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
            out["len_incorrect_complete"] = _mean(s["len_incorrect_complete"])  # not cut at the cap
            out["len_incorrect_worked"] = _mean(s["len_incorrect_worked"])  # ... and with working shown
            out["share_incorrect_guess"] = _mean(s["incorrect_guess"])  # wrong answers without working
            out["truncated"] = _mean([float(t) for t in s["truncated"]])
            per_problem = [sum(s["correct"][i * samples : (i + 1) * samples]) for i in range(len(examples))]
            out["correct_per_problem"] = per_problem
            for k, v in pass_at_k_curve(per_problem, samples, sorted(set(k_values or (1, samples)))).items():
                out[f"pass@{k}"] = v
        if greedy:
            roll = generate_rollouts(
                model, tokenizer, prompts, 1, max_new_tokens=max_new_tokens,
                temperature=0.0, micro_batch_size=batch_size,
            )
            g = _score_rollout(task, roll, examples, 1)
            out["accuracy_greedy"] = _mean([float(c) for c in g["correct"]])
            out["len_greedy"] = _mean(g["lengths"])
    return out


#: Markers of a final answer the course's verifiers read (GSM8K: ``\boxed{}`` or ``####``;
#: Countdown and the micro tasks: ``<answer>...</answer>`` or ``####``).
ANSWER_MARKERS = ("\\boxed{", "####", "</answer>")


def format_check(model, tokenizer, task, examples: Sequence[dict], *, samples: int = 2,
                 max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 1.0,
                 seed: int = 4321, show: int = 3) -> dict:
    """Sample ``samples`` completions of each example and measure whether the verifier can read them.

    Run it on a base model before training: a model that rarely writes its answer in the marked
    form the verifier reads, or runs into the token cap, gives rewards that say more about the
    format than about the arithmetic, and RL then mostly learns the format.

    Args:
        task: a ``course_lib.tasks.Task`` (behind the chat template for instruct profiles:
            ``models.prompted``). examples: a few problems (8-16 are enough for the shares).
        show: how many (prompt, completion, verdict) to keep for printing.

    Returns:
        dict with ``n`` (completions), ``well_formed`` (share whose answer is where the verifier
        looks: ``Score.well_formed``), ``ended`` (share that stopped before ``max_new_tokens``),
        ``multiple`` (share with more than one marked answer: the verifier takes the last),
        ``accuracy``, ``warning`` (one line when format failures dominate, else None) and
        ``shown``: ``show`` dicts with ``prompt``, ``completion`` and ``score`` (a ``Score``).

    Example::

        fc = format_check(model, tok, get_task("gsm8k"), get_task("gsm8k").load("test", n=8))
        print(format_report(fc))
    """
    if not examples:
        raise ValueError("examples is empty: pass a few problems, e.g. task.load('test', n=8)")
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        roll = generate_rollouts(model, tokenizer, [task.prompt(ex) for ex in examples], samples,
                                 max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
    exs = [ex for ex in examples for _ in range(samples)]
    scores = [task.score(text, ex) for text, ex in zip(roll.texts, exs)]
    truncated = roll.truncated.tolist()
    marks = [sum(text.count(m) for m in ANSWER_MARKERS) for text in roll.texts]
    n = len(scores)
    out = {
        "n": n,
        "well_formed": sum(bool(s.well_formed) for s in scores) / n,
        "ended": sum(not t for t in truncated) / n,
        "multiple": sum(k > 1 for k in marks) / n,
        "accuracy": sum(bool(s.correct) for s in scores) / n,
        "shown": [{"prompt": task.prompt(ex), "completion": text, "score": s}
                  for ex, text, s in list(zip(exs, roll.texts, scores))[::samples][:show]],
    }
    out["warning"] = None
    if out["well_formed"] < 0.5:
        out["warning"] = (f"warning: format failures dominate ({100 * (1 - out['well_formed']):.0f}% of the "
                          "completions have no answer where the verifier looks"
                          + (f"; {100 * (1 - out['ended']):.0f}% hit the {max_new_tokens}-token cap" if out["ended"] < 1 else "")
                          + "): early rewards will measure the format, not the reasoning")
    return out


def format_report(check: dict) -> str:
    """The lines of a :func:`format_check` for printing: the shares, then the warning if any."""
    line = (f"format check on {check['n']} completions: answer where the verifier reads it "
            f"{100 * check['well_formed']:.0f}%, ended before the cap {100 * check['ended']:.0f}%, "
            f"more than one marked answer {100 * check['multiple']:.0f}%, correct {100 * check['accuracy']:.0f}%")
    return line + ("\n" + check["warning"] if check["warning"] else "")


def show_completions(check: dict, width: int = 400) -> str:
    """The completions a :func:`format_check` kept, each with its verdict, as printable text
    (the completion's last ``width`` characters: that is where the verifier reads; a short
    one-line completion follows its verdict on the same line)."""
    blocks = []
    for i, row in enumerate(check["shown"], 1):
        s, text = row["score"], row["completion"].strip()
        text = text if len(text) <= width else "..." + text[-width:]
        verdict = "right" if s.correct else "wrong"
        head = f"[{i}] {verdict} ({s.reason}; reward {s.reward:g})"
        short = "\n" not in text and len(text) <= 100  # on the same line
        blocks.append(head + (": " + text if short else "\n    " + text.replace("\n", "\n    ")))
    return "\n".join(blocks)
