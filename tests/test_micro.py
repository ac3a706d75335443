"""The micro tasks, their pretraining traces, the character tokenizer and the micro base model
(built by tools/pretrain_micro.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_lib import DATA_DIR, models
from course_lib.rollout import generate_rollouts
from course_lib.tasks import countdown, get_task, gsm8k, micro

TOOL = Path(__file__).resolve().parent.parent / "tools" / "pretrain_micro.py"
_spec = importlib.util.spec_from_file_location("pretrain_micro", TOOL)
P = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(P)

N_TRACES = 1500  # traces per task checked against the real verifiers


@pytest.fixture(scope="module")
def tok():
    return P.build_micro_tokenizer()


def _all_texts():
    """Every prompt and gold answer of both test sets, train samples, and traces."""
    rng = random.Random(0)
    texts = []
    for ex in micro.countdown_examples("test") + micro.countdown_examples("train", n=N_TRACES):
        texts += [micro.countdown_prompt(ex), P.countdown_trace(ex, rng).text]
    for ex in micro.gsm8k_examples("test") + micro.gsm8k_examples("train", n=N_TRACES):
        texts += [micro.gsm8k_prompt(ex), ex["answer"], P.gsm8k_trace(ex, rng).text]
    return texts


# ----------------------------------------------------------------------------------- tokenizer


def test_tokenizer_round_trips_every_micro_text(tok):
    texts = _all_texts()
    encoded = tok(texts).input_ids
    for text, ids in zip(texts, encoded):
        assert tok.unk_token_id not in ids, f"unknown character in {text!r}"
        assert tok.decode(ids) == text


@pytest.mark.parametrize("word", ["<answer>", "</answer>", "####"])
def test_answer_markers_are_single_tokens(tok, word):
    ids = tok(f"1{word}2").input_ids
    assert len(ids) == 3 and tok.convert_ids_to_tokens(ids[1]) == word


def test_tokenizer_pads_left_and_skips_special_tokens(tok):
    batch = tok(["3 7 5>26:", "1>1:"], padding=True)
    assert batch.input_ids[1][:5] == [tok.pad_token_id] * 5
    assert batch.attention_mask[1] == [0] * 5 + [1] * 4
    text = "9 9 9>81:" + tok.eos_token + tok.pad_token
    assert tok.decode(tok(text).input_ids, skip_special_tokens=True) == "9 9 9>81:"


def test_saved_tokenizer_keeps_spaces_and_has_no_config_json():
    _, tok = models.load_micro()
    assert not (DATA_DIR / "micro" / "tokenizer" / "config.json").exists()
    from transformers import PreTrainedTokenizerFast

    assert isinstance(tok, PreTrainedTokenizerFast)
    assert tok.decode(tok("a  b \n c").input_ids) == "a  b \n c"


# ---------------------------------------------------------------------------------- generators


@pytest.mark.parametrize(
    "example, prompt",
    [
        ({"nums": [3, 7, 5], "target": 26}, "3 7 5>26:"),
        ({"nums": [1, 1, 1], "target": 3}, "1 1 1>3:"),
        ({"nums": [9, 9, 9], "target": 90}, "9 9 9>90:"),
    ],
)
def test_countdown_prompt(example, prompt):
    assert micro.countdown_prompt(example) == prompt


@pytest.mark.parametrize(
    "nums, target, expected",
    [
        ((3, 7, 5), 26, "(3*7)+5"),
        ((8, 4, 2), 1, "(8/4)/2"),
        ((9, 1, 5), 40, "5*(9-1)"),
        ((2, 2, 2), 8, "(2*2)*2"),
    ],
)
def test_countdown_solutions_include(nums, target, expected):
    sols = micro.countdown_solutions(nums, target)
    assert expected in sols
    assert all(countdown.score(f"<answer>{s}</answer>", nums, target).correct for s in sols)


def test_countdown_solutions_empty_when_unreachable():
    assert micro.countdown_solutions((1, 1, 1), 99) == []


@pytest.mark.parametrize("load", [micro.countdown_examples, micro.gsm8k_examples])
def test_generators_are_deterministic(load):
    assert load("train", n=50, seed=1) == load("train", n=50, seed=1)
    assert load("train", n=50, seed=1) != load("train", n=50, seed=2)
    assert load("test", seed=0) == load("test", seed=5)  # the test set is fixed
    assert len(load("test")) == micro.TEST_SIZE
    assert load("test", n=7) == load("test")[:7]


def test_countdown_splits_disjoint_and_solvable():
    key = lambda ex: (tuple(sorted(ex["nums"])), ex["target"])  # noqa: E731
    test = micro.countdown_examples("test")
    train = micro.countdown_examples("train")
    assert len({key(ex) for ex in test}) == len(test)
    assert not {key(ex) for ex in train} & {key(ex) for ex in test}
    for ex in test + train[:500]:
        assert all(1 <= x <= 9 for x in ex["nums"]) and 1 <= ex["target"] <= 99
        assert countdown.solve(ex["nums"], ex["target"]) is not None


def test_gsm8k_splits_disjoint_short_and_self_verifying():
    test = micro.gsm8k_examples("test")
    train = micro.gsm8k_examples("train", n=3000)
    assert not {ex["question"] for ex in train} & {ex["question"] for ex in test}
    for ex in test + train:
        assert len(micro.gsm8k_prompt(ex)) < 80
        assert ex["answer"].rsplit("\n", 1)[1].startswith("#### ")
        assert gsm8k.score(ex["answer"], ex["answer"]).correct


@pytest.mark.parametrize("split", ["validation", "", "TEST"])
def test_bad_split_names_the_allowed_ones(split):
    with pytest.raises(ValueError, match="'train', 'test', 'hard'"):
        micro.countdown_examples(split)
    with pytest.raises(ValueError, match="'train', 'test', 'hard'"):
        micro.gsm8k_examples(split)


# -------------------------------------------------------------------------------------- traces


def _traces(task):
    rng = random.Random(1)
    if task == "countdown-micro":
        exs = micro.countdown_examples("train", n=N_TRACES, seed=3)
        return [(ex, P.countdown_trace(ex, rng)) for ex in exs]
    exs = micro.gsm8k_examples("train", n=N_TRACES, seed=3)
    return [(ex, P.gsm8k_trace(ex, rng)) for ex in exs]


@pytest.mark.parametrize("task", P.TASKS)
def test_every_trace_scores_as_intended(task, tok):
    traces = _traces(task)
    for ex, trace in traces:
        assert get_task(task).score(trace.text, ex).correct == trace.correct, (ex, trace)
        assert len(tok(trace.text).input_ids) + 1 <= P.MAX_NEW_TOKENS  # + eos
    share = sum(t.correct for _, t in traces) / len(traces)
    guesses = sum(t.kind == "guess" for _, t in traces) / len(traces)
    assert 0.4 < share < 0.75, share  # partially right by design
    expected = P.P_GUESS_COUNTDOWN if task == "countdown-micro" else P.P_GUESS
    assert abs(guesses - expected) < 0.04, (guesses, expected)


def test_countdown_search_never_fakes_a_hit():
    """Every written step is true arithmetic, except typos, which never show the target."""
    for ex, trace in _traces("countdown-micro"):
        work = trace.text.split("<answer>")[0]
        for attempt in filter(None, work.split(";")):
            shown = int(attempt.rsplit("=", 1)[1])
            if shown == ex["target"]:
                # a shown hit is real: the next thing written is this attempt's answer
                assert trace.correct and trace.text.endswith("</answer>")
                assert work.endswith(attempt)


def test_countdown_search_tries_at_least_min_attempts_before_giving_up():
    """A search that ends on a miss has tried MIN_ATTEMPTS times; the base model copies this
    persistence, and its success rests on it (it rarely aims right at the first try)."""
    gave_up = [t for _, t in _traces("countdown-micro") if t.kind == "search" and not t.correct]
    assert len(gave_up) > 100
    attempts = [t.text.split("<answer>")[0].count(";") + 1 for t in gave_up]
    assert min(attempts) >= P.MIN_ATTEMPTS
    assert max(attempts) > P.MIN_ATTEMPTS  # the budget varies, so wrong answers vary in length


def test_traces_vary_in_length():
    lengths = [len(t.text) for _, t in _traces("countdown-micro")]
    assert min(lengths) < 25 and max(lengths) > 55


# ------------------------------------------------------------------------------------- the model


def test_build_model_size_and_generation_ids(tok):
    model = P.build_micro_model(tok)
    assert 0.8e6 < sum(p.numel() for p in model.parameters()) < 1.3e6
    assert model.generation_config.pad_token_id == tok.pad_token_id
    assert model.generation_config.eos_token_id == tok.eos_token_id


def test_short_pretraining_lowers_loss_and_saves_a_loadable_checkpoint(tmp_path, tok):
    model = P.build_micro_model(tok, hidden=64, layers=2, heads=2)
    model, tok, history = P.pretrain(steps=40, batch_size=16, lr=3e-3, warmup=5, log_every=0, model=model, tokenizer=tok)
    first = sum(h["loss"] for h in history[:5]) / 5
    last = sum(h["loss"] for h in history[-5:]) / 5
    assert last < first - 0.5, (first, last)
    P.save(model, tok, tmp_path)
    loaded, tok2 = models.load_micro(tmp_path)
    ids = tok2(["3 7 5>26:"], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-6)
    assert tok2.padding_side == "left"


def test_save_over_a_checkpoint_replaces_files_without_touching_open_ones(tmp_path, tok):
    """Rebuilding over data/micro must not truncate a file that a running notebook has mapped."""
    from safetensors import safe_open

    P.save(P.build_micro_model(tok, seed=0, hidden=32, layers=1, heads=2), tok, tmp_path)
    weights = tmp_path / "model" / "model.safetensors"
    old_inode = weights.stat().st_ino
    with safe_open(str(weights), framework="pt") as mapped:
        name = next(iter(mapped.keys()))
        before = mapped.get_tensor(name).clone()
        P.save(P.build_micro_model(tok, seed=1, hidden=32, layers=1, heads=2), tok, tmp_path)
        assert torch.equal(mapped.get_tensor(name), before)  # the old file is still intact
    assert weights.stat().st_ino != old_inode
    loaded, _ = models.load_micro(tmp_path)
    assert not torch.equal(loaded.state_dict()[name], before)  # the new weights were loaded
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []


def test_load_micro_names_the_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools/pretrain_micro.py"):
        models.load_micro(tmp_path)


# -------------------------------------------------------------------------- the shipped checkpoint


MANIFEST_KEYS = {"command", "seed", "steps", "wall_time_s", "train_wall_time_s", "torch", "transformers", "eval"}
EVAL_KEYS = {"success_sampled", "success_greedy", "mean_len", "mean_len_correct", "mean_len_incorrect", "truncated"}


@pytest.fixture(scope="module")
def manifest():
    return json.loads((DATA_DIR / "micro" / "manifest.json").read_text())


def test_shipped_manifest_documents_the_base_model(manifest):
    assert set(manifest) >= MANIFEST_KEYS
    assert manifest["command"].startswith("python tools/pretrain_micro.py")
    for task in P.TASKS:
        stats = manifest["eval"][task]
        assert set(stats) >= EVAL_KEYS
        assert 0.15 <= stats["success_sampled"] <= 0.40, (task, stats)  # partially competent: room for RL


def test_shipped_checkpoint_generates_batched_left_padded():
    """Greedy completions of a left-padded batch equal those of each prompt alone."""
    model, tok = models.load_micro()
    prompts = [micro.countdown_prompt(ex) for ex in micro.countdown_examples("test", n=3)]
    prompts += [micro.gsm8k_prompt(ex) for ex in micro.gsm8k_examples("test", n=3)]
    batched = generate_rollouts(model, tok, prompts, 1, temperature=0).texts
    alone = [generate_rollouts(model, tok, [p], 1, temperature=0).texts[0] for p in prompts]
    assert batched == alone
    assert any("<answer>" in t for t in batched[:3]) and any("#### " in t for t in batched[3:])


def test_cli_defaults_are_the_shipped_recipe(manifest, monkeypatch, tmp_path):
    """`python tools/pretrain_micro.py` with no flags rebuilds the shipped checkpoint."""
    seen = {}

    def stop(**kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "pretrain", stop)
    with pytest.raises(KeyboardInterrupt):
        P.main(["--out", str(tmp_path)])
    for key in ("steps", "seed", "batch_size", "lr", "countdown_share"):
        assert seen[key] == manifest[key], key
    assert list(tmp_path.iterdir()) == []  # nothing written before training finished


@pytest.mark.slow
def test_rebuild_matches_manifest(tmp_path, manifest):
    argv = shlex.split(manifest["command"])
    assert argv[:2] == ["python", "tools/pretrain_micro.py"]
    argv = argv[2:]
    assert P.main([*argv, "--out", str(tmp_path)]) == 0
    rebuilt = json.loads((tmp_path / "manifest.json").read_text())
    for task in P.TASKS:
        for key in ("success_sampled", "success_greedy"):
            assert rebuilt["eval"][task][key] == pytest.approx(manifest["eval"][task][key], abs=0.08)


@pytest.mark.parametrize(
    "argv, command",
    [
        ([], "python tools/pretrain_micro.py"),
        (["--steps", "9", "--out", "x"], "python tools/pretrain_micro.py --steps 9"),
        (["--out=x", "--seed", "1"], "python tools/pretrain_micro.py --seed 1"),
    ],
)
def test_manifest_command_leaves_out_the_output_folder(argv, command):
    assert P._command(argv) == command


@pytest.mark.parametrize("args, message", [(["--steps", "0"], "--steps: must be >= 1, got 0"),
                                           (["--countdown-share", "1.5"], "--countdown-share: must be in [0, 1]"),
                                           (["--stpes", "9"], "unrecognized arguments: --stpes")])
def test_the_command_line_refuses_bad_options_in_one_line(args, message, tmp_path):
    """A bad option or value: one line naming it and the help, exit code 2, nothing written."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TOOL.parent.parent), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, str(TOOL), *args, "--out", str(tmp_path / "out")],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("error: ") and message in res.stderr and "tools/pretrain_micro.py --help" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "out").exists()
