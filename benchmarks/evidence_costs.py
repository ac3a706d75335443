"""What the micro evidence plans cost, and how noisy one held-out evaluation is.

Trains one grpo run of a plan's settings for a few steps (one thread), times a step and the
after-training measurements (temperature sweep, repeat, pass@k on the hard split), and prints
each plan's CPU time. Then evaluates the base at the plans' temperature with several sampling
seeds at 4 and at 16 samples per problem, and prints the sd of one evaluation beside the seed
spread of the shipped micro runs (sd over seeds of final accuracy, 200 x 4 samples).

    OMP_NUM_THREADS=1 python benchmarks/evidence_costs.py [--steps 8] [--seeds 4]
"""

import argparse
import dataclasses
import functools
import statistics
import tempfile
import time

import torch

from course_lib import DATA_DIR, plans
from course_lib import reproduce as R
from course_lib.evaluate import evaluate_as_trained
from course_lib.models import load_policy
from course_lib.tasks import get_task
from course_lib.trainer import train

print = functools.partial(print, flush=True)  # noqa: A001 (progress shows in a log as it comes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=4, help="sampling seeds for the evaluation noise")
    ap.add_argument("--task", default="gsm8k-micro")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, tok = load_policy("micro")
    task = get_task(args.task)
    specs, settings, _ = plans.plan_evidence("grid", [args.task])
    cfg = plans.make_config("micro", specs[0], dataclasses.replace(settings, steps=args.steps, eval_every=0))
    t0 = time.perf_counter()
    train(dataclasses.replace(cfg, eval_examples=1, eval_samples=1), run_dir=tempfile.mkdtemp(), model=model,
          tokenizer=tok, task=task, progress=False)
    step = (time.perf_counter() - t0) / args.steps
    t0 = time.perf_counter()
    R.measure(model, tok, task, dataclasses.replace(settings, pass_k=0), cfg, 1)
    sweep = time.perf_counter() - t0
    t0 = time.perf_counter()
    R.measure(model, tok, task, dataclasses.replace(settings, sweep_samples=0), cfg, 1)
    passk = time.perf_counter() - t0
    evals = (time.perf_counter(), evaluate_as_trained(model, tok, task, cfg, task.load("test", n=200), samples=4,
                                                      greedy=False, batch_size=256, seed=0))
    one_eval = time.perf_counter() - evals[0]
    print(f"{args.task}: {step:.2f} s/step (training eval excluded), held-out eval 200 x 4 {one_eval:.1f} s, "
          f"sweep + repeat {sweep:.0f} s, pass@{settings.pass_k} on the hard split {passk:.0f} s")
    for name in plans.PLANS:
        specs, st, _ = plans.plan_evidence(name, ["countdown-micro", "gsm8k-micro"])
        n_eval = st.steps // st.eval_every + 1
        per_run = st.steps * step + n_eval * one_eval + sweep
        hard = sum(s.task == args.task and s.seed < st.pass_k_seeds for s in specs) * passk if st.pass_k else 0
        cpu = len(specs) * per_run + hard
        print(f"plan {name}: {len(specs)} runs x ~{per_run:.0f} s + pass@k {hard:.0f} s = {cpu / 3600:.1f} CPU h, "
              f"~{cpu / 7200:.1f} h wall with 2 workers")
    model, tok = load_policy("micro")  # the base again
    test = task.load("test", n=200)
    for samples in (4, 16):
        accs = [evaluate_as_trained(model, tok, task, cfg, test, samples=samples, greedy=False, batch_size=256,
                                    seed=100 + s)["accuracy"] for s in range(args.seeds)]
        print(f"base at T={cfg.temperature}, 200 x {samples}: " + ", ".join(f"{100 * a:.1f}" for a in accs)
              + f" -> sd of one evaluation {100 * statistics.stdev(accs):.2f} pts")
    shipped = R.load_results(DATA_DIR / "results" / "micro_results.json")
    sds = [s["final_accuracy"]["std"] for s in shipped["summary"] if s["final_accuracy"]["std"] is not None]
    print(f"shipped micro runs (old splits, T=1, 200 x 4): seed sd of final accuracy median "
          f"{100 * statistics.median(sds):.2f} pts, range {100 * min(sds):.2f}-{100 * max(sds):.2f}")


if __name__ == "__main__":
    main()
