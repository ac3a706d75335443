"""tools/scale.py: every objective on TRL's GRPOTrainer equals course_lib, and 2 processes equal 1.

1. Equality. One batch, sampled once from the micro model on gsm8k-micro (3 prompts x G = 4,
   prompts of different lengths, so left padding is exercised, mixed groups and an all-wrong
   one, one truncated completion), is fed to both sides: course_lib's ``trainer.update`` and one
   ``trainer.train()`` step of TRL through ``tools/scale.py`` (the completions come in through
   TRL's ``rollout_func``; the rewards are the course verifier's, as TRL reward functions). The
   policy is perturbed away from the reference so the KL term is not zero. Both sides' loss and
   gradient (before any clipping) agree within 1e-6 for every objective and aggregation; for the
   grpo rows once with TRL's own advantages (std over G - 1, compared with the course's formula
   at that std) and once with ``course_advantages=True`` (the course's own weights).
2. Sharding. ``accelerate launch --multi_gpu --num_processes 2`` on the CPU (two processes,
   gloo) runs three steps of grpo and of sft+- on the micro model; the same function runs
   in this process on one process with the same global batch. Sampling is made independent of
   the sharding: a ``rollout_func`` samples each completion with the course's sampler, seeded
   by (prompt, its index in the group, step). Then the completions must be identical, each step's
   loss and gradient (after the all-reduce) equal within 1e-6, the gradient norm within 1e-5.
   The final weights agree to a fraction of the learning rate: AdamW's first update is
   lr * g / (|g| + 1e-8), so where a gradient is at rounding level (1e-9) the rounding of the
   all-reduce moves that weight by a visible part of lr (measured: 8e-6 at lr 1e-4).

Each test prints its measured differences (``pytest -s`` shows them). Skipped, with one line,
when TRL is not installed (``pip install -e '.[scale]'``; ``make`` installs it with dev).
"""

from __future__ import annotations

import ast
import gc
import importlib.util
import os
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import torch

pytest.importorskip("trl", reason="TRL is not installed: pip install -e '.[scale]'")

import course_lib  # noqa: E402
from course_lib import models  # noqa: E402
from course_lib.objectives import OBJECTIVES, get_objective, weights  # noqa: E402
from course_lib.rollout import generate_rollouts  # noqa: E402
from course_lib.tasks import get_task  # noqa: E402
from course_lib.trainer import TrainConfig, update  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("scale", ROOT / "tools" / "scale.py")
scale = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scale)
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental
TASK, P, G, LENGTH, BETA = "gsm8k-micro", 3, 4, 40, 0.01
TOL = 1e-6
CPU = dict(use_cpu=True, bf16=False, fp16=False, use_vllm=False, disable_tqdm=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread (exact comparisons; a machine shared with other jobs), and the objects
    alive so far out of the garbage collector's scans (each ``train()`` starts with a full
    ``gc.collect()``, which otherwise dominates these one-step runs)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
    torch.set_num_threads(before)


def _quiet(trainer):
    """Without a progress bar TRL prints every step's logs; the tests print their own lines."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


@pytest.fixture(scope="module")
def batch():
    """(rollout, rewards (B,), correct (B,), noise {name: tensor}): B = P * G = 12."""
    model, tok = models.load_micro()
    task = get_task(TASK)
    examples = task.load("train")[:P]
    roll = generate_rollouts(model, tok, [task.prompt(e) for e in examples], G, max_new_tokens=LENGTH,
                             temperature=1.0, seed=3)
    scores = [task.score(t, e) for t, e in zip(roll.texts, (e for e in examples for _ in range(G)))]
    rewards = torch.tensor([s.reward for s in scores])
    correct = torch.tensor([s.correct for s in scores])
    k = correct.view(P, G).sum(1)
    assert ((k > 0) & (k < G)).any() and len(set(roll.prompt_mask.sum(1).tolist())) > 1, \
        "the fixed batch lost its mixed groups or its left padding: choose another seed"
    gen = torch.Generator().manual_seed(1)
    noise = {n: 0.02 * torch.randn(p.shape, generator=gen) for n, p in model.named_parameters()}
    return roll, rewards, correct, noise


def _perturbed(noise):
    """The micro model moved away from its initial weights (which stay its reference policy)."""
    model, tok = models.load_micro()
    models.snapshot_reference(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.add_(noise[n])
    return model.train(), tok


def _config(objective, aggregation, steps=1, **kw):
    return TrainConfig.from_profile("micro", objective=objective, task=TASK, aggregation=aggregation, steps=steps,
                                    prompts_per_step=P, group_size=G, max_new_tokens=LENGTH, beta=BETA,
                                    grad_clip=0.0, checkpoint_every=0, **kw)


class _Capture(torch.optim.SGD):
    """An optimizer that only records the gradients it is asked to apply."""

    def __init__(self, params):
        super().__init__(params, lr=0.0)

    def step(self, closure=None):
        self.grads = [p.grad.detach().clone() for p in self.param_groups[0]["params"]]


def course_side(batch, objective, aggregation, w=None):
    """course_lib's loss and {name: gradient} on the batch (``w``: default the row's weights)."""
    roll, rewards, correct, noise = batch
    model, _ = _perturbed(noise)
    row = get_objective(objective)
    w = weights(row, rewards, correct, G) if w is None else w
    opt = _Capture(models.trainable_parameters(model))
    st = update(_config(objective, aggregation), row, model, opt, torch.amp.GradScaler("cpu", enabled=False),
                roll, w, reference=lambda: models.reference_policy(model))
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    return st["loss"], dict(zip(names, opt.grads))


def _fixed_rollout(roll):
    """A TRL rollout_func that returns the batch's completions for whatever prompts it is asked."""
    table = {}
    for i, prompt in enumerate(roll.prompts):
        ids = roll.prompt_ids[i][roll.prompt_mask[i].bool()].tolist()
        table.setdefault(prompt, []).append((ids, roll.completion_ids[i][roll.completion_mask[i].bool()].tolist()))

    def rollout_func(prompts, trainer):
        seen, out = {}, {"prompt_ids": [], "completion_ids": [], "logprobs": None}
        for p in prompts:
            seen[p] = seen.get(p, -1) + 1
            ids, completion = table[p][seen[p]]
            out["prompt_ids"].append(ids)
            out["completion_ids"].append(completion)
        return out

    return rollout_func


class _Grads:
    """A TRL callback keeping the gradients just before the optimizer step."""

    def __init__(self, every_step=False):
        from transformers import TrainerCallback

        grads, steps = self.grads, self.steps = {}, []

        class Keep(TrainerCallback):
            def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
                grads.update({n: p.grad.detach().clone() for n, p in model.named_parameters()})
                if every_step:
                    steps.append(dict(grads))

        self.callback = Keep()


def trl_side(batch, objective, aggregation, tmp_path, **kw):
    """TRL's loss and {name: gradient} on the batch, one ``train()`` step through tools/scale.py."""
    roll, _, _, noise = batch
    model, tok = _perturbed(noise)
    keep = _Grads()
    trainer = scale.make_trainer(_config(objective, aggregation), str(tmp_path), model=model, tokenizer=tok,
                                 train_dataset=scale.task_dataset(get_task(TASK), n=P),
                                 rollout_func=_fixed_rollout(roll), callbacks=[keep.callback],
                                 max_grad_norm=0.0, **CPU, **kw)
    _quiet(trainer).train()
    loss = next(h["loss"] for h in trainer.state.log_history if "loss" in h)
    return loss, keep.grads


def sample_std_advantages(rewards, G):
    """GRPO's advantages as TRL defines them: the group std divides by G - 1."""
    r = rewards.view(-1, G)
    return ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1)


def _differences(course, trl):
    (lc, gc), (lt, gt) = course, trl
    assert set(gc) == set(gt)
    return abs(lc - lt), max(float((gc[n] - gt[n]).abs().max()) for n in gc)


def _aggregations(row):
    """A row with its own normaliser (dr-grpo) or a sequence ratio (gspo: one term per completion)
    is defined at that aggregation only."""
    return [row.aggregation] if row.aggregation else ["sequence"] if row.ratio == "sequence" else list(scale.TRL_LOSS_TYPE)


def _trl_advantages(row):
    """Rows TRL weighs with its own advantages unless told otherwise: GRPO's, with a ratio (a row
    without ratio and KL, such as sft+-sized, always gets the course's weights and loss)."""
    return row.weights == "advantage" and row.std and bool(row.ratio or row.kl)


CASES = [(o, a, adv) for o, row in OBJECTIVES.items() if not row.needs_logprobs for a in _aggregations(row)
         for adv in (("trl", "course") if _trl_advantages(row) else ("course",))]


def _imported(path: Path) -> set[str]:
    """Every module and ``module.name`` that ``path`` imports, also inside functions."""
    nodes = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
    return names | {f"{n.module}.{a.name}" for n in nodes if isinstance(n, ast.ImportFrom) for a in n.names}


def test_trl_is_imported_by_tools_scale_only():
    """The tests import this checkout's course_lib, where no module imports trl or the scale tool:
    tools/scale.py is what imports trl (the optional ``scale`` extra)."""
    assert Path(course_lib.__file__).resolve() == ROOT / "course_lib" / "__init__.py"
    assert Path(scale.__file__).resolve() == ROOT / "tools" / "scale.py"
    for path in (ROOT / "course_lib").rglob("*.py"):
        found = {x for x in _imported(path) if x.split(".")[0] == "trl" or "scale" in x.split(".")}
        assert not found, f"{path.relative_to(ROOT)} imports {found}"
    assert any(x.split(".")[0] == "trl" for x in _imported(ROOT / "tools" / "scale.py"))


@pytest.mark.parametrize("args, message", [(["--trl", "no_such_field=1"], "expected FIELD=VALUE"),
                                           (["--group-size", "x"], "--group-size: invalid int value"),
                                           ([], "the following arguments are required: --out")])
def test_the_command_line_refuses_bad_options_in_one_line(args, message, tmp_path, capsys):
    """``accelerate launch tools/scale.py``: a bad option or value is one line and exit code 2,
    before any model is loaded."""
    out = [] if not args else ["--out", str(tmp_path / "out")]
    assert scale.main([*args, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("objective,aggregation,advantages", CASES)
def test_loss_and_gradient_equal_course_lib(batch, tmp_path, objective, aggregation, advantages):
    _, rewards, _, _ = batch
    own = _trl_advantages(OBJECTIVES[objective]) and advantages == "trl"
    course = course_side(batch, objective, aggregation, w=sample_std_advantages(rewards, G) if own else None)
    trl = trl_side(batch, objective, aggregation, tmp_path, course_advantages=advantages == "course")
    dloss, dgrad = _differences(course, trl)
    kind = "TRL advantages" if own else "course weights"
    print(f"\n{objective:>14} {aggregation:>8} {kind:>14}: max|d loss| {dloss:.1e}  max|d grad| {dgrad:.1e}")
    assert dloss < TOL and dgrad < TOL


def test_trl_default_kl_gradient_differs(batch, tmp_path):
    """TRL's default bias-corrected KL (k3 x ratio) changes the gradient on-policy: why it is off."""
    _, rewards, _, _ = batch
    course = course_side(batch, "grpo", "sequence", w=sample_std_advantages(rewards, G))
    dloss, dgrad = _differences(course, trl_side(batch, "grpo", "sequence", tmp_path, use_bias_correction_kl=True))
    print(f"\nuse_bias_correction_kl=True: max|d loss| {dloss:.1e}  max|d grad| {dgrad:.1e}")
    assert dloss < TOL and dgrad > 100 * TOL


def test_configuration_is_refused_where_definitions_differ(tmp_path, monkeypatch):
    model, tok = models.load_micro()
    with pytest.raises(ValueError, match="has no KL term"):
        scale.make_trainer(_config("sft+-", "sequence"), str(tmp_path), model=model, tokenizer=tok, beta=0.1, **CPU)
    with pytest.raises(ValueError, match="loss_type"):
        scale.make_trainer(_config("sft+-", "sequence"), str(tmp_path), model=model, tokenizer=tok,
                           loss_type="bnpo", **CPU)
    with pytest.raises(ValueError, match="confidence weighs samples by their own log-probs"):
        scale.make_trainer(_config("confidence", "sequence"), str(tmp_path), model=model, tokenizer=tok, **CPU)
    args = scale.grpo_config(_config("grpo", "sequence", micro_batch_size=5, mu=2), str(tmp_path), **CPU)
    # 12 completions per step in micro-batches of 4 (the largest divisor <= 5); mu = 2 steps per rollout
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.max_steps) == (4, 3, 2)
    assert (args.loss_type, args.beta, args.use_bias_correction_kl) == ("grpo", BETA, False)
    monkeypatch.setenv("WORLD_SIZE", "5")
    with pytest.raises(ValueError, match="do not split"):
        scale.grpo_config(_config("grpo", "sequence"), str(tmp_path), **CPU)


# ------------------------------------------------------------------------- 2 processes vs 1

RUNS = (("grpo", "sequence"), ("sft+-", "token"))
SHARD_LR = 1e-4
SHARD = dict(prompts_per_step=2, group_size=4, max_new_tokens=32, micro_batch_size=8, steps=3, grad_clip=1.0,
             learning_rate=SHARD_LR, checkpoint_every=0)


def _seeded_rollout(tok, max_new_tokens):
    """A rollout_func whose samples depend only on (prompt, index in its group, step), not on
    which process holds them: each completion is sampled alone with its own seed."""
    def rollout_func(prompts, trainer):
        start = trainer.accelerator.process_index * len(prompts)  # this process's rows of the step
        out = {"prompt_ids": [], "completion_ids": [], "logprobs": None}
        for i, p in enumerate(prompts):
            seed = zlib.crc32(f"{p}|{(start + i) % trainer.num_generations}|{trainer.state.global_step}".encode())
            r = generate_rollouts(trainer.model, tok, [p], 1, max_new_tokens=max_new_tokens, temperature=1.0, seed=seed)
            out["prompt_ids"].append(r.prompt_ids[0][r.prompt_mask[0].bool()].tolist())
            out["completion_ids"].append(r.completion_ids[0][r.completion_mask[0].bool()].tolist())
        trainer.course_sampled = getattr(trainer, "course_sampled", []) + list(zip(prompts, out["completion_ids"]))
        return out

    return rollout_func


def few_steps(out_dir: str) -> dict:
    """Three steps of each of RUNS; {objective: history, completions (every process's), weights}."""
    from accelerate.utils import gather_object

    torch.set_num_threads(1)
    results = {}
    for objective, aggregation in RUNS:
        model, tok = models.load_micro()
        cfg = TrainConfig.from_profile("micro", objective=objective, task=TASK, aggregation=aggregation, **SHARD)
        keep = _Grads(every_step=True)
        trainer = scale.make_trainer(cfg, os.path.join(out_dir, objective), model=model, tokenizer=tok,
                                     train_dataset=scale.task_dataset(get_task(TASK), n=8),
                                     rollout_func=_seeded_rollout(tok, cfg.max_new_tokens),
                                     callbacks=[keep.callback], **CPU)
        _quiet(trainer).train()
        steps = [h for h in trainer.state.log_history if "loss" in h]
        results[objective] = {
            "history": [{k: h[k] for k in ("loss", "grad_norm", "reward", "frac_reward_zero_std")} for h in steps],
            "completions": sorted(map(tuple, gather_object([(p, tuple(c)) for p, c in trainer.course_sampled]))),
            "weights": {n: p.detach().clone() for n, p in trainer.model.named_parameters()},
            "grads": keep.steps,
            "processes": trainer.accelerator.num_processes,
        }
    return results


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TRL_EXPERIMENTAL_SILENCE": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), __file__, "--worker", str(tmp_path / "two")]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    two = torch.load(tmp_path / "two" / "results.pt", weights_only=False)
    one = few_steps(str(tmp_path / "one"))
    initial = dict(models.load_micro()[0].named_parameters())
    lr = SHARD_LR
    for objective, _ in RUNS:
        a, b = one[objective], two[objective]
        assert (a["processes"], b["processes"]) == (1, 2)
        assert a["completions"] == b["completions"] and len(a["completions"]) == SHARD["steps"] * 8
        assert any(h["frac_reward_zero_std"] < 1 for h in a["history"]), "no mixed group: nothing was learned"
        dloss = max(abs(x["loss"] - y["loss"]) for x, y in zip(a["history"], b["history"]))
        dnorm = max(abs(x["grad_norm"] - y["grad_norm"]) for x, y in zip(a["history"], b["history"]))
        dgrad = max(float((x[n] - y[n]).abs().max()) for x, y in zip(a["grads"], b["grads"]) for n in x)
        dweight = max(float((a["weights"][n] - b["weights"][n]).abs().max()) for n in initial)
        moved = max(float((a["weights"][n] - initial[n].detach()).abs().max()) for n in initial)
        print(f"\n{objective}: 2 processes vs 1, {SHARD['steps']} steps of 8 completions: the same completions; "
              f"max|d loss| {dloss:.1e}, max|d grad norm| {dnorm:.1e}, max|d gradient| {dgrad:.1e}; after AdamW "
              f"max|d weight| {dweight:.1e} (weights moved up to {moved:.1e}); the 2-process launch took {seconds:.0f} s")
        assert max(dloss, dgrad) < TOL and dnorm < 10 * TOL  # the norm: a float32 sum of 1M squares
        # AdamW's first update is lr * g / (|g| + 1e-8): where a gradient is at rounding level
        # (~1e-9), its rounding moves that weight by a fraction of lr. Elsewhere the weights agree.
        assert dweight < 0.25 * lr


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:  # one process of the accelerate launch above
    from accelerate import PartialState

    os.makedirs(sys.argv[2], exist_ok=True)
    results = few_steps(sys.argv[2])
    if PartialState().is_main_process:
        torch.save(results, Path(sys.argv[2]) / "results.pt")
    PartialState().wait_for_everyone()
    if torch.distributed.is_initialized():  # tear gloo down before exit: left to the interpreter, a
        torch.distributed.destroy_process_group()  # process can abort ("terminate called ...") at exit
