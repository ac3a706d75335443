"""arith and word-problems: deterministic generated splits, disjoint by arithmetic, and a strict
last-standalone-number verifier."""

from __future__ import annotations

import pytest

from course_lib.tasks import TASK_NAMES, Score, arith, get_task

TASKS = ("arith", "word-problems")


def key(ex: dict) -> tuple:
    return ex["a"], ex["op"], ex["b"]


@pytest.mark.parametrize("name", TASKS)
def test_registered(name):
    assert name in TASK_NAMES
    task = get_task(name)
    assert task.name == name
    ex = task.load("test", n=1)[0]
    assert task.prompt(ex) == f"{ex['question']} Reply with only the final number."


@pytest.mark.parametrize("name, n_test, n_train", [("arith", 50, 76), ("word-problems", 80, 183)])
def test_split_sizes_and_balance(name, n_test, n_train):
    test, train = arith.load(name, "test"), arith.load(name, "train")
    assert (len(test), len(train)) == (n_test, n_train)
    assert sum(ex["op"] == "+" for ex in test) == n_test // 2  # half additions, half subtractions
    assert {ex["op"] for ex in test[:10]} == {"+", "-"}  # a prefix mixes both


@pytest.mark.parametrize("name", TASKS)
def test_generator_is_deterministic(name):
    for split in ("train", "test"):
        assert arith.load(name, split) == arith.load(name, split)
        assert arith.load(name, split, seed=5) == arith.load(name, split, seed=0)  # splits are fixed
    assert arith.load(name, "test", n=7) == arith.load(name, "test")[:7]  # test: a prefix
    sub = arith.load(name, "train", n=20, seed=1)
    assert sub == arith.load(name, "train", n=20, seed=1)
    assert sub != arith.load(name, "train", n=20, seed=2)
    assert all(ex in arith.load(name, "train") for ex in sub)
    # the loader hands out copies: a caller editing an example changes nothing for the next
    arith.load(name, "test")[0]["question"] = "changed"
    assert arith.load(name, "test")[0]["question"] != "changed"


@pytest.mark.parametrize("name", TASKS)
def test_splits_are_disjoint_by_arithmetic(name):
    test, train = arith.load(name, "test"), arith.load(name, "train")
    assert not {key(ex) for ex in test} & {key(ex) for ex in train}
    assert len({key(ex) for ex in test}) == arith.TEST_SUMS[name]
    assert not {ex["question"] for ex in test} & {ex["question"] for ex in train}
    assert len({ex["question"] for ex in test + train}) == len(test + train)  # no duplicates


@pytest.mark.parametrize("name", TASKS)
def test_gold_answers_are_right_and_small(name):
    for ex in arith.load(name, "test") + arith.load(name, "train"):
        a, op, b = key(ex)
        want = a + b if op == "+" else a - b
        assert ex["answer"] == f"#### {want}"
        assert 0 <= want <= 18
        assert str(a) in ex["question"] and str(b) in ex["question"]
        if name == "arith":
            assert ex["question"] == f"What is {a} {op} {b}?" and 0 <= b <= 9 and 0 <= a <= 9
        else:
            assert 2 <= a <= 9 and 1 <= b <= 9 and (op == "+" or b <= a)


@pytest.mark.parametrize("split, sums, ways", [("test", 40, 2), ("train", 61, 3)])
def test_word_problems_tell_each_sum_several_ways(split, sums, ways):
    rows = arith.load("word-problems", split)
    by_sum: dict[tuple, set] = {}
    for ex in rows:
        by_sum.setdefault(key(ex), set()).add(ex["question"])
    assert len(by_sum) == sums and all(len(q) == ways for q in by_sum.values())
    if split == "test":  # the first 40 test problems are the 40 sums, once each
        assert len({key(ex) for ex in rows[:40]}) == 40


GOLD_12 = {"answer": "#### 12"}

# (reply, correct, well_formed) against the gold 12
VERDICTS = [
    ("12", True, True),
    ("12.", True, True),
    ("7 + 5 = 12", True, True),
    ("The answer is 12 apples.", True, True),
    ("**12**", True, True),
    ("12.0", True, True),
    ("$12", True, True),
    ("Sam has 7 + 5 = 12 apples.\n\nSo Sam has 12 apples now", True, True),
    ("12 is wrong, it is 13", False, True),  # the last number counts
    ("The answer is 12, but 7 + 5 = 13", False, True),
    ("11", False, True),
    ("120", False, True),
    ("1.2", False, True),
    ("-12", False, True),
    ("the 12th", False, False),  # a number glued to a word is not a number
    ("x12", False, False),
    ("12abc", False, False),
    ("1,2", False, False),
    ("twelve", False, False),  # number words are not answers
    ("", False, False),
    ("12 but the 3rd", True, True),  # "3rd" is no number, so 12 is the last one
]


@pytest.mark.parametrize("reply, correct, well_formed", VERDICTS)
def test_verifier_table(reply, correct, well_formed):
    s = arith.score(reply, GOLD_12)
    assert isinstance(s, Score)
    assert (s.correct, s.well_formed) == (correct, well_formed), s.reason
    assert s.reward == (1.0 if correct else 0.0)


@pytest.mark.parametrize(
    "reply, gold, correct",
    [
        ("3 - 8 = -5", "-5", True),
        ("3 - 8 = \u22125", "-5", True),  # Unicode minus sign
        ("8-3=5", "5", True),  # "-3" glued to the 8 is a subtraction, not a negative number
        ("-0", "0", True),
        ("0", "#### 0", True),
        ("5 - 5 = 0 left", 0, True),  # a bare int gold works too
    ],
)
def test_verifier_signs_and_zero(reply, gold, correct):
    assert arith.score(reply, {"answer": gold}).correct is correct


def test_last_number_looks_only_at_the_tail_and_rejects_huge_numbers():
    assert arith.last_number("1 " + "x" * 5000) is None  # the 1 is outside the window
    s = arith.score("9" * 100, GOLD_12)
    assert not s.well_formed and "too long" in s.reason


def test_verifier_rejects_non_strings():
    with pytest.raises(TypeError):
        arith.score(12, GOLD_12)


def test_reference_completions_score_correct():
    for name in TASKS:
        task = get_task(name)
        for ex in task.load("test"):
            gold = ex["answer"].split("#### ")[1]
            assert task.score(f"{gold}", ex).correct
            assert task.score(f"#### {gold}", ex).correct  # GSM8K-style replies too
            assert not task.score(f"{int(gold) + 1}", ex).correct


def test_bad_arguments():
    with pytest.raises(ValueError, match="arith"):
        arith.load("arithmetic")
    with pytest.raises(ValueError, match="split"):
        arith.load("arith", "validation")
    with pytest.raises(ValueError, match="n must be"):
        arith.load("arith", "train", n=-1)
