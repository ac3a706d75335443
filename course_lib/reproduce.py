"""The paper's comparison in one command: every objective, every task, several seeds.

``python -m course_lib reproduce --profile micro --out results/micro`` trains each
(task, objective, seed) from the same base model with the same budget, evaluates held-out
accuracy and answer lengths, and writes into ``OUT``::

    runs/TASK/OBJECTIVE_AGGREGATION/seedS/   one run of course_lib.trainer (metrics.jsonl,
                                             eval.jsonl, checkpoint.pt) + result.json when done
    results.json    {"runs": [...], "summary": [...], "ablation": [...], "settings": {...}}
    results.md      the tables (and the paper's reported numbers, labelled)
    accuracy_over_steps.png, lengths_over_steps.png, aggregation_ablation.png

Run it again with the same options and finished runs are skipped (their ``result.json`` is
there and was written with the same settings), an interrupted run resumes from its
checkpoint, and the tables and figures are rebuilt from every run directory.

The comparison is *paired*: for a given seed every objective starts from the same weights,
sees the training problems in the same order, and is evaluated on the same held-out problems
with the same sampling seed. The aggregation ablation (the causal test of the length claim,
paper's Claim 3) reruns the ablation objectives with ``aggregation="token"`` (DAPO) and
``"constant"`` (Dr. GRPO) next to the default ``"sequence"`` (GRPO's 1/|o_i|).

What is simplified, and why:

- Confidence intervals are Student-t intervals over seeds (mean +- t(0.975, n-1) s / sqrt(n)):
  with 3 seeds they are wide, which is the honest answer for 3 seeds. They cover seed-to-seed
  variation of training *and* of the sampled evaluation; evaluation noise alone is smaller
  (``eval_examples`` x ``eval_samples`` sampled answers per point).
- Accuracy is sampled accuracy at the training temperature (mean over ``eval_samples`` draws
  per problem); greedy accuracy is a poor signal on the micro model (DESIGN notes).
- Lengths over steps come from the training rollouts (every step, all samples), smoothed by a
  moving average; the final lengths in the tables come from the held-out evaluation.
- Runs execute one after another, or in ``--workers`` processes with the CPU threads split
  between them; nothing else is scheduled or retried.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from course_lib import DATA_DIR

__all__ = [
    "ABLATION_AGGREGATIONS",
    "OBJECTIVE_OVERRIDES",
    "RunSpec",
    "Budget",
    "plan_runs",
    "t_quantile",
    "mean_ci",
    "summarize",
    "make_config",
    "run_record",
    "run_reproduction",
    "write_outputs",
    "main",
]

#: the aggregations of the length ablation: GRPO's 1/|o_i|, DAPO's token mean, Dr. GRPO's constant
ABLATION_AGGREGATIONS = ("sequence", "token", "constant")
#: settings that belong to one objective. Balancing the two signs within a group keeps an
#: unbalanced push-down (7 wrong answers against 1 right one) from driving F-ISFT+- into long
#: wrong answers (course_lib.objectives.signed_weights, issue notes of the loop).
OBJECTIVE_OVERRIDES: dict[str, dict] = {"sft+-": {"balance": True}}
RESULT = "result.json"
PAPER_RESULTS = "paper_results.json"
# profile name -> the model name used in data/paper_results.json, task name -> paper task
_PAPER_MODEL = {"qwen2.5-0.5b": "Qwen2.5-0.5B", "qwen2.5-1.5b": "Qwen2.5-1.5B",
                "llama3.2-1b-instruct": "Llama-3.2-1B-Instruct"}
_PAPER_TASKS = ("gsm8k", "countdown")


# ------------------------------------------------------------------------------------ planning


@dataclass(frozen=True)
class RunSpec:
    """One training run. ``ablation`` marks runs that exist only for the aggregation ablation.

    Example: ``RunSpec("countdown-micro", "grpo", 0).dirname`` -> ``countdown-micro/grpo_sequence/seed0``.
    """

    task: str
    objective: str
    seed: int
    aggregation: str = "sequence"
    ablation: bool = False

    @property
    def dirname(self) -> str:
        return f"{self.task}/{self.objective}_{self.aggregation}/seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.task} {self.objective} [{self.aggregation}] seed {self.seed}"


@dataclass(frozen=True)
class Budget:
    """The budget every run gets: steps, and the held-out evaluation's size and schedule."""

    steps: int
    eval_every: int
    eval_examples: int
    eval_samples: int


#: --quick: a smoke run of the whole pipeline (every objective, both tasks, a small ablation)
#: that fits in a few minutes on 2 CPU cores. Too short for the curves to mean much.
QUICK = {"steps": 12, "eval_every": 0, "eval_examples": 50, "eval_samples": 2, "seeds": 1}


def plan_runs(tasks, objectives, seeds, *, ablation_objectives=("grpo",),
              ablation_aggregations=ABLATION_AGGREGATIONS, ablation_tasks=None,
              main_aggregation: str = "sequence") -> list[RunSpec]:
    """Every run of a reproduction without duplicates, seed by seed: all of seed 0 (main
    comparison, then ablation), then seed 1, ... so a reproduction stopped early leaves
    complete seeds behind.

    The main runs use ``main_aggregation``; each ablation objective is also run with the other
    ``ablation_aggregations`` on ``ablation_tasks`` (default: all tasks), same seeds.

    Example: ``plan_runs(["t"], ["grpo", "sft+"], [0], ablation_aggregations=("sequence", "token"))``
    -> t/grpo/sequence, t/sft+/sequence, t/grpo/token (ablation).
    """
    specs: list[RunSpec] = []
    for s in seeds:
        main = [RunSpec(t, o, s, main_aggregation) for t in tasks for o in objectives]
        seen = set(main)
        specs += main
        for t in (ablation_tasks if ablation_tasks is not None else tasks):
            for o in ablation_objectives:
                for a in ablation_aggregations:
                    spec = RunSpec(t, o, s, a, ablation=True)
                    if dataclasses.replace(spec, ablation=False) in seen or spec in seen:
                        continue
                    seen.add(spec)
                    specs.append(spec)
    return specs


# --------------------------------------------------------------------------- confidence intervals

# two-sided 95% Student-t quantiles t(0.975, df), df = 1..30 (standard tables)
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
         2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
         2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t_quantile(df: int) -> float:
    """t(0.975, df), the multiplier of a two-sided 95% t-interval.

    df <= 30 from the table; above, the Cornish-Fisher expansion around z = 1.95996
    (error < 1e-4 for df > 30).

    Example: ``t_quantile(2)`` -> 4.3027; ``t_quantile(10**6)`` -> 1.9600.
    """
    if df < 1:
        raise ValueError(f"t_quantile needs df >= 1 (at least two seeds), got df={df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return (z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3))


def mean_ci(values) -> dict:
    """Mean and 95% t-interval over seeds; ``None`` values are left out.

    Returns ``{"mean", "ci_low", "ci_high", "half_width", "std", "n"}`` (sample std, ddof 1).
    With one value the interval is ``None`` (one seed says nothing about seed variance).

    Example: ``mean_ci([1, 2, 3])`` -> mean 2, std 1, half width 4.3027 / sqrt(3) = 2.4841.
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "half_width": None, "std": None, "n": 0}
    mean = sum(xs) / n
    if n == 1:
        return {"mean": mean, "ci_low": None, "ci_high": None, "half_width": None, "std": None, "n": 1}
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "half_width": half,
            "std": std, "n": n}


SUMMARY_METRICS = ("base_accuracy", "final_accuracy", "gain", "len_correct", "len_incorrect",
                   "train_len_correct", "train_len_incorrect")


def summarize(runs: list[dict], *, reference: str = "grpo") -> list[dict]:
    """One entry per (task, objective, aggregation): mean and 95% CI over seeds of each metric
    in ``SUMMARY_METRICS``, plus the paired difference of final accuracy to ``reference``
    (same task, aggregation and seed) when that objective ran."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["objective"], r["aggregation"]), []).append(r)
    by_key = {(r["task"], r["objective"], r["aggregation"], r["seed"]): r for r in runs}
    out = []
    for (task, obj, agg), rs in groups.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        entry = {"task": task, "objective": obj, "aggregation": agg,
                 "ablation": all(r.get("ablation", False) for r in rs),
                 "seeds": [r["seed"] for r in rs], "n": len(rs)}
        for m in SUMMARY_METRICS:
            entry[m] = mean_ci(r.get(m) for r in rs)
        if obj != reference:
            diffs = [r["final_accuracy"] - by_key[(task, reference, agg, r["seed"])]["final_accuracy"]
                     for r in rs if (task, reference, agg, r["seed"]) in by_key]
            entry[f"diff_vs_{reference}"] = mean_ci(diffs) if diffs else None
        out.append(entry)
    tasks = list(dict.fromkeys(r["task"] for r in runs))
    from course_lib.trainer import OBJECTIVES

    objs = list(dict.fromkeys(list(OBJECTIVES) + [r["objective"] for r in runs]))
    aggs = list(dict.fromkeys(list(ABLATION_AGGREGATIONS) + [r["aggregation"] for r in runs]))
    return sorted(out, key=lambda e: (tasks.index(e["task"]), objs.index(e["objective"]),
                                      aggs.index(e["aggregation"])))


# ---------------------------------------------------------------------------------- one run


def _quiet(fn, *a, **kw):
    """Call ``fn`` with its stdout swallowed (get_profile prints a line on every call)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*a, **kw)


def make_config(profile: str, spec: RunSpec, budget: Budget, extra: dict | None = None):
    """The TrainConfig of one run: the profile's settings, the objective's overrides, the budget."""
    from course_lib.trainer import TrainConfig

    over = {**OBJECTIVE_OVERRIDES.get(spec.objective, {}), **(extra or {})}
    return _quiet(TrainConfig.from_profile, profile, task=spec.task, objective=spec.objective,
                  seed=spec.seed, aggregation=spec.aggregation, steps=budget.steps,
                  eval_every=budget.eval_every, eval_examples=budget.eval_examples,
                  eval_samples=budget.eval_samples, **over)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _tail_mean(history: list[dict], key: str, k: int = 10):
    xs = [h[key] for h in history[-k:] if h.get(key) is not None]
    return sum(xs) / len(xs) if xs else None


def run_record(spec: RunSpec, history: list[dict], evals: list[dict], wall_s: float, **more) -> dict:
    """The results.json entry of one finished run (accuracies are fractions in [0, 1])."""
    base = next((e for e in evals if e["step"] == 0), None)
    final = evals[-1] if evals else None
    get = lambda e, k: None if e is None else e.get(k)  # noqa: E731
    rec = {
        "task": spec.task, "objective": spec.objective, "seed": spec.seed,
        "aggregation": spec.aggregation, "ablation": spec.ablation,
        "base_accuracy": get(base, "accuracy"), "final_accuracy": get(final, "accuracy"),
        "len_correct": get(final, "len_correct"), "len_incorrect": get(final, "len_incorrect"),
        "base_len_correct": get(base, "len_correct"), "base_len_incorrect": get(base, "len_incorrect"),
        "final_truncated": get(final, "truncated"),
        "train_accuracy": _tail_mean(history, "accuracy"),
        "train_len_correct": _tail_mean(history, "len_correct"),
        "train_len_incorrect": _tail_mean(history, "len_incorrect"),
        "steps": len(history), "eval_step": get(final, "step"), "wall_s": round(wall_s, 1),
    }
    rec["gain"] = (None if rec["final_accuracy"] is None or rec["base_accuracy"] is None
                   else rec["final_accuracy"] - rec["base_accuracy"])
    rec.update(more)
    return rec


def _same_settings(a: dict, b: dict, ignore=("steps",)) -> bool:
    return {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}


def run_one(spec: RunSpec, cfg, run_dir: Path, *, model, tokenizer, init_state: dict, task=None,
            progress: bool = True) -> dict:
    """Train one run in ``run_dir`` (skip it if finished with the same config, resume it if a
    checkpoint with the same settings is there) and return its record with ``status`` set to
    "skipped", "resumed" or "ran" (``"interrupted"`` on Ctrl-C; no result.json then)."""
    import torch

    from course_lib.trainer import train

    want = asdict(cfg)
    done = run_dir / RESULT
    if done.exists():
        prev = json.loads(done.read_text())
        if prev.get("config") == want:
            return {**prev["record"], "status": "skipped"}
    resume = False
    cfg_file = run_dir / "config.json"
    if (run_dir / "checkpoint.pt").exists() and cfg_file.exists():
        resume = _same_settings(json.loads(cfg_file.read_text()), want)
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)  # another config (or a half-written start): begin afresh
    run_dir.mkdir(parents=True, exist_ok=True)
    wall_file = run_dir / "wall_s.json"
    prior = json.loads(wall_file.read_text())["wall_s"] if resume and wall_file.exists() else 0.0
    with torch.no_grad():  # the same starting weights for every run
        for n, p in model.named_parameters():
            if n in init_state:
                p.copy_(init_state[n])
    t0 = time.perf_counter()
    res = train(cfg, run_dir=run_dir, resume=resume, model=model, tokenizer=tokenizer, task=task,
                progress=progress)
    wall = prior + time.perf_counter() - t0
    wall_file.write_text(json.dumps({"wall_s": wall}))
    rec = run_record(spec, res.history, res.evals, wall, stopped=res.stopped,
                     skipped_updates=res.skipped_updates, run_dir=str(Path(spec.dirname)))
    if res.interrupted:
        return {**rec, "status": "interrupted"}
    done.write_text(json.dumps({"config": want, "record": rec}, indent=2))
    return {**rec, "status": "resumed" if resume else "ran"}


# --------------------------------------------------------------------------- worker processes

_WORKER: dict = {}


def _worker_init(profile: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from course_lib.models import load_policy

    model, tok = _quiet(load_policy, profile)
    _WORKER.update(model=model, tokenizer=tok,
                   init={n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad})


def _worker_run(spec: RunSpec, cfg, run_dir: str) -> dict:
    if _WORKER.get("stop"):  # after a Ctrl-C, runs already queued to this process start no more
        return {"status": "cancelled"}
    rec = run_one(spec, cfg, Path(run_dir), model=_WORKER["model"], tokenizer=_WORKER["tokenizer"],
                  init_state=_WORKER["init"], progress=False)
    if rec["status"] == "interrupted":
        _WORKER["stop"] = True
    return rec


# ----------------------------------------------------------------------------- the reproduction


def run_reproduction(
    out: str | os.PathLike,
    *,
    profile: str = "micro",
    specs: list[RunSpec],
    budget: Budget,
    extra: dict | None = None,
    workers: int = 1,
    model=None,
    tokenizer=None,
    get_task=None,
    progress: bool = True,
    command: str | None = None,
    train: bool = True,
) -> dict:
    """Run (or skip, or resume) every run of ``specs`` under ``out/runs`` and write the outputs.

    Args:
        out: the output folder.
        profile: a name from ``course_lib.models.PROFILES``.
        specs: from :func:`plan_runs`.
        budget: steps and evaluation size of every run.
        extra: further TrainConfig overrides for every run (e.g. ``prompts_per_step``).
        workers: parallel processes (each loads the base model; torch threads split evenly).
        model, tokenizer: the base policy (default ``load_policy(profile)``); tests pass a tiny one.
        get_task: ``name -> Task`` (default ``course_lib.tasks.get_task``).
        train: False = run nothing, only rebuild the outputs from the finished runs.

    Returns:
        The results dict written to ``out/results.json``, plus ``"status"``: one of
        "skipped" / "resumed" / "ran" / "interrupted" per run, in ``specs`` order.
    """
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    configs = [make_config(profile, s, budget, extra) for s in specs]
    from tqdm.auto import tqdm

    started = time.perf_counter()
    records: dict[RunSpec, dict] = {}
    bar = tqdm(total=len(specs), desc="runs", disable=not progress, position=0)
    todo = []
    for spec, cfg in zip(specs, configs):  # finished runs first: no model needed for them
        done = out / "runs" / spec.dirname / RESULT
        prev = json.loads(done.read_text()) if done.exists() else None
        if prev is not None and prev.get("config") == asdict(cfg):
            records[spec] = {**prev["record"], "status": "skipped"}
            bar.update(1)
        elif train:
            todo.append((spec, cfg))
    interrupted = False
    try:
        workers = min(workers, len(todo))
        if todo and workers > 1:
            if model is not None or get_task is not None:
                raise ValueError("workers > 1 loads the profile's model in each process; "
                                 "pass model/get_task only with workers=1")
            import concurrent.futures as cf
            import multiprocessing as mp

            import torch

            threads = max(1, torch.get_num_threads() // workers)
            pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                          initializer=_worker_init, initargs=(profile, threads))
            futs = {pool.submit(_worker_run, s, c, str(out / "runs" / s.dirname)): s for s, c in todo}
            try:
                for fut in cf.as_completed(futs):
                    spec = futs[fut]
                    try:
                        records[spec] = fut.result()
                    except cf.process.BrokenProcessPool:
                        print(f"a worker process died during {spec.label} (killed from outside, or out "
                              "of memory); finished runs are kept: run the same command again to "
                              "continue", file=sys.stderr)
                        interrupted = True
                        break
                    if records[spec]["status"] == "interrupted":  # Ctrl-C reached the workers
                        interrupted = True
                        break
                    bar.update(1)
                    bar.set_postfix_str(spec.label)
                    write_outputs(out, profile, specs, budget, records, command=command,
                                  wall_s=time.perf_counter() - started)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                # start nothing new; a running run got the Ctrl-C too and writes its checkpoint
                pool.shutdown(wait=True, cancel_futures=True)
        elif todo:
            if model is None:
                from course_lib.models import load_policy

                model, tokenizer = load_policy(profile)
            init = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
            if get_task is None:
                from course_lib.tasks import get_task
            for spec, cfg in todo:
                bar.set_postfix_str(spec.label)
                rec = run_one(spec, cfg, out / "runs" / spec.dirname, model=model, tokenizer=tokenizer,
                              init_state=init, task=get_task(spec.task), progress=progress)
                records[spec] = rec
                if rec["status"] == "interrupted":
                    interrupted = True
                    break
                bar.update(1)
                write_outputs(out, profile, specs, budget, records, command=command,
                              wall_s=time.perf_counter() - started)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    results = write_outputs(out, profile, specs, budget, records, command=command,
                            wall_s=time.perf_counter() - started, figures=True)
    results["status"] = [records[s]["status"] if s in records else "pending" for s in specs]
    results["interrupted"] = interrupted
    return results


# --------------------------------------------------------------------------------- the outputs


def load_paper_results() -> dict | None:
    """``data/paper_results.json`` (the paper's reported accuracies, percent), or None."""
    path = Path(DATA_DIR) / PAPER_RESULTS
    return json.loads(path.read_text()) if path.exists() else None


def write_outputs(out: Path, profile: str, specs: list[RunSpec], budget: Budget, records: dict,
                  *, command: str | None = None, wall_s: float = 0.0, figures: bool = False) -> dict:
    """results.json and results.md from the finished runs (and the figures when ``figures``)."""
    done = [records[s] for s in specs if s in records and records[s].get("status") != "interrupted"]
    runs = [{k: v for k, v in r.items() if k != "status"} for r in done]
    summary = summarize(runs)
    results = {
        "profile": profile,
        "command": command,
        "settings": asdict(budget),
        "units": {"accuracy": "fraction of sampled held-out answers that are correct (0-1); "
                              "gain = final - base",
                  "length": "tokens per completion, end-of-text token included",
                  "ci": "95% Student-t interval over seeds: mean +- t(0.975, n-1) * std / sqrt(n)"},
        "planned_runs": len(specs),
        "finished_runs": len(runs),
        "wall_s": round(wall_s, 1),
        "runs_wall_s": round(sum(r.get("wall_s") or 0 for r in runs), 1),
        "runs": runs,
        "summary": [s for s in summary if not s["ablation"]],
        "ablation": [s for s in summary if _in_ablation(s, specs)],
    }
    if figures and runs:
        results["figures"] = make_figures(out, specs)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(results_markdown(results, profile))
    return results


def _in_ablation(entry: dict, specs: list[RunSpec]) -> bool:
    return any(s.ablation and s.task == entry["task"] and s.objective == entry["objective"] for s in specs)


def _pct(ci: dict | None, digits: int = 1) -> str:
    if not ci or ci.get("mean") is None:
        return "-"
    if ci.get("half_width") is None:
        return f"{100 * ci['mean']:.{digits}f}"
    return f"{100 * ci['mean']:.{digits}f} ± {100 * ci['half_width']:.{digits}f}"


def _num(ci: dict | None) -> str:
    if not ci or ci.get("mean") is None:
        return "-"
    if ci.get("half_width") is None:
        return f"{ci['mean']:.1f}"
    return f"{ci['mean']:.1f} ± {ci['half_width']:.1f}"


def _paper_lookup(paper: dict | None, profile: str, task: str) -> dict | None:
    if not paper or profile not in _PAPER_MODEL or task not in _PAPER_TASKS:
        return None
    for row in paper["results"]:
        if row["model"] == _PAPER_MODEL[profile] and row["task"] == task:
            return row
    return None


def summary_table(results: dict, profile: str, paper: dict | None = None) -> str:
    """The main table as markdown: one row per (task, objective); ``paper`` defaults to
    :func:`load_paper_results`."""
    paper = load_paper_results() if paper is None else paper
    tasks = list(dict.fromkeys(s["task"] for s in results["summary"]))
    with_paper = any(_paper_lookup(paper, profile, t) for t in tasks)
    head = ["task", "objective", "seeds", "base acc %", "final acc %", "gain (pts)",
            "vs grpo (pts, paired)", "len correct", "len incorrect"]
    if with_paper:
        head.append("paper (reported) %")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in results["summary"]:
        diff = s.get("diff_vs_grpo")
        row = [s["task"], s["objective"], str(s["n"]), _pct(s["base_accuracy"]), _pct(s["final_accuracy"]),
               _pct(s["gain"]), _pct(diff) if diff else "-", _num(s["len_correct"]), _num(s["len_incorrect"])]
        if with_paper:
            p = _paper_lookup(paper, profile, s["task"])
            row.append(f"{p[s['objective']]:.2f}" if p and s["objective"] in p else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def ablation_table(results: dict) -> str:
    head = ["task", "objective", "aggregation", "seeds", "final acc %", "len correct", "len incorrect",
            "train len correct", "train len incorrect"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in sorted(results["ablation"], key=lambda s: (s["task"], s["objective"],
                                                        ABLATION_AGGREGATIONS.index(s["aggregation"]))):
        lines.append("| " + " | ".join([s["task"], s["objective"], s["aggregation"], str(s["n"]),
                                        _pct(s["final_accuracy"]), _num(s["len_correct"]),
                                        _num(s["len_incorrect"]), _num(s["train_len_correct"]),
                                        _num(s["train_len_incorrect"])]) + " |")
    return "\n".join(lines) + "\n"


def results_markdown(results: dict, profile: str) -> str:
    b = results["settings"]
    paper = load_paper_results()
    parts = [
        f"# Reproduction: profile `{profile}`\n",
        f"Command: `{results['command']}`\n" if results.get("command") else "",
        f"{results['finished_runs']} of {results['planned_runs']} runs finished; "
        f"{b['steps']} steps per run; held-out evaluation on {b['eval_examples']} problems x "
        f"{b['eval_samples']} samples (sampled accuracy) before training, "
        + (f"every {b['eval_every']} steps " if b["eval_every"] else "")
        + f"and at the end. Wall time: {results['runs_wall_s']:.0f} s summed over the runs "
        f"({results['wall_s']:.0f} s in the last invocation).\n",
        "Values are mean ± half-width of a 95% Student-t interval over seeds "
        "(no interval with one seed). Accuracies in percent; `gain` = final - base, paired by seed; "
        "`vs grpo` = final accuracy minus GRPO's, paired by seed. Lengths in tokens, from the final "
        "held-out evaluation (`len incorrect` includes answers cut at the token cap).\n",
        "## Main comparison\n",
        summary_table(results, profile, paper),
    ]
    if results["ablation"]:
        parts += ["\n## Aggregation ablation (the length claim)\n",
                  "`sequence` = GRPO's 1/|o_i| per completion; `token` = DAPO's mean over all tokens; "
                  "`constant` = Dr. GRPO's sum / (B x max length). Train lengths: mean of the last 10 "
                  "training steps' rollouts.\n",
                  ablation_table(results)]
    if paper and not any(_paper_lookup(paper, profile, s["task"]) for s in results["summary"]):
        parts += ["\n## Paper (reported), for other models\n",
                  f"These are the paper's numbers for its models on the full GSM8K / Countdown tasks, "
                  f"not for profile `{profile}`; they are not comparable with the table above. "
                  f"Source: {paper['source']}. Metric: {paper['metric']}.\n",
                  _paper_table(paper)]
    if results.get("figures"):
        parts += ["\n## Figures\n", "\n".join(f"- `{f}`" for f in results["figures"]) + "\n"]
    return "\n".join(p for p in parts if p)


def _paper_table(paper: dict) -> str:
    objs = ["grpo", "grpo-no-kl", "sft+", "sft+-"]
    lines = ["| model | task | " + " | ".join(objs) + " |", "|" + "---|" * (len(objs) + 2)]
    for r in paper["results"]:
        lines.append(f"| {r['model']} | {r['task']} | "
                     + " | ".join(f"{r[o]:.2f}" if o in r else "-" for o in objs) + " |")
    notes = "".join(f"\n{n}" for n in paper.get("notes", []))
    return "\n".join(lines) + "\n" + notes + "\n"


# ---------------------------------------------------------------------------------- figures


def _smooth(xs: list, k: int) -> list:
    """Trailing moving average that skips None (steps with no correct / no incorrect answer)."""
    out = []
    for i in range(len(xs)):
        w = [x for x in xs[max(0, i - k + 1): i + 1] if x is not None]
        out.append(sum(w) / len(w) if w else float("nan"))
    return out


def _mean_curve(curves: list[list[float]]):
    import numpy as np

    n = min(len(c) for c in curves)
    arr = np.array([c[:n] for c in curves], dtype=float)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(arr, axis=0), np.nanmin(arr, axis=0), np.nanmax(arr, axis=0)


def _histories(out: Path, specs: list[RunSpec]):
    data = {}
    for s in specs:
        d = out / "runs" / s.dirname
        if (d / RESULT).exists():
            data[s] = (_read_jsonl(d / "metrics.jsonl"), _read_jsonl(d / "eval.jsonl"))
    return data


def make_figures(out: Path, specs: list[RunSpec]) -> list[str]:
    """accuracy_over_steps.png, lengths_over_steps.png and (with ablation runs)
    aggregation_ablation.png in ``out``. Returns the file names written."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    data = _histories(out, specs)
    if not data:
        return []
    tasks = list(dict.fromkeys(s.task for s in data))
    main = [s for s in data if not s.ablation]
    main_agg = main[0].aggregation if main else "sequence"
    objectives = list(dict.fromkeys(s.objective for s in main))
    colors = {o: f"C{i}" for i, o in enumerate(list(dict.fromkeys(s.objective for s in specs)))}
    steps = max(len(h) for h, _ in data.values())
    k = max(1, min(10, steps // 6))  # moving-average window of the per-step curves
    written = []

    def group(task, obj, agg):
        return [data[s] for s in data if s.task == task and s.objective == obj and s.aggregation == agg]

    # 1. accuracy: held-out (eval points, mean over seeds, min-max band) and training rollouts
    fig = Figure(figsize=(11, 3.4 * len(tasks)))
    axes = fig.subplots(len(tasks), 2, squeeze=False)
    for r, task in enumerate(tasks):
        for obj in objectives:
            runs = group(task, obj, main_agg)
            if not runs:
                continue
            ev = [[e["accuracy"] for e in evs] for _, evs in runs]
            x = [e["step"] for e in runs[0][1]][: min(map(len, ev))]
            m, lo, hi = _mean_curve(ev)
            axes[r, 0].plot(x, 100 * m, "o-", color=colors[obj], label=obj, ms=3)
            if len(runs) > 1:
                axes[r, 0].fill_between(x, 100 * lo, 100 * hi, color=colors[obj], alpha=0.15)
            tr = [_smooth([h["accuracy"] for h in hist], k) for hist, _ in runs]
            m, _, _ = _mean_curve(tr)
            axes[r, 1].plot(np.arange(1, len(m) + 1), 100 * m, color=colors[obj], label=obj)
        axes[r, 0].set_title(f"{task}: held-out sampled accuracy", fontsize=9)
        axes[r, 1].set_title(f"{task}: accuracy of the training rollouts", fontsize=9)
        for a in axes[r]:
            a.set_xlabel("step")
            a.set_ylabel("accuracy %")
        axes[r, 0].legend(fontsize=7)
    fig.suptitle(f"mean over seeds (band: min-max over seeds); training curves: moving average of {k} steps",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "accuracy_over_steps.png", dpi=110)
    written.append("accuracy_over_steps.png")

    # 2. lengths of correct and incorrect answers over steps (training rollouts)
    def length_panel(ax, runs, key, color, label, style="-"):
        curves = [_smooth([h.get(key) for h in hist], k) for hist, _ in runs]
        m, _, _ = _mean_curve(curves)
        ax.plot(np.arange(1, len(m) + 1), m, style, color=color, label=label)

    fig = Figure(figsize=(11, 3.4 * len(tasks)))
    axes = fig.subplots(len(tasks), 2, squeeze=False)
    for r, task in enumerate(tasks):
        for obj in objectives:
            runs = group(task, obj, main_agg)
            if runs:
                length_panel(axes[r, 0], runs, "len_correct", colors[obj], obj)
                length_panel(axes[r, 1], runs, "len_incorrect", colors[obj], obj)
        for c, what in enumerate(("correct", "incorrect")):
            axes[r, c].set_title(f"{task}: length of {what} answers", fontsize=9)
            axes[r, c].set_xlabel("step")
            axes[r, c].set_ylabel("tokens")
        axes[r, 0].legend(fontsize=7)
    fig.suptitle(f"training rollouts, mean over seeds, moving average of {k} steps", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "lengths_over_steps.png", dpi=110)
    written.append("lengths_over_steps.png")

    # 3. the aggregation ablation: lengths and held-out accuracy per aggregation
    abl = sorted({(s.task, s.objective) for s in specs if s.ablation})
    abl = [(t, o) for t, o in abl if any(s.task == t and s.objective == o for s in data)]
    if abl:
        fig = Figure(figsize=(14, 3.4 * len(abl)))
        axes = fig.subplots(len(abl), 3, squeeze=False)
        styles = {"sequence": "-", "token": "--", "constant": ":"}
        for r, (task, obj) in enumerate(abl):
            for i, agg in enumerate(ABLATION_AGGREGATIONS):
                runs = group(task, obj, agg)
                if not runs:
                    continue
                col = f"C{i}"
                length_panel(axes[r, 0], runs, "len_correct", col, agg, styles[agg])
                length_panel(axes[r, 1], runs, "len_incorrect", col, agg, styles[agg])
                ev = [[e["accuracy"] for e in evs] for _, evs in runs]
                x = [e["step"] for e in runs[0][1]][: min(map(len, ev))]
                m, lo, hi = _mean_curve(ev)
                axes[r, 2].plot(x, 100 * m, "o" + styles[agg], color=col, label=agg, ms=3)
            axes[r, 0].set_title(f"{task} {obj}: length of correct answers", fontsize=9)
            axes[r, 1].set_title(f"{task} {obj}: length of incorrect answers", fontsize=9)
            axes[r, 2].set_title(f"{task} {obj}: held-out sampled accuracy %", fontsize=9)
            for a in axes[r]:
                a.set_xlabel("step")
            axes[r, 0].set_ylabel("tokens")
            axes[r, 0].legend(fontsize=7, title="aggregation", title_fontsize=7)
        fig.suptitle(f"aggregation ablation: lengths of the training rollouts (moving average of {k} "
                     "steps) and held-out accuracy, mean over seeds", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "aggregation_ablation.png", dpi=110)
        written.append("aggregation_ablation.png")
    return written


# ------------------------------------------------------------------------------ command line


def default_workers(profile: str, cores: int) -> int:
    """Parallel runs when nothing is said: 2 for micro on a CPU-only machine with >= 2 cores
    (each run single-threaded; two-threaded matrix products of this size gain little, so two
    runs side by side should finish in about half the time on an idle machine), else 1 (a GPU
    holds one Qwen run at a time)."""
    import torch

    return 2 if profile == "micro" and cores >= 2 and not torch.cuda.is_available() else 1


def _arg_parser() -> argparse.ArgumentParser:
    from course_lib.objectives import AGGREGATIONS
    from course_lib.trainer import OBJECTIVES

    ap = argparse.ArgumentParser(
        prog="python -m course_lib reproduce",
        description="Train every objective on every task of a profile for several seeds from the same "
        "base model, evaluate held-out accuracy and lengths, and write results.json, results.md and "
        "figures. Rerunning skips finished runs and resumes interrupted ones.",
    )
    ap.add_argument("--profile", default=None, help="micro, qwen2.5-0.5b, ... (default: micro without a GPU)")
    ap.add_argument("--out", required=True, help="output folder (runs/, results.json, results.md, *.png)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true",
                    help=f"a few-minute smoke run: {QUICK['steps']} steps, small evaluation, 1 seed, "
                    "ablation on the first task only")
    ap.add_argument("--tasks", nargs="+", default=None, help="default: the profile's tasks")
    ap.add_argument("--objectives", nargs="+", default=None, choices=OBJECTIVES, help="default: all five")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default: the profile's)")
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--eval-examples", type=int, default=None, help="held-out problems")
    ap.add_argument("--eval-samples", type=int, default=None, help="samples per held-out problem")
    ap.add_argument("--ablation-objectives", nargs="*", default=None, choices=OBJECTIVES,
                    help="objectives rerun with every aggregation (default: grpo; none: no ablation)")
    ap.add_argument("--ablation-tasks", nargs="*", default=None,
                    help="tasks of the ablation (default: all; --quick: the first)")
    ap.add_argument("--aggregation", default="sequence", choices=AGGREGATIONS,
                    help="aggregation of the main comparison (default: sequence, as GRPO)")
    ap.add_argument("--workers", type=int, default=None,
                    help="parallel run processes, CPU threads split between them (default: 2 for "
                    "micro on a CPU with >= 2 cores, else 1)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads in all (default: the usable cores; split between workers)")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: rebuild results.json, results.md and figures from the runs "
                    "that finished")
    return ap


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib reproduce --profile micro --out results/micro [--quick]``"""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _arg_parser().parse_args(argv)
    from course_lib.models import get_profile
    from course_lib.trainer import OBJECTIVES

    try:
        prof = get_profile(args.profile)
    except (KeyError, ValueError) as e:
        print(f"error: {e}")
        return 2
    tasks = args.tasks or list(prof.tasks)
    objectives = args.objectives or list(OBJECTIVES)
    n_seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if args.quick else 3)
    if n_seeds < 1:
        print("error: --seeds must be >= 1")
        return 2
    steps = args.steps or (QUICK["steps"] if args.quick else prof.steps)
    eval_every = args.eval_every if args.eval_every is not None else (
        QUICK["eval_every"] if args.quick else max(1, steps // 8))
    budget = Budget(
        steps=steps, eval_every=eval_every,
        eval_examples=args.eval_examples or (QUICK["eval_examples"] if args.quick else prof.eval_examples),
        eval_samples=args.eval_samples or (QUICK["eval_samples"] if args.quick else prof.eval_samples),
    )
    abl_obj = ["grpo"] if args.ablation_objectives is None else args.ablation_objectives
    abl_obj = [o for o in abl_obj if o in objectives] if args.ablation_objectives is None else abl_obj
    abl_tasks = args.ablation_tasks if args.ablation_tasks is not None else (tasks[:1] if args.quick else tasks)
    specs = plan_runs(tasks, objectives, range(n_seeds), ablation_objectives=abl_obj,
                      ablation_tasks=abl_tasks, main_aggregation=args.aggregation)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = args.workers or default_workers(prof.name, cores)
    if workers < 1 or (args.threads is not None and args.threads < 1):
        print("error: --workers and --threads must be >= 1")
        return 2
    import torch

    # one thread per worker by default: the micro model's matrices are too small for a second
    # thread to pay, and on a busy machine extra threads spin against each other
    torch.set_num_threads(args.threads or max(1, min(cores, torch.get_num_threads())))
    out = Path(args.out)
    command = "python -m course_lib reproduce " + " ".join(argv)
    print(f"reproduce: profile {prof.name}, {len(specs)} runs ({len(tasks)} tasks x {len(objectives)} "
          f"objectives x {n_seeds} seeds + {sum(s.ablation for s in specs)} ablation runs), "
          f"{budget.steps} steps each, {workers} worker process(es) -> {out}")
    res = run_reproduction(out, profile=prof.name, specs=specs, budget=budget, workers=workers,
                           progress=not args.no_progress, command=command, train=not args.report_only)
    counts = {k: res["status"].count(k) for k in ("ran", "resumed", "skipped", "pending", "interrupted")}
    print()
    print(summary_table(res, prof.name))
    if res["ablation"]:
        print(ablation_table(res))
    print(f"runs: {counts['ran']} ran, {counts['resumed']} resumed, {counts['skipped']} skipped "
          f"(already finished), {counts['pending'] + counts['interrupted']} left")
    print(f"table: {out / 'results.md'}   data: {out / 'results.json'}")
    for f in res.get("figures", []):
        print(f"figure: {out / f}")
    if res["interrupted"]:
        print("interrupted: run the same command again to resume")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
