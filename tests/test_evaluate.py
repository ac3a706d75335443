"""Evaluation: the unbiased pass@k estimator and the evaluation report on a tiny model."""

import dataclasses
import importlib.util
import json
import math

import pytest
import torch
from loop_fixtures import char_tokenizer, fake_task, tiny_model

from course_lib.evaluate import evaluate, pass_at_k


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (4, 0, 1, 0.0),
        (4, 1, 1, 0.25),
        (4, 4, 1, 1.0),
        (4, 1, 4, 1.0),                  # 4 draws out of 4 must include the correct one
        (4, 1, 2, 0.5),                  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (10, 3, 5, 1 - math.comb(7, 5) / math.comb(10, 5)),
        (200, 10, 100, 1 - math.comb(190, 100) / math.comb(200, 100)),
    ],
)
def test_pass_at_k_table(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_rejects_impossible_input(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_evaluate_reports_accuracy_lengths_and_leaves_rng_alone():
    task, tok, model = fake_task(), char_tokenizer(), tiny_model(seed=0)
    examples = task.load("test", n=6)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    res = evaluate(model, tok, task, examples, samples=4, greedy=True, max_new_tokens=8)
    assert torch.equal(torch.get_rng_state(), state)  # training randomness untouched
    assert res["n_examples"] == 6 and 0 <= res["accuracy"] <= 1
    assert res["pass@1"] == pytest.approx(res["accuracy"])
    assert res["pass@4"] >= res["pass@1"]
    assert 0 <= res["truncated"] <= 1 and "accuracy_greedy" in res
    caps = {m: evaluate(model, tok, task, examples, samples=0, greedy=True, max_new_tokens=m) for m in (1, 8, 32)}
    assert caps[8]["truncated_greedy"] == res["truncated_greedy"] and 0 < res["truncated_greedy"] < 1
    # greedy replies are the same prefixes under every cap: a larger cap cuts no more of them
    assert caps[1]["truncated_greedy"] >= caps[8]["truncated_greedy"] >= caps[32]["truncated_greedy"]
    assert caps[1]["len_greedy"] == 1 and caps[32]["len_greedy"] > caps[8]["len_greedy"]
    lengths = [x for x in (res["len_correct"], res["len_incorrect"]) if x is not None]
    assert all(1 <= x <= 8 for x in lengths)
    again = evaluate(model, tok, task, examples, samples=4, greedy=False, max_new_tokens=8)
    assert again["accuracy"] == res["accuracy"]  # seeded


def test_evaluate_rejects_empty_examples():
    with pytest.raises(ValueError, match="examples"):
        evaluate(tiny_model(), char_tokenizer(), fake_task(), [])


# ------------------------------------------------- evaluating a run as training asked its questions


@pytest.fixture(scope="module")
def chat_policy():
    """A chat-template policy of the smollm2-135m profile: the real SmolLM2 (LoRA attached, loaded
    offline from the GGUF) where ``make smollm2`` fetched it, else a tiny random Qwen2 with the
    offline Qwen tokenizer, whose ChatML template has the same shape."""
    from course_lib import loading, models

    if loading.smollm2_path().is_file() and importlib.util.find_spec("gguf") is not None:
        reachable, loading._hub_reachable = loading._hub_reachable, lambda timeout=3.0: False
        try:
            return models.load_policy("smollm2-135m")
        finally:
            loading._hub_reachable = reachable
    from offline_qwen import load_offline_qwen_tokenizer
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = load_offline_qwen_tokenizer(models.PROFILES["smollm2-135m"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                                         pad_token_id=tok.pad_token_id))
    return model.eval(), tok


def test_the_evaluate_command_and_training_ask_the_question_training_asks(chat_policy, tmp_path, monkeypatch):
    """On a chat-template profile, ``python -m course_lib evaluate`` and training's held-out
    evaluation sample from the same text, the task prompt behind the chat template, under
    autocast in the run's dtype (bf16 here)."""
    from course_lib import evaluate as E
    from course_lib import models
    from course_lib.__main__ import main as cli
    from course_lib.tasks import get_task
    from course_lib.trainer import TrainConfig, train

    model, tok = chat_policy
    cfg = TrainConfig.from_profile("smollm2-135m", task="arith", precision="bf16", steps=0, max_new_tokens=3,
                                   eval_examples=2, eval_samples=1)
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    monkeypatch.setattr(models, "load_policy", lambda *a, **k: chat_policy)
    asked, real = [], E.generate_rollouts

    def recording(model, tokenizer, prompts, *args, **kwargs):
        asked.append((list(prompts), torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu")))
        return real(model, tokenizer, prompts, *args, **kwargs)

    monkeypatch.setattr(E, "generate_rollouts", recording)
    assert cli(["evaluate", "--run-dir", str(tmp_path), "--base", "--no-greedy"]) == 0
    train(cfg, model=model, tokenizer=tok, progress=False)
    task = get_task("arith")
    want = [models.format_prompt(tok, models.PROFILES["smollm2-135m"], task.prompt(ex)) for ex in task.load("test", n=2)]
    assert all(p.startswith("<|im_start|>") for p in want)
    assert asked == [(want, torch.bfloat16), (want, torch.bfloat16)]  # the command, then training
    # reproduce's base sweep, its repeat evaluation and pass@k ask the same way
    from course_lib import reproduce
    from course_lib.plans import Settings
    asked.clear()
    st = Settings(steps=0, eval_every=0, eval_examples=2, eval_samples=1, sweep_samples=1, pass_k=2, pass_k_examples=2,
                  pass_k_split="test")
    out = reproduce.measure(model, tok, task, st, cfg, seed=0)
    assert {"temperature_sweep", "eval_repeat", "pass_at_k"} <= out.keys() and len(asked) >= 3
    assert all(a == (want, torch.bfloat16) for a in asked), asked


# --- the format check run before training -------------------------------------------------------

GSM_GOLD = {"question": "q", "answer": "#### 7"}


@pytest.mark.parametrize("texts, truncated, expected", [
    # every answer boxed, stopping before the cap, one answer each
    (["so \\boxed{7}", "\\boxed{6}"], [False, False], dict(well_formed=1.0, ended=1.0, multiple=0.0, accuracy=0.5, warn=False)),
    # a base model that goes on after answering: two marked answers, the verifier reads the last
    (["\\boxed{7}\nQuestion: ... \\boxed{3}", "\\boxed{7}"], [False, False], dict(well_formed=1.0, ended=1.0, multiple=0.5, accuracy=0.5, warn=False)),
    # cut at the cap without an answer: format failures dominate
    (["7 is the answer", "let me think"], [False, True], dict(well_formed=0.0, ended=0.5, multiple=0.0, accuracy=0.0, warn=True)),
    # half unmarked: not yet "dominating"
    (["#### 7", "7"], [False, False], dict(well_formed=0.5, ended=1.0, multiple=0.0, accuracy=0.5, warn=False)),
])
def test_format_check_shares(monkeypatch, texts, truncated, expected):
    from types import SimpleNamespace

    from course_lib import evaluate as E
    from course_lib.tasks import get_task

    roll = SimpleNamespace(texts=texts, truncated=torch.tensor(truncated))
    monkeypatch.setattr(E, "generate_rollouts", lambda *a, **k: roll)
    fc = E.format_check(None, None, get_task("gsm8k"), [GSM_GOLD], samples=len(texts), max_new_tokens=16)
    got = {k: fc[k] for k in ("well_formed", "ended", "multiple", "accuracy")}
    assert got == {k: v for k, v in expected.items() if k != "warn"}
    assert (fc["warning"] is not None) == expected["warn"]
    report = E.format_report(fc)
    assert report.startswith(f"format check on {len(texts)} completions") and ("warning" in report) == expected["warn"]
    if expected["warn"]:
        assert "format failures dominate" in fc["warning"] and "\n" not in fc["warning"]


def test_format_check_on_the_micro_model_and_its_verifier():
    """End to end on the bundled micro model: real sampling, the real countdown-micro verifier,
    three completions kept with their verdicts; the caller's random state is left alone."""
    from course_lib import DATA_DIR
    from course_lib.evaluate import format_check, show_completions
    from course_lib.models import load_policy
    from course_lib.tasks import get_task

    if not (DATA_DIR / "micro" / "model" / "config.json").exists():
        pytest.skip("no micro checkpoint in data/micro")
    model, tok = load_policy("micro")
    task = get_task("countdown-micro")
    examples = task.load("test", n=6)
    state = torch.get_rng_state()
    fc = format_check(model, tok, task, examples, samples=2, max_new_tokens=64, temperature=1.0)
    assert torch.equal(state, torch.get_rng_state())
    assert fc["n"] == 12 and len(fc["shown"]) == 3
    for key in ("well_formed", "ended", "multiple", "accuracy"):
        assert 0.0 <= fc[key] <= 1.0
    assert fc["well_formed"] >= 0.5 and fc["warning"] is None  # the micro base is built to answer in format
    text = show_completions(fc)
    assert text.count("[") >= 3 and all(v in text for v in ("[1] ", "[2] ", "[3] ")) and text.count("\n") >= 2
    assert [r["prompt"] for r in fc["shown"]] == [task.prompt(e) for e in examples[:3]]
    again = format_check(model, tok, task, examples, samples=2, max_new_tokens=64, temperature=1.0)
    assert [r["completion"] for r in again["shown"]] == [r["completion"] for r in fc["shown"]]  # seeded
