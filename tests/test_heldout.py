"""Held out means held out: no test or hard problem shares its arithmetic (numbers, in any order,
and answer) with a train problem or with the pool that pretrained the micro model; the pools that
built the shipped micro model are unchanged; the hard split is stored, fixed and what it claims."""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path

import pytest

from course_lib.evaluate import pass_at_k_curve
from course_lib.tasks import arith, countdown, get_task, gsm8k, micro

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import select_hard  # noqa: E402


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
    """What tools/pretrain_micro.py trains the micro model on: each task's train split at seed 0."""
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
    assert "fair to the base" in entry["distribution"].lower()  # which distribution, and why it is fair
    assert entry["selection"]["seed"] != entry["confirmation"]["seed"]
    counts = entry["confirmation"]["correct_per_problem"]
    assert len(counts) == len(entry["problems"]) >= 50
    curve = pass_at_k_curve(counts, entry["confirmation"]["samples"], (1, 16, 256))
    assert {str(k): round(v, 4) for k, v in curve.items()} == entry["confirmation"]["pass_at_k"]
    assert all(0 <= c <= entry["confirmation"]["samples"] for c in counts)
    assert 0.0 < curve[256] <= 0.7  # the test split: 1.0 by k = 128-256; never solved at all says nothing


def _recorded_args(entry: dict) -> dict:
    """The options of the command recorded with a task's entry, with select_hard's defaults."""
    args = shlex.split(entry["command"].split("select_hard.py", 1)[1])
    opts = {"--candidates": "2000", "--keep": "100"}
    for i, a in enumerate(args):
        if a in opts:
            opts[a] = args[i + 1]
    return {"n": int(opts["--candidates"]), "keep": int(opts["--keep"])}


@pytest.mark.parametrize("name", MICRO)
def test_stored_hard_split_is_what_its_recorded_command_selects_from(name):
    """Deterministic: the candidates of the recorded command, made again, hold the stored problems
    in the stored order, and none of them shares its arithmetic with the test or pretraining pool."""
    entry = _stored(name)
    if not entry["problems"]:
        return
    opts = _recorded_args(entry)
    make = {"countdown-micro": select_hard.countdown_candidates, "gsm8k-micro": select_hard.gsm8k_candidates}[name]
    candidates = make(opts["n"])
    assert candidates == make(opts["n"]) and entry["candidates"] == len(candidates)
    position = {SIGNATURE[name](c): i for i, c in enumerate(candidates)}
    where = [position.get(SIGNATURE[name](p)) for p in entry["problems"]]
    assert None not in where and where == sorted(where)
    assert json.loads(json.dumps([candidates[i] for i in where])) == entry["problems"]  # as stored
    held = _pretraining_pool(name) | _signatures(name, "test")
    assert not {SIGNATURE[name](c) for c in candidates} & held


@pytest.mark.parametrize("nums, target, inside", [
    ([0, 3, 4], 12, False),  # a 0 among the numbers: outside the task's range
    ([9, 8, 7], 504, False),  # a target above 99
    ([3, 4, 5], 17, True),  # inside the range: in train or test, never a candidate
])
def test_countdown_hard_candidates_lie_outside_the_task_range(nums, target, inside):
    candidates = {micro.countdown_signature(c) for c in select_hard.countdown_candidates(10_000)}
    key = micro.countdown_signature({"nums": nums, "target": target})
    assert (key in candidates) is not inside


@pytest.mark.parametrize("argv, message", [
    (["--select-seed", "3", "--confirm-seed", "3"], "must differ"),
    (["--stages", "16", "0"], "--stages must be positive"),
])
def test_select_hard_refuses_bad_options_with_one_line(argv, message, capsys):
    assert select_hard.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
