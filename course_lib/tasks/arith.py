r"""Generated arithmetic for a small *real* instruct model (SmolLM2-135M-Instruct).

Two tasks, each with a fixed held-out test split and a disjoint train split:

- **arith**: one single-digit addition or subtraction, ``"What is 7 + 5?"``. Subtraction never
  goes below zero (``a >= b``). 100 additions + 55 subtractions = 155 problems; 50 of them
  (25 of each) are the test split; the train split is the 76 that share no arithmetic with a
  test problem (see below).
- **word-problems**: the same one-step arithmetic told as a story, ``"Sam has 7 apples and
  buys 5 more. How many apples does Sam have now?"``: 2..9 things, 1..9 more, or 1..all of
  them taken away. 72 + 44 = 116 sums; 40 of them (20 of each) are the test split, each told
  two ways (80 problems); each of the 61 that share no arithmetic with a test sum is told
  three ways (names, objects, stories) for the train split (183 problems).

The splits are disjoint by *arithmetic*: no train sum has the :func:`signature` (the two
numbers, in any order, and the answer) of a test sum, in any wording, so a held-out gain is not
a memorised training answer. The prompt is the question plus ``"Reply with only the final
number."`` (asking for an ``Answer: N`` format made the model write a literal ``N``).

``score``: the answer is the **last standalone number** of the reply: ASCII digits with an
optional leading ``-`` (or the Unicode minus) and an optional decimal part, not glued to a
letter, digit, underscore, ``.`` or ``,`` on either side. So ``"7 + 5 = 12."``, ``"The answer
is 12 apples"`` and ``"**12**"`` answer 12; ``"12th"``, ``"x12"`` and ``"1,2"`` contain no
standalone number; ``"8-3=5"`` answers 5. It is compared with the gold after GSM8K's
normalisation (``gsm8k.normalize``: ``12.0 == 12``, ``-0 == 0``); number words are not
answers. Reward 1.0 if correct, else 0.0; ``well_formed``: a standalone number was found.

Simplified on purpose: one operation on small numbers, where the model is partly competent (Q4_1
GGUF, chat template, 48 new tokens, 4 samples: arith 42% right at T = 0.7, 18% at T = 1.0, 70%
greedy, 84% of problems mixed; word-problems 28%, 10%, 68%, 65% mixed; GSM8K or Countdown about
1-2%, two-step word problems 2%: almost no group with signal). Last-number scoring instead of an
answer marker, which the model does not write reliably; a policy that ends every reply with a
guess must still guess right, and lengths are reported beside accuracy. Examples carry
``"answer": "#### N"`` as GSM8K's do (``gsm8k.gold_answer`` reads them), plus ``a``, ``op``, ``b``.
"""

from __future__ import annotations

import functools
import random
import re

from . import gsm8k
from .common import Score

TASKS = ("arith", "word-problems")
INSTRUCTION = "Reply with only the final number."
#: problems in each task's fixed held-out test split
TEST_SIZE = {"arith": 50, "word-problems": 80}
TEST_SUMS = {"arith": 50, "word-problems": 40}  # distinct sums behind the test problems
WORD_COPIES = {"test": 2, "train": 3}  # word-problems tells each sum this many ways
_SPLIT_SEED = "course-arith-split-v2"  # changing it changes every split: keep it

_NUMBER = re.compile(r"(?<![\w.,])[-\u2212]?[0-9]+(?:\.[0-9]+)?(?![\w]|[.,][0-9])")

NAMES = ("Sam", "Mia", "Leo", "Ava", "Tom", "Zoe", "Ben", "Lily", "Max", "Emma")
OBJECTS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "cards", "shells")
# Two stories per operation. Measured on the train split (T = 0.7, 48 new tokens) before they
# were dropped: "A friend gives {n} {b} more." 13% and "... uses {b}. How many {o} are left?" 4%,
# against 22-26% for the additions and 14-17% for the subtractions kept; subtractions from 10-12
# were right 2% of the time, from 2-9 19%.
ADD_STORIES = (
    "{n} has {a} {o} and buys {b} more. How many {o} does {n} have now?",
    "{n} had {a} {o} and found {b} more. How many {o} does {n} have now?",
)
SUB_STORIES = (
    "{n} has {a} {o} and gives {b} to a friend. How many {o} does {n} have left?",
    "{n} had {a} {o} and lost {b} of them. How many {o} does {n} have left?",
)


# --------------------------------------------------------------------------- verifier


def last_number(text: str) -> str | None:
    """The last standalone number in ``text`` (see the module docstring), or None.

    Example:
        >>> last_number("7 + 5 = 12.")
        '12'
        >>> last_number("the 12th try") is None
        True
        >>> last_number("3 - 8 = \u22125")
        '-5'
    """
    found = _NUMBER.findall(text[-gsm8k.LAST_NUMBER_WINDOW :])
    return found[-1].replace("\u2212", "-") if found else None


def score(completion: str, example: dict) -> Score:
    """Verify a reply against ``example["answer"]`` (``"#### N"`` or a bare number).

    Example:
        >>> score("7 + 5 = 12", {"answer": "#### 12"}).correct
        True
        >>> score("twelve", {"answer": "#### 12"}).well_formed
        False
    """
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str, got {type(completion).__name__}")
    want = gsm8k.gold_answer(str(example["answer"]))
    text = last_number(completion)
    if text is None:
        return Score(0.0, False, False, "no standalone number in the reply")
    got = gsm8k.normalize(text)
    if got is None:  # longer than gsm8k.MAX_ANSWER_CHARS
        return Score(0.0, False, False, f"number {text[:20]!r}... too long")
    shown = gsm8k._show(got)
    if got != want:
        return Score(0.0, False, True, f"last number {shown}, expected {gsm8k._show(want)}")
    return Score(1.0, True, True, f"correct: {shown}")


# --------------------------------------------------------------------------- data


def _sums(task: str) -> list[tuple[int, str, int]]:
    """Every ``(a, op, b)`` of a task, in a fixed order."""
    if task == "arith":
        adds = [(a, "+", b) for a in range(10) for b in range(10)]
        subs = [(a, "-", b) for a in range(10) for b in range(a + 1)]
    else:
        adds = [(a, "+", b) for a in range(2, 10) for b in range(1, 10)]
        subs = [(a, "-", b) for a in range(2, 10) for b in range(1, a + 1)]
    return adds + subs


def signature(a: int, op: str, b: int) -> tuple[tuple[int, int], int]:
    """The arithmetic of a sum: its two numbers, sorted, and its answer. ``7 + 5`` and ``5 + 7``
    share one, and so do ``5 + 0`` and ``5 - 0``.

    Example:
        >>> signature(7, "+", 5) == signature(5, "+", 7) == ((5, 7), 12)
        True
    """
    return (min(a, b), max(a, b)), _answer(a, op, b)


@functools.cache
def _split(task: str) -> tuple[tuple, tuple]:
    """(test sums, train sums): half of the test sums are additions, half subtractions, all with
    different signatures; a train sum never has the signature of a test sum."""
    rng = random.Random(f"{_SPLIT_SEED}-{task}")
    sums = _sums(task)
    per_op = TEST_SUMS[task] // 2
    test, taken = [], set()
    for op in "+-":
        pool = [s for s in sums if s[1] == op]
        rng.shuffle(pool)
        chosen: list[tuple[int, str, int]] = []
        for s in pool:
            if len(chosen) == per_op:
                break
            if signature(*s) not in taken:
                taken.add(signature(*s))
                chosen.append(s)
        test += chosen
    rng.shuffle(test)  # a prefix of the test split mixes both operations
    train = [s for s in sums if signature(*s) not in taken]
    return tuple(test), tuple(train)


def _answer(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b


def _example(question: str, a: int, op: str, b: int) -> dict:
    return {"question": question, "answer": f"#### {_answer(a, op, b)}", "a": a, "op": op, "b": b}


def _story(a: int, op: str, b: int, rng: random.Random) -> str:
    stories = ADD_STORIES if op == "+" else SUB_STORIES
    return rng.choice(stories).format(n=rng.choice(NAMES), o=rng.choice(OBJECTS), a=a, b=b)


@functools.cache
def _examples(task: str, split: str) -> tuple[dict, ...]:
    test, train = _split(task)
    if task == "arith":
        return tuple(_example(f"What is {a} {op} {b}?", a, op, b) for a, op, b in
                     (test if split == "test" else train))
    rng = random.Random(f"{_SPLIT_SEED}-{task}-{split}-stories")
    copies = WORD_COPIES[split]
    out, seen = [], set()
    for _ in range(copies):  # round by round, so a prefix of the test split covers every sum once
        for s in test if split == "test" else train:
            q = _story(*s, rng)
            for _retry in range(50):  # different tellings of one sum
                if q not in seen:
                    break
                q = _story(*s, rng)
            seen.add(q)
            out.append(_example(q, *s))
    return tuple(out)


def load(task: str, split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
    """Examples ``{"question", "answer": "#### N", "a", "op", "b"}`` of ``task``.

    Args:
        task: ``"arith"`` or ``"word-problems"``.
        split: ``"test"`` (fixed, the same for every seed; ``n`` takes a prefix) or ``"train"``
            (fixed; ``n`` takes a seeded random subset, kept in order).
        n: how many; None for the whole split (arith 50 / 76, word-problems 80 / 183).
        seed: picks the train subset.

    Example:
        >>> len(load("arith", "test")), len(load("arith", "train"))
        (50, 76)
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if n is not None and n < 0:
        raise ValueError(f"n must be None or >= 0, got {n}")
    rows = _examples(task, split)
    if n is not None and n < len(rows):
        if split == "test":
            rows = rows[:n]
        else:
            rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]
    return [dict(r) for r in rows]


def prompt(example: dict) -> str:
    """The question and the instruction (the chat template is applied by the trainer).

    Example:
        >>> prompt({"question": "What is 7 + 5?"})
        'What is 7 + 5? Reply with only the final number.'
    """
    return f"{example['question']} {INSTRUCTION}"
