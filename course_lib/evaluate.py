"""Held-out evaluation: accuracy (greedy and sampled), unbiased pass@k, answer lengths.

``evaluate(model, tokenizer, task, examples)`` measures a model on the prompts it is given.
``evaluate_as_trained(model, tokenizer, task, cfg, examples)`` asks the questions the way the
run ``cfg`` asked them in training (the chat template of instruct profiles, the run's autocast
dtype, token cap, temperature and top-p): the trainer's held-out evaluation, ``reproduce``'s
pass@k and ``python -m course_lib evaluate --run-dir DIR`` all go through it.

Simplified: one temperature and one top-p per evaluation (those of training unless told
otherwise); lengths are counted in tokens, end-of-sequence token included. The sampled
accuracy is the mean over ``samples`` draws per problem: with 200 problems one draw each has a
standard error of about 3 points, four draws make the curve much steadier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from course_lib import models
from course_lib.rollout import generate_rollouts


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


def judge(scores, truncated, truncated_wrong: bool) -> tuple[list[float], list[bool]]:
    """``(rewards, correct)`` of verifier ``scores``; with ``truncated_wrong`` an answer cut at the
    cap (``truncated``) earns 0 and is wrong, whatever its last number says. Training and every
    evaluation judge through this one rule."""
    cut = [truncated_wrong and bool(t) for t in truncated]
    return ([0.0 if c else float(s.reward) for s, c in zip(scores, cut)],
            [bool(s.correct) and not c for s, c in zip(scores, cut)])


def _summary(task, roll, examples, group: int, truncated_wrong: bool = False) -> dict:
    """Accuracy, reward and the length breakdown of ``roll`` (``group`` samples per example);
    ``truncated_wrong``: see :func:`judge`."""
    scores = [task.score(text, ex) for text, ex in zip(roll.texts, (ex for ex in examples for _ in range(group)))]
    lengths, truncated = roll.lengths.tolist(), roll.truncated.tolist()
    rewards, correct = judge(scores, truncated, truncated_wrong)
    wrong = [(n, t, text) for n, ok, t, text in zip(lengths, correct, truncated, roll.texts) if not ok]
    return {
        "accuracy": _mean([float(c) for c in correct]), "reward_mean": _mean(rewards),
        "len_mean": _mean(lengths), "len_correct": _mean([n for n, ok in zip(lengths, correct) if ok]),
        "len_incorrect": _mean([n for n, _, _ in wrong]),
        "len_incorrect_complete": _mean([n for n, t, _ in wrong if not t]),  # not cut at the cap
        # the error mix: a wrong answer with working shows at least one "a op b = c" step
        "len_incorrect_worked": _mean([n for n, t, text in wrong if not t and "=" in text]),
        "share_incorrect_guess": _mean([float("=" not in text) for _, _, text in wrong]),  # without working
        "truncated": _mean([float(t) for t in truncated]),
        "correct_per_problem": [sum(correct[i * group:(i + 1) * group]) for i in range(len(examples))],
    }


def evaluate(model, tokenizer, task, examples: Sequence[dict], *, samples: int = 4, greedy: bool = True,
             max_new_tokens: int = 64, temperature: float = 1.0, top_p: float = 1.0,
             k_values: Sequence[int] | None = None, batch_size: int = 64, seed: int = 1234,
             truncated_wrong: bool = False) -> dict:
    """Accuracy and lengths on held-out examples, for the prompts ``task.prompt`` writes.

    Args:
        task: a ``course_lib.tasks.Task`` (``prompt`` and ``score`` are used).
        examples: held-out examples (``task.load("test", n)``).
        samples: sampled completions per problem (0 = no sampled evaluation).
        greedy: also decode greedily (one completion per problem).
        k_values: pass@k to report (default: 1 and ``samples``).
        batch_size: completions per ``generate`` call.
        seed: sampling seed. The caller's random state is left untouched (``fork_rng``), so
            evaluating in the middle of training does not change the training run.
        truncated_wrong: count an answer cut at ``max_new_tokens`` as wrong (a run's
            ``truncated="wrong"``).

    Returns:
        dict with ``accuracy`` (sampled), ``accuracy_greedy``, ``len_greedy``, ``pass@k``,
        ``reward_mean``, ``len_mean``, ``len_correct``, ``len_incorrect``,
        ``len_incorrect_complete`` (wrong answers that ended before the cap),
        ``len_incorrect_worked`` (those of them that show working, an ``=``),
        ``share_incorrect_guess`` (wrong answers without any ``=``), ``truncated``,
        ``n_examples``, ``samples`` and ``correct_per_problem`` (right answers among each
        problem's samples). Lengths (tokens, eos included) are None when there is no
        completion of that kind.

    Example: ``evaluate(model, tok, get_task("countdown-micro"), test[:100], samples=4)["accuracy"]``
    """
    if not examples:
        raise ValueError("examples is empty: pass held-out examples, e.g. task.load('test', n=100)")
    prompts = [task.prompt(ex) for ex in examples]
    out: dict = {"n_examples": len(examples), "samples": samples}
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []):
        torch.manual_seed(seed)
        if samples > 0:
            roll = generate_rollouts(model, tokenizer, prompts, samples, max_new_tokens=max_new_tokens,
                                     temperature=temperature, top_p=top_p, micro_batch_size=batch_size)
            out.update(_summary(task, roll, examples, samples, truncated_wrong))
            ks = sorted(set(k_values or (1, samples)))
            out.update({f"pass@{k}": v for k, v in pass_at_k_curve(out["correct_per_problem"], samples, ks).items()})
        if greedy:
            roll = generate_rollouts(model, tokenizer, prompts, 1, max_new_tokens=max_new_tokens, temperature=0.0,
                                     micro_batch_size=batch_size)
            g = _summary(task, roll, examples, 1, truncated_wrong)
            out.update(accuracy_greedy=g["accuracy"], truncated_greedy=g["truncated"], len_greedy=_mean(roll.lengths.tolist()))
    return out


def evaluate_as_trained(model, tokenizer, task, cfg, examples: Sequence[dict], **kwargs) -> dict:
    """:func:`evaluate` asking the questions as the run ``cfg`` (a ``TrainConfig``) asked them in
    training: ``task`` (the plain task) behind ``models.prompted`` (the chat template of instruct
    profiles), under autocast in the run's compute dtype, at its ``max_new_tokens``,
    ``temperature`` and ``top_p``, judging a truncated answer as it did. ``kwargs``: ``samples``, ``greedy``, ``k_values``,
    ``batch_size``, ``seed`` of :func:`evaluate`.

    Example: ``evaluate_as_trained(model, tok, get_task("arith"), cfg, test, samples=4)["accuracy"]``
    """
    asked = models.prompted(task, tokenizer, models.get_profile(cfg.profile))
    with models.autocast(model, models.compute_dtype(cfg.precision, next(model.parameters()).device)):
        return evaluate(model, tokenizer, asked, examples, max_new_tokens=cfg.max_new_tokens,
                        temperature=cfg.temperature, top_p=cfg.top_p, truncated_wrong=cfg.truncated == "wrong",
                        **kwargs)


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
        "n": n, "well_formed": sum(bool(s.well_formed) for s in scores) / n,
        "ended": sum(not t for t in truncated) / n, "multiple": sum(k > 1 for k in marks) / n,
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
