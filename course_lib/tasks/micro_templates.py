"""The arithmetic under the micro tasks: whole-number steps and the eight gsm8k-micro templates.

``course_lib.tasks.micro`` builds the splits and prompts on top of these, and
``tools/pretrain_micro.py`` the pretraining traces. A template draws its numbers from ``rng`` and
returns the question text, its values and a *plan* of steps ``(label, x, op, y)``, where a None
operand is the previous step's result; :func:`run_steps` carries a plan out, :func:`gsm8k_problem`
writes one problem, :func:`parse_steps` recovers a plan from a written answer.
"""

from __future__ import annotations

import random


def apply_op(x: int, op: str, y: int) -> int | None:
    """Whole-number result of ``x op y``, or None when it is negative or not exact."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y if x >= y else None
    if op == "*":
        return x * y
    if y != 0 and x % y == 0:
        return x // y
    return None


NAMES = ("Tom", "Ann", "Sam", "Mia", "Ben", "Zoe", "Leo", "Eva")
ITEMS = ("apples", "pens", "cards", "eggs", "books", "shells", "cakes", "rocks")


def _t_bags(rng):
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c = rng.randint(1, min(9, a * b))
    return ("{N} has {a} bags of {b} {I}, eats {c}. How many left?", dict(a=a, b=b, c=c),
            [("all", a, "*", b), ("left", None, "-", c)])


def _t_change(rng):
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c = next(p for p in (20, 50, 100) if p >= a * b)
    return ("{N} buys {a} {I} at ${b} each, pays ${c}. Change?", dict(a=a, b=b, c=c),
            [("cost", a, "*", b), ("change", c, "-", None)])


def _t_pages(rng):
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 20)
    return ("{N} reads {a} pages a day for {b} days, then {c}. Total?", dict(a=a, b=b, c=c),
            [("days", a, "*", b), ("total", None, "+", c)])


def _t_share(rng):
    c, each = rng.randint(2, 6), rng.randint(2, 9)
    a = rng.randint(1, c * each - 1)
    b = c * each - a
    return ("{N} has {a} {I}, gets {b}, shares with {c} kids. Each?", dict(a=a, b=b, c=c),
            [("all", a, "+", b), ("each", None, "/", c)])


def _t_boxes(rng):
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    c, d = rng.randint(1, min(9, a * b)), rng.randint(1, 9)
    return ("{N} has {a} boxes of {b} {I}, gives {c} away, gets {d}. Now?", dict(a=a, b=b, c=c, d=d),
            [("all", a, "*", b), ("left", None, "-", c), ("now", None, "+", d)])


def _t_times(rng):
    a, b = rng.randint(2, 9), rng.randint(2, 5)
    c = rng.randint(1, min(9, a + a * b))
    return ("{N} has {a} {I}, Kim {b} times as many. They lose {c}. Left?", dict(a=a, b=b, c=c),
            [("kim", a, "*", b), ("both", a, "+", None), ("left", None, "-", c)])


def _t_fill(rng):
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9)
    return ("A box holds {a} {I}. {N} fills {b}, has {c} more. Total?", dict(a=a, b=b, c=c),
            [("boxes", a, "*", b), ("all", None, "+", c)])


def _t_save(rng):
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9)
    d = rng.randint(1, a * b + c)
    return ("{N} saves ${a} a week for {b} weeks, gets ${c}, spends ${d}. Left?",
            dict(a=a, b=b, c=c, d=d),
            [("saved", a, "*", b), ("has", None, "+", c), ("left", None, "-", d)])


TEMPLATES = (_t_bags, _t_change, _t_pages, _t_share, _t_boxes, _t_times, _t_fill, _t_save)


def run_steps(plan, slip=None) -> list[tuple[str, int, str, int, int]] | None:
    """Carry out a plan of steps ``(label, x, op, y)``; a None operand is the previous result.

    ``slip(result) -> shown result`` may corrupt each result; later steps use what was shown.
    Returns ``(label, x, op, y, shown)`` per step, or None when a step is not a whole number.

    Example:
        >>> run_steps([("all", 5, "*", 4), ("left", None, "-", 3)])
        [('all', 5, '*', 4, 20), ('left', 20, '-', 3, 17)]
    """
    out, prev = [], None
    for label, x, op, y in plan:
        x = prev if x is None else x
        y = prev if y is None else y
        r = apply_op(x, op, y)
        if r is None:
            return None
        if slip is not None:
            r = slip(r)
        out.append((label, x, op, y, r))
        prev = r
    return out


def gsm8k_problem(rng: random.Random) -> dict:
    template = rng.choice(TEMPLATES)
    text, values, plan = template(rng)
    question = text.format(N=rng.choice(NAMES), I=rng.choice(ITEMS), **values)
    solved = run_steps(plan)
    work = ",".join(f"{x}{op}{y}={r}" for _, x, op, y, r in solved)
    return {"question": question, "answer": f"{work}\n#### {solved[-1][4]}", "steps": plan}


def parse_steps(answer: str) -> list[tuple[str, int | None, str, int | None]]:
    """Recover a plan from an ``answer`` string, e.g. ``"5*4=20,20-3=17\\n#### 17"`` gives
    ``[("", 5, "*", 4), ("", None, "-", 3)]`` (an operand equal to the previous result is
    taken to be it)."""
    work = answer.split("\n####")[0]
    out, prev = [], None
    for step in work.split(","):
        lhs, r = step.split("=")
        op = next(o for o in "+-*/" if o in lhs)
        x, y = (int(v) for v in lhs.split(op))
        if prev is not None and x == prev:
            out.append(("", None, op, y))
        elif prev is not None and y == prev:
            out.append(("", x, op, None))
        else:
            out.append(("", x, op, y))
        prev = int(r)
    return out
