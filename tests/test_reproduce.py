"""The reproduction runner: outputs with the documented keys, skip/resume per run, t-intervals.

The runs use the tiny random Qwen2 and the fake task of tests/loop_fixtures.py (a few steps
each), so the numbers mean nothing; what is tested is the bookkeeping a learner relies on.
"""

import dataclasses
import json
import math
from collections import Counter

import pytest
import torch
from loop_fixtures import char_tokenizer, fake_task, tiny_model

from course_lib import models, plans, report, stats
from course_lib import reproduce as R

TINY = dict(prompts_per_step=4, group_size=4, max_new_tokens=8, micro_batch_size=8, learning_rate=1e-3)
BUDGET = plans.Settings(steps=2, eval_every=1, eval_examples=4, eval_samples=2, pass_k=4, pass_k_examples=3)
RUN_KEYS = {"task", "objective", "seed", "aggregation", "base_accuracy", "final_accuracy", "len_correct",
            "len_incorrect", "steps", "wall_s", "gain"}
CI_KEYS = {"mean", "ci_low", "ci_high", "half_width", "std", "n"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices: a second thread only adds synchronisation (10x slower on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reproduce(out, specs):
    model = tiny_model()
    object.__setattr__(model, "course_weights", "tiny test model")  # as load_policy names the weights it loaded
    return R.run_reproduction(out, profile="micro", specs=specs, settings=BUDGET, extra=TINY,
                              model=model, tokenizer=char_tokenizer(),
                              get_task=lambda name: fake_task(), progress=False)


@pytest.fixture(scope="module")
def tiny_reproduction(tmp_path_factory):
    """Two objectives, one task, two seeds, and GRPO with token aggregation (ablation)."""
    out = tmp_path_factory.mktemp("repro")
    specs = plans.plan_runs(["countdown-micro"], ["grpo", "sft+-"], [0, 1], ablation_aggregations=("sequence", "token"))
    res = reproduce(out, specs)
    return out, specs, res


def test_tiny_reproduction_writes_every_output_with_the_documented_keys(tiny_reproduction):
    out, specs, res = tiny_reproduction
    assert res["status"] == ["ran"] * len(specs)
    for name in ("results.json", "results.md", "accuracy_over_steps.png", "lengths_over_steps.png",
                 "aggregation_ablation.png", "pass_at_k.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "results.json").read_text())
    assert len(data["runs"]) == len(specs) == 6
    for run in data["runs"]:
        assert set(run) >= RUN_KEYS
        assert run["steps"] == BUDGET.steps
        assert 0 <= run["final_accuracy"] <= 1 and 0 <= run["base_accuracy"] <= 1
    assert {(r["objective"], r["aggregation"]) for r in data["runs"]} == {
        ("grpo", "sequence"), ("sft+-", "sequence"), ("grpo", "token")}
    assert {(s["objective"], s["n"]) for s in data["summary"]} == {("grpo", 2), ("sft+-", 2)}
    for s in data["summary"]:
        assert set(s["final_accuracy"]) == CI_KEYS
        assert s["final_accuracy"]["ci_low"] <= s["final_accuracy"]["mean"] <= s["final_accuracy"]["ci_high"]
    assert {s["aggregation"] for s in data["ablation"]} == {"sequence", "token"}
    md = (out / "results.md").read_text()
    assert "| countdown-micro | sft+- | 2 |" in md and "Aggregation ablation" in md and "TOST" in md
    assert "The paper's reported numbers" in md  # labelled and apart
    # every result names the weights it started from (the SmolLM2 runs: hub or the Q4_1 GGUF)
    assert data["weights"] == ["tiny test model"] and {r["weights"] for r in data["runs"]} == {"tiny test model"}
    assert "Weights: tiny test model." in md
    (eq,) = data["equivalence"]
    assert set(eq) >= {"task", "objective", "reference", "margin", "diff", "ci_low", "ci_high", "equivalent"}
    assert eq["objective"] == "sft+-" and eq["reference"] == "grpo" and isinstance(eq["equivalent"], bool)
    curve = next(c for c in data["curves"] if c["objective"] == "grpo" and c["aggregation"] == "sequence")
    assert len(curve["accuracy"]) == BUDGET.steps and curve["seeds"] == 2
    assert curve["eval_step"] == [0, 1, 2] and len(curve["k_correct_hist"][0]) <= 5  # k = 0..G
    assert sum(curve["k_correct_hist"][0]) == 2 * 4  # 4 groups per step, 2 seeds
    ks = {(r["model"], r["k"]) for r in data["pass_at_k"]}
    assert ks == {(m, k) for m in ("base", "grpo", "sft+-") for k in (1, 2, 4)}  # k <= samples
    for r in data["pass_at_k"]:
        assert set(r) >= {"task", "model", "k", "pass_at_k"} and 0 <= r["pass_at_k"] <= 1


def test_every_objective_starts_from_the_same_base_and_is_evaluated_the_same_way(tiny_reproduction):
    _, _, res = tiny_reproduction
    base = {}
    for run in res["runs"]:
        base.setdefault(run["seed"], set()).add(run["base_accuracy"])
    assert all(len(v) == 1 for v in base.values())  # paired: one base evaluation per seed


def test_rerun_skips_finished_runs_and_reruns_only_a_removed_one(tiny_reproduction):
    out, specs, _ = tiny_reproduction
    removed = specs[1]
    kept = out / "runs" / specs[0].dirname / "metrics.jsonl"
    mtime = kept.stat().st_mtime_ns
    import shutil

    shutil.rmtree(out / "runs" / removed.dirname)
    res = reproduce(out, specs)
    assert res["status"] == ["skipped" if s != removed else "ran" for s in specs]
    assert kept.stat().st_mtime_ns == mtime  # untouched
    assert (out / "runs" / removed.dirname / "result.json").exists()
    assert len(json.loads((out / "results.json").read_text())["runs"]) == len(specs)


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    spec = plans.RunSpec("countdown-micro", "grpo", 0)
    short = plans.Settings(steps=1, eval_every=1, eval_examples=4, eval_samples=2)
    R.run_reproduction(tmp_path, profile="micro", specs=[spec], settings=short, extra=TINY, model=tiny_model(),
                       tokenizer=char_tokenizer(), get_task=lambda name: fake_task(), progress=False)
    (tmp_path / "runs" / spec.dirname / R.RESULT).unlink()  # as if killed after its checkpoint
    res = reproduce(tmp_path, [spec])  # same settings, 2 steps: continues from step 1
    assert res["status"] == ["resumed"]
    assert res["runs"][0]["steps"] == 2


def test_a_killed_run_keeps_the_time_it_ran(tmp_path, monkeypatch):
    """A process killed mid-run (a job killed, a machine shut down) writes nothing at its end: the run's wall
    time so far is on disk after every step, and the resumed run adds to it."""
    from course_lib import trainer

    real = trainer.train

    def killed(cfg, **kw):  # the process dies after the first step's callback
        def cb(m, history):
            kw["callback"](m, history)
            raise SystemExit("killed")
        return real(cfg, **{**kw, "callback": cb})

    spec = plans.RunSpec("countdown-micro", "grpo", 0)
    short = plans.Settings(steps=2, eval_every=1, eval_examples=4, eval_samples=2)
    kw = dict(profile="micro", specs=[spec], settings=short, extra={**TINY, "checkpoint_every": 1}, model=tiny_model(),
              tokenizer=char_tokenizer(), get_task=lambda name: fake_task(), progress=False)
    monkeypatch.setattr(trainer, "train", killed)
    with pytest.raises(SystemExit):
        R.run_reproduction(tmp_path, **kw)
    run_dir = tmp_path / "runs" / spec.dirname
    before = json.loads((run_dir / "wall_s.json").read_text())["wall_s"]
    assert before > 0 and not (run_dir / R.RESULT).exists()
    monkeypatch.setattr(trainer, "train", real)
    res = R.run_reproduction(tmp_path, **kw)
    assert res["status"] == ["resumed"] and res["runs"][0]["wall_s"] >= round(before, 1)


def test_a_record_counts_at_least_the_time_of_its_steps():
    history = [{"step": i, "seconds_gen": 2.0, "seconds_train": 1.0} for i in (1, 2)]
    spec = plans.RunSpec("t", "grpo", 0)
    assert R.run_record(spec, history, [], wall_s=0.5)["wall_s"] == 6.0  # a time lost to a kill
    assert R.run_record(spec, history, [], wall_s=9.0)["wall_s"] == 9.0  # evaluations included


def test_plan_runs_adds_each_ablation_run_once():
    specs = plans.plan_runs(["a", "b"], ["grpo", "sft+"], [0, 1, 2], ablation_tasks=["a"])
    assert len(specs) == 2 * 2 * 3 + 2 * 3  # token and constant on task a; sequence is a main run
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)  # seed by seed
    assert len(set(specs)) == len(specs)
    assert {s.aggregation for s in specs if s.ablation} == {"token", "constant"}
    assert len({s.dirname for s in specs}) == len(specs)


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds"), (["--objectives", "ppo"], "invalid choice"), (["--budget", "huge"], "budget"),
    (["--steps", "-3"], "steps"), (["--profile", "gpt9"], "unknown profile"), (["--workers", "0"], "--workers"),
])
def test_command_line_refuses_bad_options(args, message, capsys, tmp_path):
    from course_lib.__main__ import main

    assert main(["reproduce", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x").exists()  # nothing written before the inputs were checked


def test_reproduce_refuses_run_dirs_made_with_other_settings(tiny_reproduction):
    out, specs, _ = tiny_reproduction
    configs = [plans.make_config("micro", s, dataclasses.replace(BUDGET, eval_examples=3), TINY) for s in specs]
    conflicts = R.check_run_dirs(out, specs, configs, overwrite=False)
    assert conflicts == [s.dirname for s in specs]
    assert (out / "runs" / specs[0].dirname / "checkpoint.pt").exists()  # nothing touched


def test_report_only_rebuilds_the_outputs_without_training(tiny_reproduction):
    out, specs, _ = tiny_reproduction
    (out / "results.md").unlink()
    extra = [plans.RunSpec("countdown-micro", "sft+", 0)]  # not run yet: stays pending
    res = R.run_reproduction(out, profile="micro", specs=specs + extra, settings=BUDGET, extra=TINY,
                             progress=False, train=False)
    assert res["status"] == ["skipped"] * len(specs) + ["pending"]
    assert (out / "results.md").exists() and res["finished_runs"] == len(specs)
    assert res["weights"] == ["tiny test model"]  # rebuilt from the run records, not from a loaded model


def test_notebook_08_plan_has_its_arms_seed_by_seed():
    specs = plans.plan_beyond(range(2))
    assert len(specs) == 2 * len(plans.BEYOND_ARMS) and [s.seed for s in specs] == sorted(s.seed for s in specs)
    assert {(s.objective, s.mu) for s in specs} >= {("gspo", 4), ("gspo-eps", 4), ("grpo", 4), ("reinforce-rej", 1)}
    assert len({s.dirname for s in specs}) == len(specs)  # mu is part of the run directory
    assert plans.RunSpec("countdown-micro", "grpo", 0).dirname == "countdown-micro/grpo_sequence/seed0"
    assert plans.make_config("micro", plans.RunSpec("countdown-micro", "gspo", 0, mu=4), BUDGET).mu == 4


def test_random_rewards_keep_the_verdict():
    from course_lib.tasks import get_task

    real, fake = get_task("countdown-micro"), get_task("countdown-micro-random")
    examples = real.load("test", n=40)
    answers = [f"<answer>{e['nums'][0]}+{e['nums'][1]}</answer>" for e in examples]
    rewards = [fake.score(a, e).reward for a, e in zip(answers, examples)]
    assert [fake.score(a, e).correct for a, e in zip(answers, examples)] == [
        real.score(a, e).correct for a, e in zip(answers, examples)]
    assert 0.25 < sum(rewards) / len(rewards) < 0.75 and set(rewards) == {0.0, 1.0}  # a coin, not the verdict


def test_tables_tell_arms_apart_by_mu():
    # notebook 08's file holds grpo at mu = 1 and mu = 4 on one task: two rows, each labelled
    runs = [dict(task="t", objective=o, aggregation="sequence", mu=mu, seed=s, final_accuracy=acc + s / 100,
                 base_accuracy=0.2) for o, mu, acc in (("grpo", 1, 0.3), ("grpo", 4, 0.25), ("gspo", 4, 0.27))
            for s in range(3)]
    results = {"summary": stats.summarize(runs), "equivalence": stats.equivalence(runs, 0.05)}
    rows = [line.split(" | ")[1] for line in report.summary_table(results).splitlines()[2:]]
    assert rows == ["grpo", "grpo (mu 4)", "gspo (clip 3e-4/4e-4, mu 4)"]
    (eq,) = results["equivalence"]  # gspo at mu 4 is paired with grpo at mu 4, not at mu 1
    assert eq["objective"] == "gspo" and eq["mu"] == 4 and eq["diff"] == pytest.approx(0.02)
    assert "| t | gspo (clip 3e-4/4e-4, mu 4) | 3 |" in report.equivalence_table(results)


def test_a_run_record_keeps_the_accuracy_of_every_held_out_evaluation_by_step():
    # curves compared seed by seed (does one objective fall behind another later?) need every
    # evaluation of every run, not only the means over seeds of results["curves"]
    evals = [{"step": 0, "accuracy": 0.2}, {"step": 25, "accuracy": 0.3}, {"step": 50, "accuracy": 0.35}]
    rec = R.run_record(plans.RunSpec("t", "grpo", 0), [{}] * 50, evals, 1.0)
    assert rec["eval_accuracy"] == {"0": 0.2, "25": 0.3, "50": 0.35}
    assert (rec["base_accuracy"], rec["final_accuracy"], rec["eval_step"]) == (0.2, 0.35, 50)


def test_tables_and_curves_tell_learning_rates_apart_only_where_the_runs_vary_them():
    # the lr-sweep holds grpo at two rates (and SGD): every row and curve names its rate; a file
    # with one rate (the grid) keeps its plain labels
    runs = [dict(task="t", objective=o, aggregation="sequence", learning_rate=lr, seed=s, final_accuracy=acc + s / 100,
                 base_accuracy=0.2, steps=10, ablation=False, **({"optimizer": "sgd"} if lr > 0.1 else {}))
            for o, lr, acc in (("grpo", 1e-4, 0.3), ("sft+-", 1e-4, 0.31), ("grpo", 3e-4, 0.4), ("sft+-", 3e-4, 0.38),
                               ("grpo", 0.2, 0.25), ("sft+-", 0.2, 0.27)) for s in range(3)]
    curves = [{"task": "t", "objective": "grpo", "aggregation": "sequence", "mu": 1, "learning_rate": lr,
               "eval_step": [0, 10], "eval_accuracy": [0.2, acc]} for lr, acc in ((1e-4, 0.3), (3e-4, 0.4))]
    results = {"runs": runs, "summary": stats.summarize(runs), "equivalence": stats.equivalence(runs, 0.05),
               "curves": curves}
    rows = [line.split(" | ")[1] for line in report.summary_table(results).splitlines()[2:]]
    assert rows == ["grpo (lr 1e-4)", "sft+- (lr 1e-4)", "grpo (lr 3e-4)", "sft+- (lr 3e-4)",
                    "grpo (lr 0.2, sgd)", "sft+- (lr 0.2, sgd)"]
    eq = {e["learning_rate"]: e for e in results["equivalence"]}  # each rate against grpo at that rate
    assert eq[3e-4]["diff"] == pytest.approx(-0.02) and eq[0.2]["diff"] == pytest.approx(0.02)
    assert "| t | sft+- (lr 3e-4) | 3 | -2.0 |" in report.equivalence_table(results)
    assert report._curve(results, "t", "grpo", "sequence", "eval:accuracy", 1, lr=3e-4)[1][-1] == pytest.approx(0.4)
    assert report._curve(results, "t", "grpo", "sequence", "eval:accuracy", 1, lr=1e-3) == (None, None)
    one_rate = {**results, "runs": [r for r in runs if r["learning_rate"] == 1e-4]}
    one_rate["summary"] = stats.summarize(one_rate["runs"])
    assert [line.split(" | ")[1] for line in report.summary_table(one_rate).splitlines()[2:]] == ["grpo", "sft+-"]


def test_pass_at_k_asks_the_question_training_asks(monkeypatch):
    # an instruct profile trains and evaluates on prompts behind its chat template; pass@k (for
    # the trained runs and the base) must ask the same text, or it measures another task
    from course_lib import evaluate as E
    from course_lib.tasks import get_task
    from course_lib.trainer import TrainConfig

    seen = []

    def fake_evaluate(model, tokenizer, task, examples, **kw):
        seen.append(task.prompt(examples[0]))
        return {"correct_per_problem": [0] * len(examples), **{f"pass@{k}": 0.0 for k in R.PASS_KS}}

    class ChatTokenizer:
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return f"<user>{messages[0]['content']}</user><assistant>"

    monkeypatch.setattr(E, "evaluate", fake_evaluate)
    task = get_task("arith")
    question = task.prompt(task.load("test", n=BUDGET.pass_k_examples)[0])
    R.measure(tiny_model(), ChatTokenizer(), task, BUDGET, TrainConfig.from_profile("smollm2-135m", task="arith"), 0)
    R.measure(tiny_model(), ChatTokenizer(), task, BUDGET, TrainConfig.from_profile("micro", task="arith"), 0)
    assert seen == [f"<user>{question}</user><assistant>", question]  # instruct profile, then a base one


def test_result_figures_are_drawn_from_the_results_alone(tmp_path):
    """The figures need only results.json (its seed-mean curves): the shipped micro results,
    without their run directories, redraw every figure, and each line is the file's curve."""
    res = R.load_results("data/results/micro_results.json")
    c = next(c for c in res["curves"] if c["objective"] == "grpo" and c["aggregation"] == "sequence")
    x, y = report._curve(res, c["task"], "grpo", "sequence", "eval:accuracy", 5)
    assert list(x) == c["eval_step"] and list(y) == c["eval_accuracy"]
    x, y = report._curve(res, c["task"], "grpo", "sequence", "len_incorrect", 1)  # k = 1: no smoothing
    want = [math.nan if v is None else v for v in c["len_incorrect"]]
    assert list(x) == list(range(1, len(want) + 1))
    assert all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(y, want))
    written = report.result_figures(tmp_path, res)
    assert written == ["accuracy_over_steps.png", "lengths_over_steps.png", "aggregation_ablation.png",
                       "pass_at_k.png"]
    assert all((tmp_path / n).stat().st_size > 10_000 for n in written)


# ------------------------------------------------------------------ the micro evidence grid

EVIDENCE = dataclasses.replace(BUDGET, temperature=0.6, sweep_samples=2, pass_k_split="hard", pass_k_seeds=2)


@pytest.fixture(scope="module")
def tiny_evidence(tmp_path_factory):
    """grpo and the reward-free control at two learning rates, two seeds, measured after training."""
    out = tmp_path_factory.mktemp("evidence")
    specs = [plans.RunSpec("countdown-micro", o, s, learning_rate=lr) for s in (0, 1) for lr in (1e-3, 3e-3)
             for o in ("grpo", "confidence")]
    model = tiny_model()
    res = R.run_reproduction(out, profile="micro", specs=specs, settings=EVIDENCE, extra=TINY, model=model,
                             tokenizer=char_tokenizer(), get_task=lambda name: fake_task(), progress=False)
    return out, specs, res


def test_evidence_runs_record_their_learning_rate_sweep_and_per_problem_counts(tiny_evidence):
    out, specs, res = tiny_evidence
    assert res["status"] == ["ran"] * len(specs)
    for run in res["runs"]:
        assert run["learning_rate"] in (1e-3, 3e-3) and run["temperature"] == 0.6
        assert set(run["temperature_sweep"]) == {"0.3", "0.6", "1.0", "greedy"}
        assert run["eval_repeat"][0] == run["temperature_sweep"]["0.6"] and 0 <= run["eval_repeat"][1] <= 1
        counts = run["pass_at_k_counts"]
        assert counts["split"] == "hard" and counts["n"] == 4 and len(counts["correct"]) == 3
    base = json.loads((out / "base" / "countdown-micro.json").read_text())
    assert set(base) == {"temperature_sweep", "eval_repeat", "pass_at_k", "pass_at_k_counts"}
    # one summary and one TOST row per learning rate: arms of different step sizes are never pooled
    assert sorted((s["objective"], s["learning_rate"], s["n"]) for s in res["summary"]) == [
        ("confidence", 1e-3, 2), ("confidence", 3e-3, 2), ("grpo", 1e-3, 2), ("grpo", 3e-3, 2)]
    assert sorted(e["learning_rate"] for e in res["equivalence"]) == [1e-3, 3e-3]
    assert {r["split"] for r in res["pass_at_k"]} == {"hard"}
    assert all(0 <= r["ci_low"] <= r["pass_at_k"] <= r["ci_high"] <= 1 for r in res["pass_at_k"])
    assert {(r["model"], r["seed"]) for r in res["pass_at_k_counts"]} == {
        ("base", None), ("grpo", 0), ("grpo", 1), ("confidence", 0), ("confidence", 1)}
    rows = {(r["model"], r["learning_rate"]) for r in res["temperature_sweep"]}
    assert rows == {("base", None), ("grpo", 1e-3), ("grpo", 3e-3), ("confidence", 1e-3), ("confidence", 3e-3)}
    assert [n["task"] for n in res["eval_noise"]] == ["countdown-micro"]
    md = (out / "results.md").read_text()
    assert "temperature sweep" in md and "| countdown-micro | grpo | 1e-3 | 2 |" in md


def test_runs_of_one_task_and_seed_share_one_step0_evaluation_the_same_as_their_own(tiny_evidence, tmp_path):
    from course_lib.trainer import train

    out, specs, _ = tiny_evidence
    assert len(list((out / "base" / "step0").glob("*.json"))) == 2  # one per seed: objectives and rates share it
    for seed in (0, 1):
        rows = [json.loads((out / "runs" / s.dirname / "eval.jsonl").read_text().splitlines()[0])
                for s in specs if s.seed == seed]
        assert rows[0]["step"] == 0 and all(r == rows[0] for r in rows[1:]) and len(rows) == 4
    spec = specs[-1]  # the last run copied its step 0; measured afresh, it is the same
    cfg = dataclasses.replace(plans.make_config("micro", spec, EVIDENCE, TINY), steps=1)
    shared = json.loads(R.step0_file(out / "base" / "step0", cfg).read_text())
    own = train(cfg, model=tiny_model(), tokenizer=char_tokenizer(), task=fake_task(), progress=False).evals[0]
    assert own == shared
    # a setting the step-0 evaluation depends on names another file; a training-only one does not
    for field, value, same in (("eval_samples", 3, False), ("temperature", 0.9, False), ("seed", 7, False),
                               ("learning_rate", 0.5, True), ("objective", "sft+", True), ("mu", 2, True)):
        other = R.step0_file(out, dataclasses.replace(cfg, **{field: value}))
        assert (other == R.step0_file(out, cfg)) is same, field


def test_a_run_measured_without_its_own_sweep_keeps_its_last_evaluation_and_repeats_it(tmp_path):
    settings = dataclasses.replace(EVIDENCE, sweep_runs=False, pass_k=0)
    specs = [plans.RunSpec("countdown-micro", "grpo", s) for s in (0, 1)]
    res = R.run_reproduction(tmp_path, profile="micro", specs=specs, settings=settings, extra=TINY, model=tiny_model(),
                             tokenizer=char_tokenizer(), get_task=lambda name: fake_task(), progress=False)
    base = json.loads((tmp_path / "base" / "countdown-micro.json").read_text())
    assert set(base["temperature_sweep"]) == {"0.3", "0.6", "1.0", "greedy"}  # the base is swept
    for run in res["runs"]:
        assert run["temperature_sweep"] == {"0.6": run["final_accuracy"]}
        assert run["eval_repeat"][0] == run["final_accuracy"] and 0 <= run["eval_repeat"][1] <= 1
    row = next(r for r in res["temperature_sweep"] if r["model"] == "grpo")
    best = max(v for v in base["temperature_sweep"].values() if v is not None)
    assert row["gain_vs_best_base"]["mean"] == pytest.approx(
        sum(r["final_accuracy"] - best for r in res["runs"]) / 2)
    assert [n["task"] for n in res["eval_noise"]] == ["countdown-micro"]


def test_evidence_report_only_rebuilds_the_results_exactly(tiny_evidence):
    out, specs, _ = tiny_evidence
    before = json.loads((out / "results.json").read_text())
    R.run_reproduction(out, profile="micro", specs=specs, settings=EVIDENCE, extra=TINY, model=tiny_model(),
                       tokenizer=char_tokenizer(), get_task=lambda name: fake_task(), progress=False, train=False)
    after = json.loads((out / "results.json").read_text())
    assert {k: v for k, v in after.items() if k != "wall_s"} == {k: v for k, v in before.items() if k != "wall_s"}


def test_a_task_without_the_pass_at_k_split_is_skipped_with_one_line(capsys):
    class NoHard:
        name = "nohard-task"

        @staticmethod
        def load(split, n=None, seed=0):
            if split == "hard":
                raise ValueError("nohard-task has no hard split")
            return fake_task().load(split, n)

    settings = dataclasses.replace(EVIDENCE, sweep_samples=0)
    cfg = plans.make_config("micro", plans.RunSpec("countdown-micro", "grpo", 0), settings, TINY)
    for _ in range(2):
        assert R.measure(tiny_model(), char_tokenizer(), NoHard(), settings, cfg, 0) == {}
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["pass@k skipped on nohard-task: no 'hard' split (nohard-task has no hard split)"]


@pytest.mark.parametrize("name, runs, objectives, steps, rates", [
    ("grid", 5 * 5 * 2 + 5 * 2 * 2, {"grpo", "sft+", "sft-", "sft+-", "confidence"}, 60, {(None, "adamw")}),
    ("horizon", 3 * 4 * 2, {"grpo", "sft+", "sft+-", "sft-"}, 200, {(None, "adamw")}),
    ("lr-sweep", 3 * (3 + 1) * 2 * 2, {"grpo", "sft+-"}, 60,
     {(3e-5, "adamw"), (1e-4, "adamw"), (3e-4, "adamw"), (0.2, "sgd")}),
])
def test_evidence_plans(name, runs, objectives, steps, rates):
    specs, settings, _ = plans.plan_evidence(name, ["countdown-micro", "gsm8k-micro"])
    assert len(specs) == len(set(specs)) == len({s.dirname for s in specs}) == runs
    assert {s.objective for s in specs} == objectives and {(s.learning_rate, s.optimizer) for s in specs} == rates
    assert settings.steps == steps and settings.temperature == 0.6 and settings.pass_k_split == "hard"
    assert settings.sweep_samples >= 16 and settings.pass_k_seeds == max(s.seed for s in specs) + 1
    assert (settings.pass_k, settings.sweep_runs) == ({"grid": 256}.get(name, 0), name != "horizon")
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)  # seed by seed: stopped early, seeds complete
    cfg = plans.make_config("micro", specs[-1], settings)
    assert cfg.temperature == 0.6 and cfg.learning_rate == (specs[-1].learning_rate or 1e-4)
    assert cfg.optimizer == specs[-1].optimizer


def test_the_beyond_grid_plan_runs_notebook_08s_arms_as_the_grid_runs_its_own():
    specs, settings, _ = plans.plan_evidence("beyond-grid", ["countdown-micro", "gsm8k-micro"])
    grid_specs, grid, _ = plans.plan_evidence("grid", ["countdown-micro", "gsm8k-micro"])
    assert specs == plans.plan_beyond(range(5)) and len(specs) == 35
    same = ("steps", "eval_every", "eval_examples", "eval_samples", "temperature", "budget", "margin")
    assert all(getattr(settings, f) == getattr(grid, f) for f in same)  # so they pair with the grid's runs by seed
    assert {s.seed for s in specs} == {s.seed for s in grid_specs} and settings.sweep_samples == settings.pass_k == 0
    cfg = plans.make_config("micro", specs[4], settings)
    assert (cfg.task, cfg.objective, cfg.mu, cfg.temperature) == ("countdown-micro", "gspo-eps", 4, 0.6)


def test_the_balanced_plan_runs_sft_balanced_as_the_grid_runs_grpo_and_plain_sft():
    specs, settings, config = plans.plan_evidence("balanced", ["countdown-micro", "gsm8k-micro"])
    grid_specs, grid, grid_config = plans.plan_evidence("grid", ["countdown-micro", "gsm8k-micro"])
    assert {(s.task, s.objective, s.aggregation, s.mu) for s in specs} == {
        (t, "sft+-balanced", "sequence", 1) for t in ("countdown-micro", "gsm8k-micro")} and len(specs) == 10
    same = ("steps", "eval_every", "eval_examples", "eval_samples", "temperature", "budget", "margin")
    assert all(getattr(settings, f) == getattr(grid, f) for f in same) and config == grid_config  # pairs by seed
    assert {s.seed for s in specs} == {s.seed for s in grid_specs} and settings.sweep_samples == settings.pass_k == 0


def test_the_smollm2_plan_runs_the_real_model_with_its_own_cap_and_rules():
    tasks = list(models.PROFILES["smollm2-135m"].tasks)
    specs, settings, config = plans.plan_evidence("smollm2", tasks)
    main = [s for s in specs if s.learning_rate is None and not s.ablation]
    assert len(main) == 2 * 5 * 5 + 1 + 9 and {s.objective for s in main} == {"grpo", "sft+", "sft-", "sft+-", "confidence"}
    assert {(s.task, s.objective, s.learning_rate) for s in specs if s.learning_rate} == {(t, "sft-", 1e-5) for t in tasks}
    assert {(s.task, s.objective, s.aggregation) for s in specs if s.ablation} == {("word-problems", "grpo", "token")}
    assert len(specs) == len({s.dirname for s in specs}) == 50 + 10 + 5 - 2 + 3 + 9 and settings.steps >= 30
    # two seed-2 runs (bf16) move to seed 5 (fp32), grpo's sequence run beside the token one: every arm has 5 seeds,
    # and the length claim pairs grpo's two aggregations on 5 seeds; arith grpo, sft+ and the control have 3 more (power)
    per_arm = Counter((s.task, s.objective, s.aggregation, s.learning_rate) for s in specs)
    assert {k: n for k, n in per_arm.items() if n != 5} == {("word-problems", "grpo", "sequence", None): 6,
                                                           **{("arith", o, "sequence", None): 8 for o in ("grpo", "sft+", "confidence")}}
    assert [(s.objective, s.seed) for s in specs[-9:]] == [(o, s) for s in (5, 6, 7) for o in ("grpo", "sft+", "confidence")]
    wp = {a: {s.seed for s in specs if (s.task, s.objective, s.aggregation, s.learning_rate) == ("word-problems", "grpo", a, None)}
          for a in ("sequence", "token")}
    assert wp["token"] == {0, 1, 3, 4, 5} < wp["sequence"]
    assert {s.seed for s in specs if s.learning_rate == 1e-5 and s.task == "word-problems"} == {0, 1, 3, 4, 5}
    assert [s.seed for s in specs] == sorted(s.seed for s in specs) and settings.sweep_samples > 0
    cfg = plans.make_config("smollm2-135m", specs[-1], settings, config)
    assert (cfg.max_new_tokens, cfg.truncated, cfg.temperature) == (128, "wrong", 0.7)
    # seeds 0-2 in bf16 (a CPU with AMX), seeds 3-4 in fp32 (bf16 is emulated, ~10x slower, without it); the
    # directories keep their names, and so do the records of the seeds the plan's own precision ran
    got = {s.seed: {plans.make_config("smollm2-135m", x, settings, config).precision for x in specs if x.seed == s.seed}
           for s in specs}
    assert got == {0: {"bf16"}, 1: {"bf16"}, 2: {"bf16"}, **{s: {"fp32"} for s in range(3, 8)}}
    assert {s.dirname for s in specs} == {dataclasses.replace(s, precision=None).dirname for s in specs}
    assert "precision" not in R.run_record(specs[0], [], [], 0.0) and R.run_record(specs[-1], [], [], 0.0)["precision"] == "fp32"
    three = plans.plan_evidence("smollm2", tasks, seeds=3)[0]  # fewer seeds than the plan's: nothing moves
    assert len(three) == 39 and [s for s in three if s not in specs] == [s for s in three if s.seed == 2 and s.task == "word-problems"
                                                                     and (s.ablation or s.learning_rate)]
    assert {s.precision for s in three} == {None}
    only = plans.plan_evidence("smollm2", tasks, objectives=("sft+",))[0]  # the stand-ins of runs it plans, not a lone grpo
    assert {(s.objective, s.aggregation, s.learning_rate) for s in only if s.seed == 5} == {("grpo", "token", None), ("sft-", "sequence", 1e-5),
                                                                                         ("sft+", "sequence", None)}
    assert [s.seed for s in only if s.seed > 5] == [6, 7] and len(plans.plan_evidence("smollm2", ["word-problems"])[0]) == 36
    assert cfg.micro_batch_size < cfg.prompts_per_step * cfg.group_size  # length-sorted micro-batches pad less
    # every held-out problem (arith 50, word-problems 80) x 8 samples; only the base is swept
    assert (settings.eval_examples, settings.eval_samples, settings.sweep_samples, settings.sweep_runs) == (100, 8, 8, False)


def test_a_plan_for_another_profile_is_refused_in_one_line(tmp_path, capsys):
    from course_lib.__main__ import main

    assert main(["reproduce", "--plan", "smollm2", "--profile", "micro", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--profile smollm2-135m" in err and not (tmp_path / "x").exists()


@pytest.mark.parametrize("spec, extra, field, value", [
    (plans.RunSpec("countdown-micro", "grpo", 0, optimizer="sgd"), None, "optimizer", "sgd"),
    (plans.RunSpec("countdown-micro", "grpo", 0), {"optimizer": "sgd"}, "optimizer", "sgd"),  # AdamW: spec unset
    (plans.RunSpec("countdown-micro", "grpo", 0, optimizer="sgd"), {"optimizer": "adamw"}, "optimizer", "sgd"),
    (plans.RunSpec("countdown-micro", "grpo", 0), None, "optimizer", "adamw"),
    (plans.RunSpec("countdown-micro", "grpo", 0), {"mu": 2}, "mu", 2),
    (plans.RunSpec("countdown-micro", "grpo", 0, mu=4), {"mu": 2}, "mu", 4),
    (plans.RunSpec("countdown-micro", "grpo", 0, learning_rate=0.2), {"learning_rate": 1e-3}, "learning_rate", 0.2),
])
def test_a_spec_sets_what_it_names_and_leaves_the_rest_to_extra(spec, extra, field, value):
    assert getattr(plans.make_config("micro", spec, BUDGET, extra), field) == value


def test_the_lr_sweep_adds_one_plain_sgd_arm_and_keeps_the_adamw_runs_it_had():
    tasks = ["countdown-micro", "gsm8k-micro"]
    specs, settings, _ = plans.plan_evidence("lr-sweep", tasks)
    sgd = [s for s in specs if s.optimizer == "sgd"]
    assert sorted((s.task, s.objective, s.seed) for s in sgd) == sorted(
        (t, o, seed) for t in tasks for o in ("grpo", "sft+-") for seed in range(3))
    assert {s.learning_rate for s in sgd} == {0.2} and plans.make_config("micro", sgd[0], settings).optimizer == "sgd"
    # the AdamW runs (some may be under way) are the plan's runs before the SGD arm, in the same order
    assert [s for s in specs if s.optimizer == "adamw"] == [
        plans.RunSpec(t, o, seed, learning_rate=lr) for seed in range(3) for lr in (3e-5, 1e-4, 3e-4)
        for t in tasks for o in ("grpo", "sft+-")]
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)  # seed by seed, the SGD arm included


@pytest.mark.parametrize("spec, dirname", [
    (plans.RunSpec("t", "grpo", 0), "t/grpo_sequence/seed0"),
    (plans.RunSpec("t", "grpo", 1, learning_rate=3e-5), "t/grpo_sequence_lr3e-05/seed1"),
    (plans.RunSpec("t", "gspo", 2, mu=4, learning_rate=0.0003), "t/gspo_sequence_mu4_lr0.0003/seed2"),
    (plans.RunSpec("t", "grpo", 0, optimizer="adamw"), "t/grpo_sequence/seed0"),  # AdamW: the names runs had before
    (plans.RunSpec("t", "grpo", 1, learning_rate=1e-4, optimizer="adamw"), "t/grpo_sequence_lr0.0001/seed1"),
    (plans.RunSpec("t", "sft+-", 0, learning_rate=0.2, optimizer="sgd"), "t/sft+-_sequence_lr0.2_sgd/seed0"),
    (plans.RunSpec("t", "grpo", 2, mu=4, optimizer="sgd"), "t/grpo_sequence_mu4_sgd/seed2"),
])
def test_run_dirnames_tell_learning_rates_and_optimizers_apart(spec, dirname):
    assert spec.dirname == dirname


@pytest.mark.parametrize("name, folder, extra", [("micro", "micro_evidence", None), ("beyond_grid", "beyond_grid", None),
                                                 ("smollm2_evidence", "smollm2_evidence", plans.PLANS["smollm2"]["config"]),
                                                 ("horizon", "horizon", None), ("balanced", "balanced", None)])
def test_shipped_run_records_keep_their_names_and_resume(name, folder, extra, tmp_path):
    """Every shipped run (all AdamW) lies in the directory its spec names today, with the settings
    its spec plans today: a reproduction skips it, and one interrupted there would resume."""
    import tarfile

    from course_lib import DATA_DIR

    with tarfile.open(DATA_DIR / "results" / f"{name}_runs.tar.gz") as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    shipped = R.load_results(DATA_DIR / "results" / f"{name}_results.json")
    settings = plans.Settings(**shipped["settings"])
    rate = models.get_profile(shipped["profile"]).budgets[settings.budget]["learning_rate"]  # None in a spec: this one
    specs = [plans.RunSpec(r["task"], r["objective"], r["seed"], r["aggregation"], r["ablation"], r["mu"],
                           None if r["learning_rate"] == rate else r["learning_rate"], precision=r.get("precision"))
             for r in shipped["runs"]]  # a record names its precision where its spec set one (smollm2's later seeds)
    configs = [plans.make_config(shipped["profile"], s, settings, extra) for s in specs]
    assert [s.dirname for s in specs] == [r["run_dir"] for r in shipped["runs"]]
    assert R.check_run_dirs(tmp_path / folder, specs, configs, overwrite=False) == []
    assert all(R._finished(tmp_path / folder / "runs" / s.dirname, c, s) for s, c in zip(specs, configs))
    assert all("optimizer" not in R._finished(tmp_path / folder / "runs" / s.dirname, c, s)
               for s, c in zip(specs[:3], configs))  # the records rebuild as shipped


def test_an_sgd_arm_has_its_own_runs_rows_labels_and_lines(tmp_path, monkeypatch):
    """grpo and sft+- with AdamW and with plain SGD at the same rate, two seeds: the SGD runs train
    with SGD in their own directories, are summarised and paired among themselves, every table and
    figure names them, and a second call skips them all."""
    from matplotlib.figure import Figure

    specs = [plans.RunSpec("countdown-micro", o, s, learning_rate=1e-3, optimizer=opt) for s in (0, 1)
             for opt in ("adamw", "sgd") for o in ("grpo", "sft+-")]
    res = reproduce(tmp_path, specs)
    assert res["status"] == ["ran"] * len(specs)
    for spec in specs:
        saved = json.loads((tmp_path / "runs" / spec.dirname / "config.json").read_text())
        assert saved["optimizer"] == spec.optimizer and saved["learning_rate"] == 1e-3
    assert {r["run_dir"]: r.get("optimizer", "adamw") for r in res["runs"]} == {s.dirname: s.optimizer for s in specs}
    rows = [line.split(" | ")[1:3] for line in report.summary_table(res).splitlines()[2:]]
    assert rows == [["grpo", "2"], ["sft+-", "2"], ["grpo (sgd)", "2"], ["sft+- (sgd)", "2"]]
    assert [e["objective"] + " " + e.get("optimizer", "adamw") for e in res["equivalence"]] == ["sft+- adamw", "sft+- sgd"]
    assert "| countdown-micro | sft+- (sgd) | 2 |" in report.equivalence_table(res)
    assert {(c["objective"], c.get("optimizer", "adamw")) for c in res["curves"]} == {
        (o, opt) for o in ("grpo", "sft+-") for opt in ("adamw", "sgd")}
    axes = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: axes.extend(fig.axes))
    report.result_figures(tmp_path, res)
    acc = next(ax for ax in axes if ax.get_ylabel() == "accuracy (%)")
    assert {t.get_text() for t in acc.get_legend().get_texts()} == {"grpo", "sft+-", "grpo (sgd)", "sft+- (sgd)"}
    assert {line.get_linestyle() for line in acc.lines if line.get_label().endswith("(sgd)")} == {":"}
    assert reproduce(tmp_path, specs)["status"] == ["skipped"] * len(specs)


def test_the_evidence_plans_are_one_command_each(tmp_path, monkeypatch):
    from course_lib.__main__ import main

    seen = {}
    monkeypatch.setattr(R, "run_reproduction", lambda out, **kw: seen.update(kw) or {
        **kw, "status": [], "interrupted": False, "summary": [], "equivalence": []})
    monkeypatch.setattr(report, "summary_table", lambda res: "")
    assert main(["reproduce", "--plan", "lr-sweep", "--out", str(tmp_path), "--workers", "2", "--no-progress"]) == 0
    assert len(seen["specs"]) == 48 and seen["settings"].temperature == 0.6 and seen["workers"] == 2


def test_a_saved_config_from_before_a_new_field_reads_as_that_fields_default():
    """Runs recorded before TrainConfig gained ``optimizer`` used AdamW, its default: their
    settings match a plan made today; a run saved with another optimizer does not."""
    from dataclasses import asdict

    from course_lib.trainer import TrainConfig

    cfg = TrainConfig.from_profile("micro")
    old = {k: v for k, v in asdict(cfg).items() if k != "optimizer"}
    assert R._settings(old, cfg) == asdict(cfg)
    assert R._settings({**old, "optimizer": "sgd"}, cfg) != asdict(cfg)


def test_the_base_is_loaded_for_the_runs_precision(tmp_path, monkeypatch):
    # bf16 runs on a CPU store the frozen weights in bf16 when load_policy is asked for bf16: the
    # reproduction must ask for its runs' precision, not the default
    asked = []

    def fake_load(profile, **kw):
        asked.append(kw.get("precision", "auto"))
        return tiny_model(), char_tokenizer()

    monkeypatch.setattr(models, "load_policy", fake_load)
    R.run_reproduction(tmp_path, profile="micro", specs=[plans.RunSpec("countdown-micro", "grpo", 0)],
                       settings=dataclasses.replace(BUDGET, steps=1, pass_k=0), extra={**TINY, "precision": "fp32"},
                       get_task=lambda name: fake_task(), progress=False)
    assert asked == ["fp32"]


@pytest.mark.parametrize("native, order", [(False, ["fp32", "bf16"]), (True, ["bf16", "fp32"])])
def test_workers_load_the_base_in_each_runs_precision_and_emulated_bf16_goes_last(native, order, monkeypatch, tmp_path):
    """A plan that mixes precisions (smollm2: seeds 3-4 in fp32) gets one pool per precision, whose
    processes load the base in it; where this CPU only emulates bf16, the bf16 runs wait for the rest."""
    import concurrent.futures as cf

    pools = []

    class Pool:  # runs nothing in other processes: records what each pool was made for and what it was given
        def __init__(self, workers, mp_context, initializer, initargs):
            pools.append({"workers": workers, "precision": initargs[2], "runs": []})

        def submit(self, fn, spec, cfg, *rest):
            pools[-1]["runs"].append((spec.seed, cfg.precision))
            fut = cf.Future()
            fut.set_result({"status": "ran", "seed": spec.seed})
            return fut

        def shutdown(self, **kw):
            pass

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    specs, settings, config = plans.plan_evidence("smollm2", ["arith"], seeds=5, objectives=["grpo"])
    todo = [(s, plans.make_config("smollm2-135m", s, settings, config)) for s in specs]
    done = []
    assert not R._run_in_workers(tmp_path, "smollm2-135m", todo, settings, 2, lambda s, rec: done.append(s.seed))
    assert [p["precision"] for p in pools] == order and all(p["workers"] == 2 for p in pools)
    assert all({c for _, c in p["runs"]} == {p["precision"]} for p in pools)  # each run computes as its pool loaded
    assert sorted(done) == sorted(s.seed for s in specs)  # every run, once


def test_the_base_is_measured_with_each_tasks_first_run_settings_the_precision_it_was_loaded_in(monkeypatch, tmp_path):
    """The main process loads the base in the first run's precision (bf16 for smollm2), so the base's
    sweep must use that run's settings, not a later seed's (fp32 from seed 3 on)."""
    specs, settings, config = plans.plan_evidence("smollm2", ["arith", "word-problems"])
    configs = [plans.make_config("smollm2-135m", s, settings, config) for s in specs]
    seen = {}
    monkeypatch.setattr(R, "measure", lambda model, tok, task, st, cfg, seed: seen.update({task: cfg}) or {})
    assert R._base_measure(tmp_path, specs, configs, settings, lambda name: name, (None, None))
    assert {t: (c.precision, c.seed) for t, c in seen.items()} == {"arith": ("bf16", 0), "word-problems": ("bf16", 0)}
