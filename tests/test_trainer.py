"""The one loop: every objective runs, metrics are logged, resume is exact, bad input is refused.

All runs use a tiny random Qwen2 and a fake task (tests/loop_fixtures.py), a few steps each.
"""

import json

import pytest
import torch
from loop_fixtures import char_tokenizer, fake_task, tiny_model

import course_lib.trainer as trainer
from course_lib.trainer import OBJECTIVES, TrainConfig, completion_weights, train

SMALL = dict(prompts_per_step=4, group_size=4, max_new_tokens=8, micro_batch_size=8,
             eval_every=2, eval_examples=4, eval_samples=2, learning_rate=1e-3)


def run(objective="grpo", steps=2, **kw):
    cfg = TrainConfig(objective=objective, steps=steps, **{**SMALL, **{k: v for k, v in kw.items()
                                                                    if k not in ("run_dir", "resume", "model", "callback")}})
    model = kw.get("model") or tiny_model(seed=0)
    return train(cfg, run_dir=kw.get("run_dir"), resume=kw.get("resume", False), model=model,
                 tokenizer=char_tokenizer(), task=fake_task(), callback=kw.get("callback"), progress=False)


REQUIRED = {"step", "reward_mean", "accuracy", "len_correct", "len_incorrect", "loss", "truncated",
            "zero_var_groups", "clip_frac", "kl", "entropy", "grad_norm", "seconds_gen",
            "seconds_score", "seconds_train"}


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_runs_through_the_same_loop(objective, tmp_path):
    res = run(objective, steps=2, run_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert set(rows[0]) >= REQUIRED
    assert (rows[0]["kl"] is not None) == (objective == "grpo")
    assert [e["step"] for e in res.evals] == [0, 2]  # before training and at the end
    assert (tmp_path / "checkpoint.pt").exists()


def test_training_changes_the_weights_and_skips_zero_weight_sequences():
    model = tiny_model(seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    res = run("sft+", steps=1, model=model)
    m = res.history[0]
    n_correct = round(m["accuracy"] * 16)
    assert m["n_backward"] == n_correct  # only positively weighted samples go through backward
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed == (n_correct > 0)


def test_resume_is_exact(tmp_path):
    """Stopped after step 2 and resumed to step 4 == 4 steps in one go (KL on, mu = 2)."""
    kw = dict(objective="grpo", beta=0.05, mu=2, warmup_steps=2, checkpoint_every=1)
    full = run(steps=4, run_dir=tmp_path / "full", **kw)
    run(steps=2, run_dir=tmp_path / "split", **kw)
    resumed = run(steps=4, run_dir=tmp_path / "split", resume=True, **kw)
    for a, b in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.allclose(a, b, atol=1e-6, rtol=0)
    drop = ("seconds_gen", "seconds_score", "seconds_train", "cpu_seconds")
    strip = [{k: v for k, v in r.items() if k not in drop} for r in full.history]
    assert strip == [{k: v for k, v in r.items() if k not in drop} for r in resumed.history]
    assert [e["accuracy"] for e in full.evals] == [e["accuracy"] for e in resumed.evals]
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]


def test_keyboard_interrupt_saves_a_checkpoint_and_resumes(tmp_path):
    def stop_at_2(metrics, history):
        if metrics["step"] == 2:
            raise KeyboardInterrupt

    res = run(steps=3, run_dir=tmp_path, callback=stop_at_2)
    assert res.interrupted and len(res.history) == 2
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 2
    res2 = run(steps=3, run_dir=tmp_path, resume=True)
    assert [r["step"] for r in res2.history] == [1, 2, 3]


def test_non_finite_updates_are_skipped_then_stop(monkeypatch):
    real = trainer.objective_loss
    monkeypatch.setattr(trainer, "objective_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    model = tiny_model(seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(FloatingPointError, match="non-finite"):
        run("sft+-", steps=10, max_nonfinite=3, model=model)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_all_truncated_completions_are_handled():
    res = run("sft+-", steps=1, max_new_tokens=1)
    assert res.history[0]["truncated"] >= 0.5 and res.history[0]["len_mean"] == 1


def test_guard_stops_a_run_with_zero_reward():
    class Never:
        name = "never"
        load = staticmethod(fake_task().load)
        prompt = staticmethod(fake_task().prompt)

        @staticmethod
        def score(text, ex):
            return fake_task().score("", {"a": "X"})

    cfg = TrainConfig(objective="grpo-no-kl", steps=30, guard=True, **{**SMALL, "eval_examples": 0})
    res = train(cfg, model=tiny_model(), tokenizer=char_tokenizer(), task=Never(), progress=False)
    assert res.stopped == "reward 0 for 10 steps in a row" and len(res.history) == 10


def test_objectives_differ_only_in_weights():
    rewards = torch.tensor([1.0, 0, 0, 0, 1, 1, 1, 1])
    correct = rewards.bool()
    w = {o: completion_weights(TrainConfig(objective=o, group_size=4, prompts_per_step=2,
                                           micro_batch_size=8), rewards, correct).tolist() for o in OBJECTIVES}
    assert w["grpo"] == w["grpo-no-kl"]
    assert w["grpo"][4:] == [0, 0, 0, 0]  # all-correct group: no signal for GRPO
    assert w["sft+"] == [1, 0, 0, 0, 1, 1, 1, 1]
    assert w["sft-"] == [0, -1, -1, -1, 0, 0, 0, 0]
    assert w["sft+-"] == [1, -1, -1, -1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(objective="ppo"), "objective"),
        (dict(aggregation="mean"), "aggregation"),
        (dict(objective="grpo", group_size=1), "group_size"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(prompts_per_step=3, group_size=4, micro_batch_size=8), "micro_batch_size"),
        (dict(objective="sft+-", beta=0.1), "beta"),
        (dict(top_p=0.0), "top_p"),
        (dict(advantage_scale="max"), "advantage_scale"),
        (dict(learning_rate=0.0), "learning_rate"),
    ],
)
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}=.*allowed"):
        TrainConfig(**kwargs)


def test_command_line_train_then_evaluate(tmp_path, monkeypatch):
    import course_lib.models
    import course_lib.tasks
    from course_lib.evaluate import main as evaluate_main
    from course_lib.trainer import main as train_main

    monkeypatch.setattr(course_lib.models, "load_policy", lambda *a, **k: (tiny_model(), char_tokenizer()))
    monkeypatch.setattr(course_lib.tasks, "get_task", lambda name: fake_task())
    args = ["--profile", "micro", "--task", "countdown-micro", "--objective", "sft+-", "--balance",
            "--steps", "2", "--seed", "1", "--run-dir", str(tmp_path), "--checkpoint-every", "1",
            "--prompts-per-step", "4", "--group-size", "4", "--micro-batch-size", "8",
            "--max-new-tokens", "8", "--eval-examples", "4", "--eval-samples", "2", "--no-progress"]
    assert train_main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"step", "reward_mean", "accuracy", "len_correct", "len_incorrect", "loss"} <= set(rows[0])
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["balance"] is True and cfg["objective"] == "sft+-" and cfg["seed"] == 1
    assert train_main(args[:-1] + ["--no-progress", "--resume", "--steps", "3"]) == 0
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    assert evaluate_main(["--run-dir", str(tmp_path), "--samples", "2", "--no-greedy"]) == 0
    assert 0 <= json.loads((tmp_path / "evaluate.json").read_text())["accuracy"] <= 1


def test_lora_model_trains_only_adapters_and_uses_them_off_as_reference():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_model(seed=0), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    res = run("grpo", steps=2, beta=0.1, model=model, eval_examples=0)
    assert all(r["kl"] is not None and r["kl"] >= 0 for r in res.history)
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], v) for n, v in frozen.items())
    if any(r["n_backward"] for r in res.history):
        assert any(not torch.equal(params[n], v) for n, v in lora.items())
