"""Countdown: the verifier cannot be fooled or hung, the generator only makes solvable problems."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib.tasks import countdown
from course_lib.tasks.common import Score

N375, T26 = [3, 7, 5], 26


def ans(expr: str) -> str:
    return f"<think>working</think>\n<answer>{expr}</answer>"


# (completion, nums, target, correct, well_formed, words in the reason)
EDGE_CASES = [
    # correct answers
    (ans("3*7+5"), N375, T26, True, True, "correct"),
    (ans(" (3*7)+5 "), N375, T26, True, True, "correct"),
    (ans("5+7*3"), N375, T26, True, True, "correct"),
    (ans("(3)*(7)+(5)"), N375, T26, True, True, "correct"),
    (ans("3*7+5\n"), N375, T26, True, True, "correct"),
    (ans("(" * 20 + "3*7+5" + ")" * 20), N375, T26, True, True, "correct"),
    # malformed, nested answer tags: the block is everything after the first opening tag
    ("<answer><answer>3*7+5</answer>", N375, T26, False, False, "nested"),
    ("<answer>x <answer>3*7+5</answer>", N375, T26, False, False, "nested"),
    (ans("1+1") + "<answer>" + ans("3*7+5"), N375, T26, False, False, "nested"),
    ("<answer><answer>3*7+5</answer></answer>", N375, T26, False, False, "stray </answer>"),
    (ans("3*7+5") + "</answer>", N375, T26, False, False, "stray </answer>"),
    # fractional intermediate values are allowed
    (ans("(5-1/5)*5"), [1, 5, 5, 5], 24, True, True, "correct"),
    (ans("8/(3-8/3)"), [3, 3, 8, 8], 24, True, True, "correct"),
    (ans("3/7+5"), N375, T26, False, True, "evaluates to 38/7"),
    # which block counts: the last complete one
    (ans("1+1") + ans("3*7+5"), N375, T26, True, True, "correct"),
    (ans("3*7+5") + ans("3+7+5"), N375, T26, False, True, "evaluates to 15"),
    (ans("3*7+5") + "<answer>3+7+5", N375, T26, True, True, "correct"),
    ("<answer>3*7+5", N375, T26, False, False, "no complete"),
    ("3*7+5</answer>", N375, T26, False, False, "no complete"),
    ("3*7+5", N375, T26, False, False, "no complete"),
    ("<ANSWER>3*7+5</ANSWER>", N375, T26, False, False, "no complete"),
    ("", N375, T26, False, False, "no complete"),
    (ans(""), N375, T26, False, False, "empty"),
    (ans("   "), N375, T26, False, False, "empty"),
    ("<answer>3*7+5</answer></answer>", N375, T26, False, False, "stray </answer>"),
    # wrong value or wrong numbers
    (ans("3*7*5"), N375, T26, False, True, "evaluates to 105"),
    (ans("3*7"), N375, T26, False, True, "unused [5]"),
    (ans("3*7+5+5"), N375, T26, False, True, "not given [5]"),
    (ans("3*7+6"), N375, T26, False, True, "not given [6]"),
    (ans("26"), N375, T26, False, True, "unused [3, 5, 7]"),
    (ans("3*7+5-7+7"), N375, T26, False, True, "not given [7, 7]"),
    (ans("(3+5)/(7-7)"), [3, 5, 7, 7], T26, False, True, "division by zero"),
    (ans("3/(7-7)*5"), [3, 5, 7, 7], T26, False, True, "division by zero"),
    # code injection and operators that are not + - * /
    (ans("__import__('os').system('ls')"), N375, T26, False, False, "'_' not allowed"),
    (ans("eval('3*7+5')"), N375, T26, False, False, "'e' not allowed"),
    (ans("[3,7,5]"), N375, T26, False, False, "'[' not allowed"),
    (ans("lambda: 26"), N375, T26, False, False, "'l' not allowed"),
    (ans('"26"'), N375, T26, False, False, "'\"' not allowed"),
    (ans("3*7+5 # comment"), N375, T26, False, False, "'#' not allowed"),
    (ans("3*7+5;"), N375, T26, False, False, "';' not allowed"),
    (ans("99**98**97"), [99, 98, 97], 1, False, False, "operator ** not allowed"),
    (ans("9**9**9**9"), [9, 9, 9, 9], 1, False, False, "operator ** not allowed"),
    (ans("(7//3)+5"), N375, T26, False, False, "operator // not allowed"),
    (ans("7%3+5"), N375, T26, False, False, "'%' not allowed"),
    # unary minus: "-" is subtraction only (the module docstring says why)
    (ans("-3+7*5"), N375, 32, False, False, "unary"),
    (ans("3*7++5"), N375, T26, False, False, "unary"),
    (ans("3*7-(-5)"), N375, T26, False, False, "unary"),
    (ans("(-3)*(-7)+5"), N375, T26, False, False, "unary"),
    (ans("5*7-3*3"), [3, 3, 5, 7], T26, True, True, "correct"),
    (ans("(1 + 2) * 3"), [1, 2, 3], 9, True, True, "correct"),  # the prompt's own example
    (ans("3*7+5 = 26"), N375, T26, False, False, "'=' not allowed"),
    (ans("3*7+5==26"), N375, T26, False, False, "'=' not allowed"),
    (ans("()"), N375, T26, False, False, "Tuple not allowed"),
    (ans("3 7 5"), N375, T26, False, False, "not a valid expression"),
    (ans("(3*7+5"), N375, T26, False, False, "not a valid expression"),
    (ans("03*7+5"), N375, T26, False, False, "not a valid expression"),
    (ans("3*\n7+5"), N375, T26, False, False, "'\\n' not allowed"),
    # literals that are not plain ASCII decimal integers
    (ans("0x3*7+5"), N375, T26, False, False, "'x' not allowed"),
    (ans("3*7+0b101"), N375, T26, False, False, "'b' not allowed"),
    (ans("3*7+5.0"), N375, T26, False, False, "'.' not allowed"),
    (ans("3.*7+5"), N375, T26, False, False, "'.' not allowed"),
    (ans("3*7+1e1"), N375, T26, False, False, "'e' not allowed"),
    (ans("3*7+5_0"), N375, T26, False, False, "'_' not allowed"),
    (ans("\u0663*\u0667+\u0665"), N375, T26, False, False, "not allowed"),  # Arabic-Indic
    (ans("\uff13*7+5"), N375, T26, False, False, "not allowed"),  # fullwidth 3
    (ans("3*7+\u00b2"), N375, T26, False, False, "not allowed"),  # superscript 2
    # sizes that would hang or crash a naive parser
    (ans("(" * 10_000 + "3*7+5" + ")" * 10_000), N375, T26, False, False, "too long"),
    (ans("(" * 40 + "3*7+5" + ")" * 40), N375, T26, False, False, "nested too deep"),
    (ans("1" * 1_000_000), N375, T26, False, False, "too long"),
    ("x" * 1_000_000, N375, T26, False, False, "no complete"),
    ("<answer>" * 100_000 + "</answer>", N375, T26, False, False, "too long"),  # nested: one long block
    ("<answer>" + "1+" * 300_000 + "</answer>", N375, T26, False, False, "too long"),
    (ans("9" * 200), N375, T26, False, False, "longer than 12 digits"),
    (ans("+".join(["1"] * 120)), [1] * 120, 120, True, True, "correct"),
]


@pytest.mark.parametrize(
    "completion, nums, target, correct, well_formed, reason",
    EDGE_CASES,
    ids=[f"{i:02d}-{row[5][:20]}" for i, row in enumerate(EDGE_CASES)],
)
def test_edge_cases(completion, nums, target, correct, well_formed, reason):
    s = countdown.score(completion, nums, target)
    assert isinstance(s, Score)
    assert (s.correct, s.well_formed) == (correct, well_formed), s.reason
    assert s.reward == (1.0 if correct else 0.0)
    assert reason in s.reason
    assert len(s.reason) < 120  # reasons stay short enough to log per completion


def test_edge_table_is_large():
    assert len(EDGE_CASES) >= 40


def test_intermediate_value_cap(monkeypatch):
    monkeypatch.setattr(countdown, "MAX_VALUE_BITS", 16)
    s = countdown.score(ans("99*98*97"), [99, 98, 97], 1)
    assert not s.correct and "too large" in s.reason


def test_format_bonus_only_for_well_formed_wrong_answers():
    assert countdown.score(ans("3*7+5"), N375, T26, format_bonus=0.1).reward == 1.0
    assert countdown.score(ans("3*7*5"), N375, T26, format_bonus=0.1).reward == 0.1
    assert countdown.score(ans("3**7"), N375, T26, format_bonus=0.1).reward == 0.0
    assert countdown.score("no tags", N375, T26, format_bonus=0.1).reward == 0.0
    with pytest.raises(ValueError, match="format_bonus"):
        countdown.score(ans("3*7+5"), N375, T26, format_bonus=1.0)


def test_numpy_integers_are_accepted():
    np = pytest.importorskip("numpy")
    assert countdown.score(ans("3*7+5"), np.array(N375), np.int64(T26)).correct


# (completion, nums, target, words in the TypeError): a problem's data is ints, never coerced
BAD_ARGUMENTS = [
    (None, N375, T26, "completion must be a str"),
    (ans("3*7+5"), "375", T26, "nums must be a sequence of ints"),
    ("no answer", "375", T26, "nums must be a sequence of ints"),
    (ans("3*7+5"), N375, "26", "target must be an int, got str '26'"),
    ("no answer", N375, "26", "target must be an int"),
    (ans("3*7+5"), N375, 26.0, "target must be an int, got float"),
    (ans("3/2"), [3, 2], 1.5, "target must be an int, got float"),
    (ans("1"), [1], True, "target must be an int, got bool"),
    (ans("3*7+5"), N375, None, "target must be an int, got NoneType"),
]


@pytest.mark.parametrize(
    "completion, nums, target, words",
    BAD_ARGUMENTS,
    ids=[f"{i}-{row[3][:30]}" for i, row in enumerate(BAD_ARGUMENTS)],
)
def test_bad_arguments_name_the_problem(completion, nums, target, words):
    with pytest.raises(TypeError, match=re.escape(words)):
        countdown.score(completion, nums, target)


def test_docstring_says_what_the_prompt_says_about_unary_minus():
    prompt = countdown.prompt({"nums": N375, "target": T26})
    doc = " ".join(countdown.__doc__.split())
    assert "Use + - * / and parentheses" in prompt and "unary" not in prompt
    assert "the prompt does not mention unary minus" in doc
    assert "unary" in countdown.score(ans("-3+7*5"), N375, 32).reason


# --------------------------------------------------------------------------- properties

ALPHABET = st.sampled_from(list("0123456789+-*/() .<>answer/xe_\n") + ["<answer>", "</answer>"])


@settings(max_examples=200, deadline=timedelta(milliseconds=500))
@given(st.text(max_size=300) | st.lists(ALPHABET, max_size=80).map("".join))
def test_random_text_never_raises(text):
    s = countdown.score(text, N375, T26)
    assert isinstance(s, Score) and s.reward in (0.0, 1.0)
    s = countdown.score(f"<answer>{text}</answer>", N375, T26)
    assert isinstance(s, Score) and s.reward in (0.0, 1.0)


small_problem = st.lists(st.integers(1, 30), min_size=2, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problem, st.data())
def test_solver_expressions_score_correct(nums, data):
    values = [v for v in countdown.reachable(nums) if v.denominator == 1]
    target = int(data.draw(st.sampled_from(sorted(values))))
    expr = countdown.solve(nums, target)
    assert expr is not None
    s = countdown.score(ans(expr), nums, target)
    assert s.correct, (expr, s.reason)


@settings(max_examples=40, deadline=None)
@given(small_problem, st.data())
def test_changing_one_number_scores_incorrect(nums, data):
    target = int(next(v for v in countdown.reachable(nums) if v.denominator == 1))
    expr = countdown.solve(nums, target)
    literals = list(re.finditer(r"[0-9]+", expr))
    m = data.draw(st.sampled_from(literals))
    new = int(m.group()) + data.draw(st.sampled_from([-1, 1, 2, 10]))
    changed = expr[: m.start()] + str(abs(new)) + expr[m.end() :]
    if abs(new) == int(m.group()):
        return
    assert not countdown.score(ans(changed), nums, target).correct


# --------------------------------------------------------------------------- data


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"sizes": (3,), "num_range": (1, 9), "target_range": (1, 30)},
        {"sizes": (4,), "num_range": (1, 20), "target_range": (50, 200)},
    ],
)
def test_every_generated_problem_is_solvable(kwargs):
    problems = countdown.generate(150, seed=3, **kwargs)
    assert len(problems) == 150
    sizes = kwargs.get("sizes", (3, 4))
    lo, hi = kwargs.get("num_range", (1, 99))
    tlo, thi = kwargs.get("target_range", (1, 99))
    for p in problems:
        assert len(p["nums"]) in sizes and all(lo <= x <= hi for x in p["nums"])
        assert tlo <= p["target"] <= thi
        expr = countdown.solve(p["nums"], p["target"])
        assert expr is not None, p
        assert countdown.score(ans(expr), p["nums"], p["target"]).correct, (p, expr)


def test_generate_is_deterministic_per_seed():
    assert countdown.generate(20, seed=1) == countdown.generate(20, seed=1)
    assert countdown.generate(20, seed=1) != countdown.generate(20, seed=2)


def test_generate_rejects_impossible_ranges():
    with pytest.raises(ValueError, match="widen the target range"):
        countdown.generate(1, sizes=(3,), num_range=(1, 1), target_range=(50, 60))
    with pytest.raises(ValueError, match="bad ranges"):
        countdown.generate(1, num_range=(9, 1))


def test_load_falls_back_to_generated_problems_offline(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    train = countdown.load("train", n=30, seed=0)
    assert "generating train problems" in capsys.readouterr().out
    test = countdown.load("test", n=30, seed=0)
    assert train != test  # the splits use different seed streams
    assert countdown.load("train", n=30, seed=0) == train
    assert all(set(p) == {"nums", "target"} for p in train)
    with pytest.raises(ValueError, match="split must be"):
        countdown.load("validation")


def test_prompt_states_numbers_target_and_format():
    p = countdown.prompt({"nums": [3, 7, 5], "target": 26})
    assert "[3, 7, 5]" in p and "26" in p
    assert "<think>" in p and "<answer>" in p
    with pytest.raises(ValueError, match="style"):
        countdown.prompt({"nums": [3, 7, 5], "target": 26}, style="boxed")
