"""Micro variants of Countdown and GSM8K, small enough for a 1M-parameter model on a CPU.

Each task has a train split, a fixed held-out ``test`` split, a fixed ``hard`` split for pass@k and
a prompt function. The micro base model was pretrained on *traces* of the seed-0 train split,
written and explained by ``tools/pretrain_micro.py``:

- **countdown-micro**: three numbers from 1..9 and a target from 1..99 that two integer steps
  reach: prompt ``"3 7 5>26:"``, completion ``"3+7=10,10*5=50;3*7=21,21+5=26<answer>(3*7)+5</answer>"``.
- **gsm8k-micro**: templated word problems of two or three steps, answered after GSM8K's ``#### N``
  (``"5*4=20,20-3=17\\n#### 17"``). The *same* verifiers as the full tasks judge both.

Held out by arithmetic: no ``test`` or ``hard`` problem has the *signature* (its numbers in any
order and its answer: :func:`countdown_signature`, :func:`gsm8k_signature`) of a train problem or
of one the model was pretrained on (``tests/test_heldout.py``). The test splits are too easy for
pass@k (the base solves nearly all by k = 256), so each ``hard`` split comes from a *harder
distribution* of the same generator, just outside what the model was trained on: countdown
problems with a 0 among the numbers or a target of 100 or more; gsm8k problems from the same
templates with numbers up to 12 instead of 9. They are chosen with one batch of base samples and
measured on another, stored in :data:`HARD_FILE` with the commands (``benchmarks/select_hard.py``).
This is fair to the base: same prompt format, operations and verifier, and neither the base nor a
trained model ever sees a hard problem; the split asks whether RL expands what the model can
solve, not how well it does in distribution.

Simplified, and why: countdown-micro uses three numbers and whole-number intermediates (two
written steps; the full task allows four numbers and fractions); gsm8k-micro is eight templates,
not language, at a size a character-level model learns in minutes.
"""

from __future__ import annotations

import functools
import itertools
import json
import random
import re
from collections.abc import Sequence

from .. import DATA_DIR
from .micro_templates import apply_op, gsm8k_problem

#: Size of each micro task's fixed held-out test set.
TEST_SIZE = 200
#: gsm8k-micro train problems per seed; the seed-0 pool pretrained the micro model and feeds RL.
GSM8K_POOL_SIZE = 10_000
SPLITS = ("train", "test", "hard")
#: The ``hard`` split of each micro task: problems chosen with base-model samples so that pass@k
#: does not saturate, stored with the command that chose them (``benchmarks/select_hard.py``).
HARD_FILE = DATA_DIR / "micro" / "hard.json"

# ----------------------------------------------------------------------------- countdown-micro


@functools.cache
def countdown_expressions(nums: tuple[int, ...]) -> tuple[tuple[str, str, int], ...]:
    """Every two-step expression over ``nums`` (3 numbers): (steps text, expression, value).

    Example: for (3, 7, 5) one entry is ``("3*7=21,21+5=26", "(3*7)+5", 26)``.
    """
    out: dict[str, tuple[str, str, int]] = {}
    for x, y, z in itertools.permutations(nums):
        for op1, op2 in itertools.product("+-*/", repeat=2):
            r = apply_op(x, op1, y)
            if r is None:
                continue
            s = apply_op(r, op2, z)  # (x op1 y) op2 z
            if s is not None:
                out.setdefault(f"({x}{op1}{y}){op2}{z}", (f"{x}{op1}{y}={r},{r}{op2}{z}={s}", f"({x}{op1}{y}){op2}{z}", s))
            s = apply_op(z, op2, r)  # z op2 (x op1 y)
            if s is not None:
                out.setdefault(f"{z}{op2}({x}{op1}{y})", (f"{x}{op1}{y}={r},{z}{op2}{r}={s}", f"{z}{op2}({x}{op1}{y})", s))
    return tuple(out.values())


def countdown_solutions(nums: Sequence[int], target: int) -> list[str]:
    """All two-step whole-number expressions over ``nums`` that equal ``target``.

    Example:
        >>> "(3*7)+5" in countdown_solutions([3, 7, 5], 26)
        True
    """
    return [expr for _, expr, value in countdown_expressions(tuple(nums)) if value == target]


@functools.lru_cache(maxsize=1)
def _countdown_space() -> tuple[tuple[tuple[int, int, int], int], ...]:
    """Every (ordered numbers, target) pair of the micro task, in a fixed order."""
    space = []
    for nums in itertools.product(range(1, 10), repeat=3):
        targets = sorted({v for _, _, v in countdown_expressions(nums) if 1 <= v <= 99})
        space.extend((nums, t) for t in targets)
    return tuple(space)


def countdown_signature(example: dict) -> tuple[tuple[int, ...], int]:
    """The arithmetic of a countdown-micro problem: its numbers as a sorted multiset and its target.

    Example:
        >>> countdown_signature({"nums": [7, 3, 5], "target": 26})
        ((3, 5, 7), 26)
    """
    return tuple(sorted(example["nums"])), int(example["target"])


@functools.lru_cache(maxsize=1)
def _countdown_split() -> tuple[list[dict], list[dict]]:
    """(train, test): the test set is TEST_SIZE problems drawn with a fixed seed; train is every
    problem whose numbers (as a multiset) and target differ from all test problems."""
    space = _countdown_space()
    rng = random.Random(20240611)
    test, seen = [], set()
    while len(test) < TEST_SIZE:
        nums, target = space[rng.randrange(len(space))]
        key = (tuple(sorted(nums)), target)
        if key not in seen:
            seen.add(key)
            test.append({"nums": list(nums), "target": target})
    train = [{"nums": list(n), "target": t} for n, t in space if (tuple(sorted(n)), t) not in seen]
    return train, test


@functools.cache
def _hard(task: str) -> tuple[dict, ...]:
    """The stored ``hard`` split of ``task`` (a tuple of examples, fixed order)."""
    try:
        stored = json.loads(HARD_FILE.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{HARD_FILE} is missing: the hard split is stored there; restore it "
                                "from the repository or rebuild it with benchmarks/select_hard.py") from None
    entry = stored["tasks"][task]
    if not entry["problems"]:
        raise ValueError(f"{task} has no hard split: {entry['why_empty']}; see {HARD_FILE.name} and "
                         "benchmarks/select_hard.py")
    return tuple(entry["problems"])


def _select(examples: list[dict], split: str, n: int | None, seed: int) -> list[dict]:
    if n is not None and n < 0:
        raise ValueError(f"n must be None or >= 0, got {n}")
    if split == "train":  # shuffled by seed
        examples = list(examples)
        random.Random(seed).shuffle(examples)
    # the test and hard sets are fixed: same problems, same order, whatever the seed
    return [dict(e) for e in (examples if n is None else examples[:n])]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(repr(s) for s in SPLITS)}, got {split!r}")


def countdown_examples(split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """Countdown-micro problems: ``[{"nums": [a, b, c], "target": t}, ...]``.

    Args:
        split: ``"test"`` (a fixed set of 200, same order for every seed), ``"train"`` (every
            other problem of the task, 9,214, shuffled by ``seed``; none shares its number
            multiset and target with a test problem) or ``"hard"`` (fixed, from :data:`HARD_FILE`:
            100 problems with a 0 among the numbers or a target of 100 or more, so
            outside train and test; the base's pass@1 / 16 / 256 on fresh samples: 1.0% / 10.4% / 23.0%).
        n: keep only the first ``n``; None keeps all.
        seed: shuffles the train split.

    Example:
        >>> ex = countdown_examples("test", n=1)[0]
        >>> sorted(ex), len(ex["nums"])
        (['nums', 'target'], 3)
    """
    _check_split(split)
    if split == "hard":
        return _select(list(_hard("countdown-micro")), split, n, seed)
    train, test = _countdown_split()
    return _select(train if split == "train" else test, split, n, seed)


def countdown_prompt(example: dict) -> str:
    """The compact prompt: the numbers, ``>``, the target, ``:``.

    Example:
        >>> countdown_prompt({"nums": [3, 7, 5], "target": 26})
        '3 7 5>26:'
    """
    return " ".join(str(x) for x in example["nums"]) + f">{example['target']}:"


# -------------------------------------------------------------------------------- gsm8k-micro

def gsm8k_signature(example: dict) -> tuple[tuple[int, ...], str]:
    """The arithmetic of a gsm8k-micro problem: the numbers of its question, sorted, and its answer.

    Two problems with the same signature ask the same sums in other words (other name, other
    item, other template), so a held-out problem must not share its signature with any problem
    the model has trained on.

    Example:
        >>> gsm8k_signature({"question": "Tom has 2 bags of 3 pens, eats 1. How many left?",
        ...                  "answer": "2*3=6,6-1=5\\n#### 5"})
        ((1, 2, 3), '5')
    """
    numbers = tuple(sorted(int(x) for x in re.findall(r"[0-9]+", example["question"])))
    return numbers, example["answer"].rsplit("#### ", 1)[1].strip()


@functools.lru_cache(maxsize=1)
def _gsm8k_first_test_questions() -> frozenset[str]:
    """The questions of the first test split (seed 20240612, distinct by wording only).

    That split shared its arithmetic with the pretraining pool and is no longer used; the train
    generator still skips its questions so that the seed-0 pool, which pretrained the shipped
    micro model, stays exactly as it was."""
    rng = random.Random(20240612)
    seen: set[str] = set()
    while len(seen) < TEST_SIZE:
        seen.add(gsm8k_problem(rng)["question"])
    return frozenset(seen)


def _gsm8k_generate(seed: int, n: int, banned: frozenset = frozenset()) -> list[dict]:
    """``n`` problems from the train generator of ``seed``, skipping the first test split's
    questions and every problem whose signature is in ``banned``."""
    first = _gsm8k_first_test_questions()
    rng = random.Random(f"gsm8k-micro-train-{seed}")
    out = []
    while len(out) < n:
        p = gsm8k_problem(rng)
        if p["question"] not in first and (not banned or gsm8k_signature(p) not in banned):
            out.append(p)
    return out


@functools.lru_cache(maxsize=1)
def _gsm8k_pool_signatures() -> frozenset:
    """Signatures of the 10,000-problem seed-0 pool (pretraining and RL)."""
    return frozenset(gsm8k_signature(p) for p in _gsm8k_generate(0, GSM8K_POOL_SIZE))


@functools.lru_cache(maxsize=1)
def _gsm8k_test() -> tuple[dict, ...]:
    """TEST_SIZE problems whose signatures are distinct and absent from the seed-0 pool."""
    pool = _gsm8k_pool_signatures()
    rng = random.Random("gsm8k-micro-test-v2")
    test, seen = [], set()
    while len(test) < TEST_SIZE:
        p = gsm8k_problem(rng)
        key = gsm8k_signature(p)
        if key not in pool and key not in seen:
            seen.add(key)
            test.append(p)
    return tuple(test)


@functools.lru_cache(maxsize=1)
def _gsm8k_held_out_signatures() -> frozenset:
    """Signatures of the test and hard splits: no train problem of any seed has one."""
    return frozenset(gsm8k_signature(p) for p in (*_gsm8k_test(), *_hard("gsm8k-micro")))


def gsm8k_examples(split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    """GSM8K-micro problems: ``[{"question": str, "answer": "5*4=20,20-3=17\\n#### 17"}, ...]``.

    Each example also carries ``"steps"``, the solved steps ``(label, x, op, y, result)`` that
    the pretraining traces are written from.

    Held out by arithmetic, not only by wording: no test or hard problem shares its
    :func:`gsm8k_signature` (question numbers and answer) with a train problem of any seed, nor
    with the seed-0 pool that pretrained the micro model. The small templates (``"buys ... at
    $b each"`` has 64 problems) are all in that pool, so the test split leans to the templates
    with more numbers (three-step ``saves`` and ``boxes`` problems, ``shares``): it is harder
    than the train distribution.

    Args:
        split: ``"test"`` (a fixed set of 200, same order for every seed), ``"hard"`` (100
            problems from the same templates with numbers up to 12, chosen for pass@k from
            400 held-out ones as those the base never got right in
            64 samples; on 256 fresh samples its pass@1 / 16 / 256 is
            0.4% / 5.7% / 32.0%, see :data:`HARD_FILE`) or ``"train"`` (problems generated from
            ``seed``; none has the signature of a test or hard problem).
        n: how many; None gives the whole test or hard split, or 10,000 train problems.
        seed: generates the train split.

    Example:
        >>> ex = gsm8k_examples("test", n=1)[0]
        >>> ex["answer"].split("#### ")[1].isdigit()
        True
    """
    _check_split(split)
    if n is not None and n < 0:
        raise ValueError(f"n must be None or >= 0, got {n}")
    if split != "train":
        fixed = _gsm8k_test() if split == "test" else _hard("gsm8k-micro")
        return [dict(p) for p in (fixed if n is None else fixed[:n])]
    return _gsm8k_generate(seed, GSM8K_POOL_SIZE if n is None else n, _gsm8k_held_out_signatures())


def gsm8k_prompt(example: dict) -> str:
    """The question followed by a newline.

    Example:
        >>> gsm8k_prompt({"question": "Tom has 2 bags of 3 pens and eats 1. How many are left?"})
        'Tom has 2 bags of 3 pens and eats 1. How many are left?\\n'
    """
    return example["question"] + "\n"
