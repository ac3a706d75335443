"""Countdown: reach a target with + - * / using every given number exactly once.

Example: numbers ``[3, 7, 5]``, target ``26``; one answer is ``3*7+5``. What is here:

- ``solve`` / ``reachable``: a brute-force solver over all expression trees (exact
  ``Fraction`` arithmetic, so ``(7-5/5)*...`` style intermediate fractions count).
- ``generate``: random problems whose target the solver has proven reachable (seeded).
- ``load``: the public Countdown-Tasks-3to4 set through ``datasets`` when the Hugging Face
  Hub answers, otherwise generated problems (one printed line says which).
- ``prompt``: the R1-style template (reasoning in ``<think>``, equation in ``<answer>``).
- ``score``: the verifier. It never calls ``eval``. Popular reward functions run ``eval``
  after a character whitelist, and ``99**98**97`` passes such whitelists and hangs the
  process. Here the answer goes through, in order: a length cap, a character whitelist
  (ASCII digits, ``+ - * / ( )`` and spaces), a cap on literal length and parenthesis
  depth, ``ast.parse`` in mode ``"eval"``, a walk that admits only integer literals and the
  four binary operators, a multiset check of the numbers used, and exact evaluation with a
  cap on the size of every intermediate value. Every step is bounded, so no completion raises or
  takes more than a fraction of a millisecond.

Simplified on purpose:

- Strict answer format: the block holds only the expression, with the four binary operators:
  ``3*7+5 = 26``, ``//`` and unary minus (``-3+7*5``: -3 is not a given number) are rejected;
  the prompt does not mention unary minus, and need not (the solver never uses it). The block
  runs from the first ``<answer>`` after the previous ``</answer>`` to the last ``</answer>``:
  ``<answer><answer>3*7+5</answer>`` is malformed (nested), not read from its inner tag.
- ``target`` must be an int, like ``nums`` (a ``TypeError`` otherwise): coercing a string or a
  float (``1/10 != 0.1``) would hide a data bug (TinyZero turns it into a silent format score).
- The reward is binary (1.0 correct, 0.0 otherwise), as in the paper. ``format_bonus`` (off:
  a policy learns to collect it with any parsable expression) pays a wrong, well-formed one.
- Generated train and test problems come from different seeds but are not filtered
  against each other; with numbers from 1..99 a collision is rare and harmless here.
- The hub set has one split; its first ``HUB_TEST_SIZE`` rows serve as the test split.
"""

from __future__ import annotations

import ast
import functools
import itertools
import numbers
import operator
import random
import re
from collections import Counter
from collections.abc import Sequence
from fractions import Fraction

from .common import Score, hub_reachable

HUB_ID = "Jiayi-Pan/Countdown-Tasks-3to4"
HUB_TEST_SIZE = 1000
#: How many problems ``load`` generates per split when the hub is not reachable and n is None.
GENERATED_SIZES = {"train": 5000, "test": 500}

# Verifier caps. A Countdown answer with four two-digit numbers is about 20 characters.
MAX_ANSWER_CHARS = 256  # longer answer blocks are rejected before any parsing
MAX_DEPTH = 32  # parenthesis nesting; CPython's parser itself fails near 200
MAX_LITERAL_DIGITS = 12  # no number in a Countdown problem is longer
MAX_VALUE_BITS = 1024  # numerator and denominator of every intermediate value

R1_TEMPLATE = (
    "A conversation between User and Assistant. The User asks a question and the Assistant "
    "solves it. The Assistant first thinks about the reasoning process and then gives the "
    "answer. The reasoning goes inside <think> </think> tags and the answer inside "
    "<answer> </answer> tags.\n"
    "User: Using the numbers {nums}, write an arithmetic expression that equals {target}. "
    "Use + - * / and parentheses, and use every number exactly once. Put only the "
    "expression inside the answer tags, for example <answer> (1 + 2) * 3 </answer>.\n"
    "Assistant: Let me solve this step by step.\n<think>"
)

_OPEN, _CLOSE = "<answer>", "</answer>"
_NO_BLOCK = "no complete <answer>...</answer> block"
_ALLOWED_CHARS = re.compile(r"[0-9+\-*/() ]*")
_BAD_CHAR = re.compile(r"[^0-9+\-*/() ]")
_LONG_LITERAL = re.compile(rf"[0-9]{{{MAX_LITERAL_DIGITS + 1},}}")
_REJECTED_OPS = {ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@"}


# --------------------------------------------------------------------------- solver


def _div(a: int | Fraction, b: int | Fraction) -> int | Fraction:
    if type(a) is int and type(b) is int:
        q, r = divmod(a, b)
        return q if r == 0 else Fraction(a, b)
    v = Fraction(a) / b
    return v.numerator if v.denominator == 1 else v


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: _div}


def _splits(key: tuple) -> list[tuple[tuple, tuple]]:
    """Every split of ``key`` into two non-empty sorted parts; index 0 stays on the left, which
    avoids mirrored splits."""
    n = len(key)
    return [(tuple(sorted(key[i] for i in range(n) if mask >> i & 1)),
             tuple(sorted(key[i] for i in range(n) if not mask >> i & 1))) for mask in range(1, 2**n - 1, 2)]


@functools.lru_cache(maxsize=4096)
def _values(key: tuple[int | Fraction, ...]) -> dict[int | Fraction, str]:
    """All values reachable from the multiset ``key`` using every element once.

    Integer values stay Python ints (fast); only non-integer ones become Fractions.
    ``Fraction(6) == 6`` and both hash alike, so lookups work with either.
    """
    if len(key) == 1:
        v = key[0]
        return {v: str(v)}
    out: dict[int | Fraction, str] = {}
    for left, right in _splits(key):
        rv = _values(right)
        for a, ea in _values(left).items():
            for b, eb in rv.items():
                out.setdefault(a + b, f"({ea}+{eb})")
                out.setdefault(a * b, f"({ea}*{eb})")
                out.setdefault(a - b, f"({ea}-{eb})")
                out.setdefault(b - a, f"({eb}-{ea})")
                if b:
                    out.setdefault(_div(a, b), f"({ea}/{eb})")
                if a:
                    out.setdefault(_div(b, a), f"({eb}/{ea})")
    return out


@functools.lru_cache(maxsize=4096)
def _int_values(key: tuple[int, ...]) -> frozenset[int]:
    """Values reachable with integer intermediate values only (exact divisions).

    A subset of ``_values(key)`` that is about ten times faster to compute (no Fractions,
    no strings); ``generate`` draws targets from it, so every target is proven reachable.
    """
    if len(key) == 1:
        return frozenset(key)
    out: set[int] = set()
    for left, right in _splits(key):
        rv = _int_values(right)
        for a in _int_values(left):
            for b in rv:
                out.update((a + b, a * b, a - b, b - a))
                if b and a % b == 0:
                    out.add(a // b)
                if a and b % a == 0:
                    out.add(b // a)
    return frozenset(out)


def _strip_outer(expr: str) -> str:
    if expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, ch in enumerate(expr):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr  # the first "(" closes before the end: "(a)+(b)"
        return expr[1:-1]
    return expr


def reachable(nums: Sequence[int]) -> dict[Fraction, str]:
    """Every value reachable from ``nums`` (each used once), with one expression for each.

    Args:
        nums: 1 to 5 integers (the search grows quickly; Countdown uses 3 or 4).

    Example:
        >>> reachable([2, 3])[Fraction(6)]
        '2*3'
    """
    return {Fraction(v): _strip_outer(e) for v, e in _values(_search_key(nums, "reachable")).items()}


def solve(nums: Sequence[int], target: int) -> str | None:
    """An expression using every number once that equals ``target``, or None.

    Example:
        >>> solve([3, 7, 5], 26)
        '(3*7)+5'
        >>> solve([1, 1, 1], 50) is None
        True
    """
    expr = _values(_search_key(nums, "solve")).get(target)
    return None if expr is None else _strip_outer(expr)


def _search_key(nums: Sequence[int], caller: str) -> tuple[int, ...]:
    """``nums`` sorted, for a search over all expressions (at most 5 numbers)."""
    key = tuple(sorted(_check_nums(nums)))
    if len(key) > 5:
        raise ValueError(f"{caller}() searches all expressions; {len(key)} numbers is too many (max 5)")
    return key


def _is_int(x: object) -> bool:
    return type(x) is int or (isinstance(x, numbers.Integral) and not isinstance(x, bool))


def _check_nums(nums: Sequence[int]) -> list[int]:
    """``nums`` as a list of Python ints (numpy integers are accepted too)."""
    if isinstance(nums, (str, bytes)) or not all(_is_int(x) for x in nums):
        raise TypeError(f"nums must be a sequence of ints, got {nums!r}")
    if len(nums) == 0:
        raise ValueError("nums is empty; a Countdown problem needs at least one number")
    return [int(x) for x in nums]


# --------------------------------------------------------------------------- data


def generate(
    n: int,
    seed: int = 0,
    *,
    sizes: Sequence[int] = (3, 4),
    num_range: tuple[int, int] = (1, 99),
    target_range: tuple[int, int] = (1, 99),
) -> list[dict]:
    """``n`` random problems, each with a target the solver has proven reachable.

    Args:
        n: number of problems.
        seed: the same seed (and arguments) always gives the same problems.
        sizes: allowed counts of numbers, drawn uniformly.
        num_range: inclusive range of the numbers.
        target_range: inclusive range of the target.

    Returns:
        ``[{"nums": [int, ...], "target": int}, ...]``

    Example:
        >>> generate(1, seed=0, sizes=(3,), num_range=(1, 9))[0].keys()
        dict_keys(['nums', 'target'])
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    lo, hi = num_range
    tlo, thi = target_range
    if not (lo <= hi and tlo <= thi) or not sizes or min(sizes) < 1 or max(sizes) > 5:
        raise ValueError(
            f"bad ranges: sizes={sizes}, num_range={num_range}, target_range={target_range}; "
            "sizes must be in 1..5 and each range (low, high) with low <= high"
        )
    rng = random.Random(f"countdown:{seed}")
    out: list[dict] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise ValueError(
                f"could not find solvable problems with num_range={num_range} and "
                f"target_range={target_range}; widen the target range"
            )
        nums = [rng.randint(lo, hi) for _ in range(rng.choice(list(sizes)))]
        targets = sorted(v for v in _int_values(tuple(sorted(nums))) if tlo <= v <= thi)
        if targets:
            out.append({"nums": nums, "target": rng.choice(targets)})
    return out


def _load_hub(split: str) -> list[dict] | str:
    """The hub rows of ``split``, or a short reason why they are not available."""
    if not hub_reachable():
        return "Hugging Face Hub not reachable"
    try:
        import datasets

        ds = datasets.load_dataset(HUB_ID, split="train")
    except Exception as exc:  # any hub or cache failure means: use the offline path
        return f"could not load {HUB_ID} ({type(exc).__name__})"
    idx = range(HUB_TEST_SIZE) if split == "test" else range(HUB_TEST_SIZE, len(ds))
    rows = ds.select(idx)
    return [{"nums": [int(x) for x in r["nums"]], "target": int(r["target"])} for r in rows]


def load(split: str = "train", n: int | None = None, seed: int = 0) -> list[dict]:
    """Countdown problems: the hub set when reachable, else generated ones.

    Args:
        split: ``"train"`` or ``"test"``.
        n: how many; None means the whole split (hub) or ``GENERATED_SIZES[split]``.
        seed: picks which ``n`` problems (hub) or seeds the generator.

    Returns:
        ``[{"nums": [int, ...], "target": int}, ...]``

    Example:
        >>> len(load("test", n=3))  # doctest: +SKIP
        3
    """
    if split not in GENERATED_SIZES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rows = _load_hub(split)
    if isinstance(rows, str):
        print(f"countdown: {rows}; generating {split} problems (seed {seed})")
        size = GENERATED_SIZES[split] if n is None else n
        # distinct seed streams per split
        return generate(size, seed=seed * 2 + (split == "test"))
    if n is not None and n < len(rows):
        rows = [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]
    return rows


def prompt(example: dict, style: str = "r1") -> str:
    """The prompt for one problem.

    Args:
        example: ``{"nums": [...], "target": int}``.
        style: only ``"r1"`` (think/answer tags). Countdown has no ``\\boxed{}`` style: its
            answer is an expression, which the verifier reads from the answer tags.

    Example:
        >>> prompt({"nums": [3, 7, 5], "target": 26}).count("<answer>")
        2
    """
    if style != "r1":
        raise ValueError(f"countdown prompt style must be 'r1', got {style!r}")
    return R1_TEMPLATE.format(nums=list(example["nums"]), target=example["target"])


# --------------------------------------------------------------------------- verifier


def _show(value: Fraction) -> str:
    """A short rendering of a value for reasons: ``26``, ``7/3``, ``a 300-digit number``."""
    text = str(value)
    return text if len(text) <= 40 else f"a number with {len(str(value.numerator))}+ digits"


class _Reject(Exception):
    pass


def _evaluate(node: ast.AST, used: list[int]) -> int | Fraction | None:
    """Exact value of an admitted expression tree; None after a division by zero.

    Values stay Python ints while they are whole (fast) and become Fractions only after an
    inexact division, so ``(5-1/5)*5`` is exactly 24.
    """
    kind = type(node)
    if kind is ast.BinOp:
        op = type(node.op)
        if op not in _OPS:
            raise _Reject(f"operator {_REJECTED_OPS.get(op, op.__name__)} not allowed")
        a = _evaluate(node.left, used)
        b = _evaluate(node.right, used)
        if a is None or b is None or (op is ast.Div and b == 0):
            return None
        v = _OPS[op](a, b)
        bits = v.bit_length() if type(v) is int else max(v.numerator.bit_length(), v.denominator.bit_length())
        if bits > MAX_VALUE_BITS:
            raise _Reject("intermediate value too large")
        return v
    if kind is ast.Constant and type(node.value) is int:
        used.append(node.value)
        return node.value
    if kind is ast.UnaryOp:
        raise _Reject("unary +/- not allowed; use the given numbers as they are")
    raise _Reject(f"{kind.__name__} not allowed; only numbers, + - * / and parentheses")


def extract_answer(completion: str) -> str | None:
    """The text of the last complete ``<answer>...</answer>`` block, or None.

    Example:
        >>> extract_answer("<answer>1+2</answer> then <answer>3+4</answer> <answer>5")
        '3+4'
    """
    span = _last_block(completion)
    return None if span is None else completion[span[0] : span[1]]


def _last_block(completion: str) -> tuple[int, int] | None:
    """Where the text of the last complete block lies: from the first ``<answer>`` after the
    previous ``</answer>`` to the last ``</answer>``, so that doubled or nested opening tags stay
    inside the block (and make it malformed) instead of being skipped."""
    end = completion.rfind(_CLOSE)
    if end < 0:
        return None
    prev = completion.rfind(_CLOSE, 0, end)
    start = completion.find(_OPEN, prev + len(_CLOSE) if prev >= 0 else 0, end)
    return None if start < 0 else (start + len(_OPEN), end)


def _check_arguments(
    completion: str, nums: Sequence[int], target: int, format_bonus: float
) -> Counter:
    """The multiset of ``nums``, once every argument has the right type (else a caller's bug)."""
    if not isinstance(completion, str):
        raise TypeError(f"completion must be a str, got {type(completion).__name__}")
    if not 0.0 <= format_bonus < 1.0:
        raise ValueError(f"format_bonus must be in [0, 1), got {format_bonus}")
    if not _is_int(target):
        raise TypeError(f"target must be an int, got {type(target).__name__} {target!r:.20}")
    return Counter(_check_nums(nums))


def score(
    completion: str, nums: Sequence[int], target: int, *, format_bonus: float = 0.0
) -> Score:
    """Verify a Countdown completion; safe on any input.

    Args:
        completion: the model's text; the last complete ``<answer>...</answer>`` counts.
        nums: the given numbers; each must be used exactly once.
        target: the value to reach, an int.
        format_bonus: reward for a well-formed but wrong answer (default 0.0; see the
            module docstring for why it is off).

    Returns:
        ``Score(reward, correct, well_formed, reason)``; reward 1.0 if correct.

    Raises:
        TypeError: ``completion`` is not a str, or ``nums`` or ``target`` not ints.

    Example:
        >>> score("<think>..</think><answer>3*7+5</answer>", [3, 7, 5], 26).reward
        1.0
        >>> score("<answer>3**7</answer>", [3, 7], 26).reason
        'operator ** not allowed'
    """
    given = _check_arguments(completion, nums, target, format_bonus)

    def fail(reason: str, well_formed: bool = False) -> Score:
        return Score(format_bonus if well_formed else 0.0, False, well_formed, reason)

    span = _last_block(completion)
    if span is None:  # no closing tag, or the last one closes no block
        return fail("stray </answer>" if _OPEN in completion and _CLOSE in completion else _NO_BLOCK)
    start, end = span
    if end - start > 4 * MAX_ANSWER_CHARS:  # reject before copying a huge block
        return fail(f"answer too long ({end - start} chars, max {MAX_ANSWER_CHARS})")
    text = completion[start:end].strip()
    if _OPEN in text:
        return fail("nested <answer> tags: the block holds another <answer>")
    if not text:
        return fail("empty answer")
    if len(text) > MAX_ANSWER_CHARS:
        return fail(f"answer too long ({len(text)} chars, max {MAX_ANSWER_CHARS})")
    if not _ALLOWED_CHARS.fullmatch(text):
        bad = _BAD_CHAR.search(text).group()
        return fail(f"character {bad!r} not allowed; only digits, + - * / ( ) and spaces")
    if _LONG_LITERAL.search(text):
        return fail(f"number longer than {MAX_LITERAL_DIGITS} digits")
    deepest = max(itertools.accumulate((ch == "(") - (ch == ")") for ch in text))
    if deepest > MAX_DEPTH:
        return fail(f"parentheses nested too deep ({deepest} levels, max {MAX_DEPTH})")
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return fail("not a valid expression")
    used: list[int] = []
    try:
        value = _evaluate(tree, used)
    except _Reject as exc:
        return fail(str(exc))
    except RecursionError:  # cannot happen within the caps; kept as a last guard
        return fail("expression too deep")

    if Counter(used) != given:
        missing = sorted((given - Counter(used)).elements())
        extra = sorted((Counter(used) - given).elements())
        parts = ([f"unused {missing}"] if missing else []) + ([f"not given {extra}"] if extra else [])
        return fail("numbers must be used exactly once: " + ", ".join(parts), True)
    if value is None:
        return fail("division by zero", True)
    if value != target:
        return fail(f"evaluates to {_show(value)}, target {target}", True)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return Score(1.0, True, True, f"correct: {shown} = {target}")
