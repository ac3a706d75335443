"""The experiment grid behind ``python -m course_lib reproduce``: plans, configs, runs, records.

It trains each (task, objective, seed) from the same base model with the same budget,
evaluates held-out accuracy, lengths and (optionally) pass@k, and writes into ``OUT``::

    runs/TASK/OBJECTIVE_AGGREGATION/seedS/   one run of course_lib.trainer + result.json when done
    base/TASK.json                           the base model's measurements (as every run's below)
    base/step0/KEY.json                      a step-0 held-out evaluation, shared by the runs it fits
    results.json    command, settings, runs, summary, equivalence, temperature_sweep, eval_noise,
                    pass_at_k (+ pass_at_k_counts), ablation, curves
    results.md, *.png   the tables and figures of course_lib.report

Run it again with the same options: finished runs are skipped, interrupted ones resume, a run
directory holding other settings is refused (``--overwrite`` starts it over). The comparison is
*paired*: for a seed every objective starts from the same weights, sees the same training
problems in order and the same held-out problems and sampling seed (stats pairs by seed). So
the step-0 evaluation is the same measurement for all of them: it runs once per task, seed and
evaluation setting (:data:`TRAINING_ONLY` lists the fields it ignores) and every other run copies it.

After training each run (and the base, once per task) is measured at :data:`SWEEP_TEMPERATURES`
and greedily, twice at its training temperature (two sampling seeds: the evaluation noise), and
with pass@k on ``settings.pass_k_split`` (per-problem counts kept). What to run (specs, settings,
the named plans) is ``course_lib.plans``.

Simplified: runs go one after another or in ``workers`` processes; nothing is retried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from course_lib.plans import RunSpec, Settings, make_config
from course_lib.report import load_results, read_jsonl, write_outputs  # noqa: F401 (the grid's outputs)

PASS_KS = tuple(2**i for i in range(9))  #: pass@k is reported at k = 1, 2, 4, ..., 256
RESULT = "result.json"
#: held-out accuracy after training is also measured at these temperatures (and greedily)
SWEEP_TEMPERATURES = (0.3, 0.6, 1.0)
#: TrainConfig fields that cannot change the step-0 evaluation (it comes before the first update)
TRAINING_ONLY = ("objective", "steps", "prompts_per_step", "group_size", "learning_rate", "optimizer", "warmup_steps",
                 "grad_clip", "micro_batch_size", "mu", "beta", "epsilon", "aggregation", "eval_every",
                 "checkpoint_every")


def _tail_mean(history: list[dict], key: str, k: int = 10):
    xs = [h[key] for h in history[-k:] if h.get(key) is not None]
    return sum(xs) / len(xs) if xs else None


def run_record(spec: RunSpec, history: list[dict], evals: list[dict], wall_s: float, **more) -> dict:
    """The results.json row of one finished run (accuracies are fractions in [0, 1]; ``eval_accuracy``:
    the held-out accuracy at every evaluation, by step, so curves can be compared seed by seed)."""
    base = next((e for e in evals if e["step"] == 0), {})
    final = evals[-1] if evals else {}
    rec = {"task": spec.task, "objective": spec.objective, "seed": spec.seed, "aggregation": spec.aggregation,
           "mu": spec.mu, "ablation": spec.ablation, "steps": len(history), "base_accuracy": base.get("accuracy"),
           "final_accuracy": final.get("accuracy"), "eval_accuracy": {str(e["step"]): e.get("accuracy") for e in evals}}
    rec.update({k: final.get(k) for k in ("len_correct", "len_incorrect", "len_incorrect_complete",
                                           "len_incorrect_worked", "share_incorrect_guess")})
    rec.update({f"base_{k}": base.get(k) for k in ("len_incorrect_complete", "len_incorrect_worked", "share_incorrect_guess")})
    rec.update(base_len_correct=base.get("len_correct"), base_len_incorrect=base.get("len_incorrect"),
               base_truncated=base.get("truncated"), final_truncated=final.get("truncated"), eval_step=final.get("step"),
               **{f"train_{k}": _tail_mean(history, k) for k in ("accuracy", "len_correct", "len_incorrect")},
               train_clip_frac=_tail_mean(history, "clip_frac", len(history)),  # at least its steps' time (a killed run loses the rest)
               wall_s=round(max(wall_s, sum(h.get("seconds_gen", 0) + h.get("seconds_train", 0) for h in history)), 1))
    rec["gain"] = None if None in (rec["final_accuracy"], rec["base_accuracy"]) else rec["final_accuracy"] - rec["base_accuracy"]
    own = {k: v for k, v in (("optimizer", spec.optimizer), ("precision", spec.precision)) if v not in ("adamw", None)}
    return {**rec, **own, **more}  # a spec's own optimizer or precision is named in its record


_NO_SPLIT: set = set()  # (task, split) pairs already reported as missing


def measure(model, tokenizer, task, settings: Settings, cfg, seed: int, pass_k: bool = True,
            known: float | None = None) -> dict:
    """A model's held-out measurements, asked as training asks them (chat template, dtype, cap).

    Returns (each only when ``settings`` asks for it) ``temperature_sweep``: accuracy on
    ``eval_examples`` x ``sweep_samples`` at each :data:`SWEEP_TEMPERATURES` and the training one
    (keys "0.3", ...) and ``greedy``; ``eval_repeat``: [accuracy at the training temperature, seed
    ``seed``, the same with ``seed + 1``]; ``pass_at_k`` ({"k": value}) and ``pass_at_k_counts``
    ({"split", "n", "correct": right answers per problem}) on ``settings.pass_k_split``. A task
    without that split gets one line and no pass@k. ``known``: the accuracy at the training
    temperature, measured already (a run's last evaluation, when ``settings.sweep_runs`` is False):
    the sweep is then that one value, and the repeat one more evaluation beside it.
    """
    from course_lib.evaluate import evaluate_as_trained

    out: dict = {}
    if settings.sweep_samples:
        test, sweep = task.load("test", n=settings.eval_examples), {}
        for t in dict.fromkeys((*SWEEP_TEMPERATURES, float(cfg.temperature))) if known is None else ():
            res = evaluate_as_trained(model, tokenizer, task, dataclasses.replace(cfg, temperature=t), test,
                                      samples=settings.sweep_samples, greedy=t == SWEEP_TEMPERATURES[0],
                                      batch_size=256, seed=seed)
            sweep[str(t)] = res["accuracy"]
            sweep.setdefault("greedy", res.get("accuracy_greedy"))
        sweep.setdefault(str(float(cfg.temperature)), known)
        again = evaluate_as_trained(model, tokenizer, task, cfg, test, greedy=False, batch_size=256, seed=seed + 1,
                                    samples=settings.sweep_samples if known is None else cfg.eval_samples)["accuracy"]
        out.update(temperature_sweep=sweep, eval_repeat=[sweep[str(float(cfg.temperature))], again])
    if settings.pass_k and pass_k:
        try:
            examples = task.load(settings.pass_k_split, n=settings.pass_k_examples)
        except (ValueError, KeyError, FileNotFoundError) as e:
            if (task.name, settings.pass_k_split) not in _NO_SPLIT:
                print(f"pass@k skipped on {task.name}: no {settings.pass_k_split!r} split ({e})")
            _NO_SPLIT.add((task.name, settings.pass_k_split))
            return out
        res = evaluate_as_trained(model, tokenizer, task, cfg, examples, samples=settings.pass_k, greedy=False,
                                  k_values=PASS_KS, batch_size=256, seed=seed)
        out["pass_at_k"] = {str(k): res[f"pass@{k}"] for k in PASS_KS if k <= settings.pass_k}
        out["pass_at_k_counts"] = {"split": settings.pass_k_split, "n": settings.pass_k,
                                   "correct": res["correct_per_problem"]}
    return out


def step0_file(folder: Path, cfg) -> Path:
    """Where the step-0 evaluation of ``cfg`` is kept in ``folder``: named by the settings it depends on."""
    key = json.dumps({k: v for k, v in asdict(cfg).items() if k not in TRAINING_ONLY}, sort_keys=True)
    return Path(folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def run_one(spec: RunSpec, cfg, run_dir: Path, settings: Settings, *, model, tokenizer, init_state, task,
            progress: bool = True, step0: Path | None = None) -> dict:
    """Train one run in ``run_dir`` (skip it when finished with the same settings, resume it when
    it has a checkpoint) and return its record with ``status`` "skipped", "resumed", "ran" or
    "interrupted" (no result.json then). ``step0``: the folder of shared step-0 evaluations."""
    import torch

    from course_lib.models import weights_source
    from course_lib.runs import CHECKPOINT, PREVIOUS
    from course_lib.trainer import train

    prev = _finished(run_dir, cfg, spec)
    if prev is not None:
        return {**prev, "status": "skipped"}
    resume = (run_dir / CHECKPOINT).exists() or (run_dir / PREVIOUS).exists()
    with torch.no_grad():  # the same starting weights for every run
        for n, p in model.named_parameters():
            if n in init_state:
                p.copy_(init_state[n])
    wall_file = run_dir / "wall_s.json"
    prior = json.loads(wall_file.read_text())["wall_s"] if resume and wall_file.exists() else 0.0
    shared = step0_file(step0, cfg) if step0 is not None else None
    first = json.loads(shared.read_text()) if shared is not None and shared.exists() else None
    t0 = time.perf_counter()
    res = train(cfg, run_dir=run_dir, resume=resume, overwrite=not resume, model=model, tokenizer=tokenizer, task=task,
                progress=progress, first_eval=first, callback=lambda m, h: wall_file.write_text(  # a killed run keeps its time
                    json.dumps({"wall_s": prior + time.perf_counter() - t0})))
    if shared is not None and first is None and res.evals[:1] and res.evals[0]["step"] == 0:
        shared.parent.mkdir(parents=True, exist_ok=True)
        (tmp := shared.with_suffix(f".{os.getpid()}.tmp")).write_text(json.dumps(res.evals[0], indent=2))
        tmp.replace(shared)  # whole or absent, whichever worker writes it
    wall = prior + time.perf_counter() - t0
    wall_file.write_text(json.dumps({"wall_s": wall}))
    rec = run_record(spec, res.history, res.evals, wall, run_dir=spec.dirname, skipped_updates=res.skipped_updates,
                     weights=weights_source(model), learning_rate=cfg.learning_rate, temperature=cfg.temperature)
    if res.interrupted:
        return {**rec, "status": "interrupted"}
    if not spec.ablation:
        known = None if settings.sweep_runs else res.evals[-1]["accuracy"]  # the base alone is swept
        rec.update(measure(model, tokenizer, task, settings, cfg, cfg.seed + 4321, spec.seed < settings.pass_k_seeds,
                           known))
    (run_dir / RESULT).write_text(json.dumps({"config": asdict(cfg), "record": rec}, indent=2))
    return {**rec, "status": "resumed" if resume else "ran"}


def _finished(run_dir: Path, cfg, spec: RunSpec) -> dict | None:
    """The record of a run finished with the settings ``cfg``, rebuilt from its files (so a
    record gains the fields this version computes), or None."""
    done = run_dir / RESULT
    prev = json.loads(done.read_text()) if done.exists() else {}
    if "config" not in prev or _settings(prev["config"], cfg) != asdict(cfg):
        return None
    old = prev["record"]
    rec = run_record(spec, read_jsonl(run_dir / "metrics.jsonl"), read_jsonl(run_dir / "eval.jsonl"), old["wall_s"],
                     learning_rate=cfg.learning_rate, temperature=cfg.temperature)
    return {**rec, **{k: v for k, v in old.items() if k not in rec}}  # run_dir, measurements, weights


def _settings(saved: dict, cfg) -> dict:
    """``saved`` with the TrainConfig fields added since at their defaults (what those runs used)."""
    return {**{f.name: f.default for f in dataclasses.fields(cfg) if f.default is not dataclasses.MISSING}, **saved}


def check_run_dirs(out: Path, specs, configs, overwrite: bool) -> list[str]:
    """Run directories under ``out`` whose saved settings differ from the planned ones (other
    than ``steps``); with ``overwrite`` they are emptied instead (returns the ones emptied)."""
    from course_lib.runs import RECORD

    conflicts = []
    for spec, cfg in zip(specs, configs):
        d = out / "runs" / spec.dirname
        saved = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else None
        if saved is not None and {**_settings(saved, cfg), "steps": cfg.steps} != asdict(cfg):
            conflicts.append(spec.dirname)
            if overwrite:
                for f in (*RECORD, RESULT, "wall_s.json"):
                    (d / f).unlink(missing_ok=True)
    return conflicts


# --------------------------------------------------------------------------- worker processes

_WORKER: dict = {}


def _worker_init(profile: str, threads: int, precision: str) -> None:
    import torch

    torch.set_num_threads(threads)
    model, tok = _load_base(profile, precision)  # the same starting adapters in every process
    _WORKER.update(model=model, tokenizer=tok, init={n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})


def _worker_run(spec: RunSpec, cfg, run_dir: str, settings: Settings, step0: str) -> dict:
    from course_lib.tasks import get_task

    if _WORKER.get("stop"):  # after a Ctrl-C, runs already queued to this process start no more
        return {"status": "cancelled"}
    rec = run_one(spec, cfg, Path(run_dir), settings, model=_WORKER["model"], tokenizer=_WORKER["tokenizer"],
                  init_state=_WORKER["init"], task=get_task(spec.task), progress=False, step0=Path(step0))
    _WORKER["stop"] = rec["status"] == "interrupted"
    return rec


# ------------------------------------------------------------------------------ the grid


def run_reproduction(out, *, profile: str = "micro", specs: list[RunSpec], settings: Settings,
                     extra: dict | None = None, workers: int = 1, model=None, tokenizer=None,
                     get_task=None, progress: bool = True, command: str | None = None,
                     train: bool = True, on_run=None) -> dict:
    """Run (or skip, or resume) every run of ``specs`` under ``out/runs`` and write the outputs.

    Args:
        specs: from :func:`plan_runs`. settings: steps, evaluation and pass@k of every run.
        extra: further TrainConfig fields for every run (tests shrink the batch with it).
        workers: parallel processes (each loads the base model; torch threads split evenly).
        model, tokenizer, get_task: the base policy and ``name -> Task`` (tests pass tiny ones;
            default: the profile's model and ``course_lib.tasks.get_task``).
        train: False = run nothing, only rebuild the outputs from the finished runs.
        on_run: ``on_run(done, planned, record)`` after each run trained here (progress lines).

    Returns:
        The results written to ``out/results.json``, plus ``"status"`` per run in ``specs``
        order ("skipped" / "resumed" / "ran" / "interrupted" / "pending") and ``"interrupted"``.
    """
    from course_lib import tasks

    out, get_task = Path(out), get_task or tasks.get_task
    (out / "runs").mkdir(parents=True, exist_ok=True)
    configs = [make_config(profile, s, settings, extra) for s in specs]
    records = {s: {**r, "status": "skipped"} for s, c in zip(specs, configs)
               if (r := _finished(out / "runs" / s.dirname, c, s)) is not None}
    todo = [(s, c) for s, c in zip(specs, configs) if s not in records] if train else []
    started, interrupted = time.perf_counter(), False

    def finished(spec, rec):
        records[spec] = rec
        write_outputs(out, profile, specs, settings, records, command, time.perf_counter() - started)
        if on_run is not None:
            on_run(sum(s in records for s, _ in todo), len(todo), rec)
        return rec["status"] == "interrupted"

    try:
        if train and (todo and workers == 1 or _base_measure(out, specs, configs, settings, get_task, None)):
            model, tokenizer = (model, tokenizer) if model is not None else _load_base(profile, configs[0].precision)
            _base_measure(out, specs, configs, settings, get_task, (model, tokenizer))
        if todo and (workers > 1 or len({c.precision for _, c in todo}) > 1):  # a worker loads the base in one precision
            interrupted = _run_in_workers(out, profile, todo, settings, workers, finished)
        elif todo:
            init = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            for spec, cfg in todo:
                rec = run_one(spec, cfg, out / "runs" / spec.dirname, settings, model=model, tokenizer=tokenizer,
                              init_state=init, task=get_task(spec.task), progress=progress, step0=out / "base" / "step0")
                if finished(spec, rec):
                    interrupted = True
                    break
    except KeyboardInterrupt:
        interrupted = True
    results = write_outputs(out, profile, specs, settings, records, command, time.perf_counter() - started,
                            figures=True)
    results["status"] = [records[s]["status"] if s in records else "pending" for s in specs]
    results["interrupted"] = interrupted
    return results


def _load_base(profile: str, precision: str):
    """The base policy, loaded for the runs' precision (bf16 stores the frozen weights in bf16)."""
    import torch

    from course_lib.models import load_policy

    torch.manual_seed(0)  # LoRA's random A matrices: the same starting adapters in every process
    return load_policy(profile, precision=precision)


def _run_in_workers(out: Path, profile: str, todo, settings: Settings, workers: int, finished) -> bool:
    """Runs in up to ``workers`` spawned processes (one model each), one pool per precision, bf16 last
    where this CPU only emulates it (``loading.BF16_EMULATED``); True when interrupted."""
    import concurrent.futures as cf
    import multiprocessing as mp

    import torch

    threads, native = max(1, torch.get_num_threads() // workers), torch.ops.mkldnn._is_mkldnn_bf16_supported()
    for precision in sorted({c.precision for _, c in todo}, key=lambda p: (p == "bf16" and not native, p)):
        group = [(s, c) for s, c in todo if c.precision == precision]
        pool = cf.ProcessPoolExecutor(min(workers, len(group)), mp_context=mp.get_context("spawn"),
                                      initializer=_worker_init, initargs=(profile, threads, precision))
        futures = {pool.submit(_worker_run, s, c, str(out / "runs" / s.dirname), settings, str(out / "base" / "step0")): s
                   for s, c in group}
        try:
            for fut in cf.as_completed(futures):
                try:
                    if finished(futures[fut], fut.result()):
                        return True
                except cf.process.BrokenProcessPool:
                    print(f"a worker process died during {futures[fut].label} (killed from outside, or out of "
                          "memory); finished runs are kept: run the same command again to continue")
                    return True
        except KeyboardInterrupt:
            return True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a running run got the Ctrl-C too and checkpoints
    return False


def _base_measure(out: Path, specs, configs, settings: Settings, get_task, policy) -> bool:
    """The base model's :func:`measure` per task, once (``out/base/TASK.json``). With
    ``policy=None`` only says whether any is missing."""
    missing = [(s, c) for s, c in {s.task: (s, c) for s, c in reversed(list(zip(specs, configs)))}.values()  # a task's first
               if (settings.pass_k or settings.sweep_samples) and not (out / "base" / f"{s.task}.json").exists()]
    for spec, cfg in missing if policy is not None else []:
        (out / "base").mkdir(exist_ok=True)
        found = measure(*policy, get_task(spec.task), settings, cfg, 4321)
        (out / "base" / f"{spec.task}.json").write_text(json.dumps(found, indent=2))
    return bool(missing)


def default_workers(profile: str) -> int:
    """2 parallel single-threaded runs for micro on a CPU-only machine with >= 2 cores (about
    half the wall time of one after another), else 1 (a GPU holds one Qwen run at a time)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 2 if profile == "micro" and cores >= 2 and not torch.cuda.is_available() else 1
