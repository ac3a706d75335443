"""Held out means held out: no test or hard problem shares its arithmetic (numbers, in any order,
and answer) with a train problem or with the pool that pretrained the micro model; the pools that
built the shipped micro model are unchanged; the hard split is stored, fixed and what it claims."""

from __future__ import annotations

import hashlib
import json

import pytest

from course_lib.evaluate import pass_at_k_curve
from course_lib.tasks import arith, countdown, get_task, gsm8k, micro


def _arith_signature(ex: dict) -> tuple:
    return arith.signature(ex["a"], ex["op"], ex["b"])


SIGNATURE = {
    "countdown-micro": micro.countdown_signature,
    "gsm8k-micro": micro.gsm8k_signature,
    "arith": _arith_signature,
    "word-problems": _arith_signature,
}
MICRO = ("countdown-micro", "gsm8k-micro")


def _signatures(name: str, split: str, seed: int = 0) -> set:
    return {SIGNATURE[name](ex) for ex in get_task(name).load(split, seed=seed)}


def _pretraining_pool(name: str) -> set:
    """What course_lib.pretrain trains the micro model on: each task's train split at seed 0."""
    return _signatures(name, "train", seed=0)


@pytest.mark.parametrize("name", list(SIGNATURE))
@pytest.mark.parametrize("seed", [0, 1])
def test_no_test_problem_shares_its_arithmetic_with_training(name, seed):
    test, train = _signatures(name, "test"), _signatures(name, "train", seed=seed)
    shared = test & train
    assert not shared, f"{name}: {len(shared)} test signatures also in train (seed {seed}), e.g. {sorted(shared)[:3]}"


def _stored(name: str) -> dict:
    return json.loads(micro.HARD_FILE.read_text())["tasks"][name]


def _hard_signatures(name: str) -> set:
    """The hard split's signatures; an empty set where the stored search found no hard split."""
    return {SIGNATURE[name](ex) for ex in _stored(name)["problems"]}


@pytest.mark.parametrize("name", MICRO)
def test_test_and_hard_splits_are_outside_the_pretraining_pool_and_apart(name):
    pool, test, hard = _pretraining_pool(name), _signatures(name, "test"), _hard_signatures(name)
    assert not test & pool and not hard & pool
    assert not test & hard
    assert len(hard) == len(_stored(name)["problems"])  # distinct problems


@pytest.mark.parametrize("name", MICRO)
def test_no_hard_problem_is_in_a_train_split_of_another_seed(name):
    assert not _hard_signatures(name) & _signatures(name, "train", seed=3)


@pytest.mark.parametrize(
    "a, op, b, same_as",
    [(7, "+", 5, (5, "+", 7)), (5, "+", 0, (5, "-", 0)), (3, "+", 3, (3, "+", 3))],
)
def test_arith_signature_ignores_order(a, op, b, same_as):
    assert arith.signature(a, op, b) == arith.signature(*same_as)


@pytest.mark.parametrize(
    "a, b",
    [
        ({"question": "Tom has 2 bags of 3 pens, eats 1. How many left?", "answer": "2*3=6,6-1=5\n#### 5"},
         {"question": "A box holds 3 eggs. Mia fills 1, has 2 more. Total?", "answer": "3*1=3,3+2=5\n#### 5"}),
    ],
)
def test_gsm8k_signature_is_numbers_and_answer_whatever_the_words(a, b):
    assert micro.gsm8k_signature(a) == micro.gsm8k_signature(b) == ((1, 2, 3), "5")


def test_the_pools_that_built_the_shipped_micro_model_are_unchanged():
    """Re-splitting by arithmetic left the pretraining pools as they were (digests of the pools
    before the change), so data/micro/model needs no rebuild."""
    pool = micro.gsm8k_examples("train", seed=0)
    text = "\n".join(p["question"] + "|" + p["answer"] for p in pool)
    assert hashlib.sha256(text.encode()).hexdigest() == \
        "00f41316a51a9be7d4faaefe091be38ceb95ba3611b0ce264a801affcdaee191"
    train = micro.countdown_examples("train", seed=0)  # what pretraining and RL read
    assert len(train) == 9214
    assert hashlib.sha256(json.dumps(train).encode()).hexdigest() == \
        "0fb35e3c223841f4a02344128c950b63596196ee8b0c18fc6f99b86a4f84f6ab"


@pytest.mark.parametrize("name", MICRO)
def test_hard_split_is_fixed_solvable_and_loads_through_the_task(name):
    task, stored = get_task(name), _stored(name)
    if not stored["problems"]:  # the search found too few: loading says so instead of a tiny split
        assert stored["why_empty"]
        with pytest.raises(ValueError, match=f"{name} has no hard split: only"):
            task.load("hard")
        return
    hard = task.load("hard")
    assert hard == stored["problems"]
    assert task.load("hard", seed=7) == hard and task.load("hard", n=5) == hard[:5]
    assert get_task(f"{name}-random").load("hard") == hard
    for ex in hard:
        if name == "countdown-micro":
            solution = micro.countdown_solutions(ex["nums"], ex["target"])[0]
            assert countdown.score(f"<answer>{solution}</answer>", ex["nums"], ex["target"]).correct
        else:
            assert gsm8k.score(ex["answer"], ex["answer"]).correct


@pytest.mark.parametrize("name", MICRO)
def test_stored_hard_split_records_its_choice_and_a_base_that_does_not_saturate(name):
    """The file carries the command, the selection and the confirmation on fresh samples; the
    stored pass@k follows from the stored counts and stays below the ceiling at k = 256."""
    entry = _stored(name)
    assert entry["command"].startswith("OMP_NUM_THREADS=1 python benchmarks/select_hard.py")
    assert all(k <= entry["selection"]["max_right"] for k in entry["selection"]["right_in_selection"])
    if not entry["problems"]:
        return
    assert entry["selection"]["seed"] != entry["confirmation"]["seed"]
    counts = entry["confirmation"]["correct_per_problem"]
    assert len(counts) == len(entry["problems"]) >= 50
    curve = pass_at_k_curve(counts, entry["confirmation"]["samples"], (1, 16, 256))
    assert {str(k): round(v, 4) for k, v in curve.items()} == entry["confirmation"]["pass_at_k"]
    assert curve[256] < 1.0 and curve[16] <= 0.5  # the test split: 1.0 by k = 128-256
