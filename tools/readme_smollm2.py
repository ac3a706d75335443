"""README's section "Results on a real model", written from the shipped SmolLM2 results.

Every result and verdict in the section comes from ``data/results/smollm2_evidence_results.json``
(with ``grid_results.json`` and ``data/paper_results.json`` for the comparison, the test sets'
sizes from ``course_lib.tasks``), worded by the rules notebook 06 uses
(``notebooks/course_helpers.py``). Written here as text: the plan's design in the opening paragraph
(``course_lib/plans.py`` holds it) and the step-time tables (benchmark runs, quoted with their
commands). tests/test_readme.py checks that README holds what this writes.

    python tools/readme_smollm2.py            # print the section
    python tools/readme_smollm2.py --write    # replace it in README.md

Run it after shipping a new results file (the plan ships seed by seed).
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
from collections import Counter
from pathlib import Path
from statistics import mean, median

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT), str(ROOT / "notebooks")) if p not in sys.path]  # this clone's course_lib

from course_helpers import (  # noqa: E402
    ab_diff,
    arm_name,
    beside,
    cap_bound,
    cap_row,
    ci_cell,
    finished_word,
    learning_line,
    length_word,
    margin_span,
    noise_word,
    planned_seeds,
    precision_words,
    seed_precisions,
    sft_word,
    tost_by_precision,
    tost_word,
)

from course_lib import DATA_DIR, models, plans, report, reproduce, stats  # noqa: E402
from course_lib.tasks import get_task  # noqa: E402

HEAD, NEXT = "## Results on a real model", "## On a Colab GPU"  # the section and the one after it
PLAN_TASKS = list(models.get_profile(plans.PLANS["smollm2"]["profile"]).tasks)  # the tasks the plan runs, in its order
FIRST = plans.PLANS["smollm2"]["config"]["precision"]  # the plan's precision (seeds 0-2); later seeds name theirs
#: the base's greedy decoding in float32 on the 2-core AVX2 CPU, every test problem, seed 0's settings: (right, problems)
#: (``OMP_NUM_THREADS=1 python benchmarks/precision_base.py --parts greedy``: 74.0% and 57.5%); the shipped bf16 sweep
#: found greedy the base's best temperature on both tasks
GREEDY_FP32 = {"arith": (37, 50), "word-problems": (46, 80)}
#: ... and how many of those greedy answers it cut at the 128-token cap (the same command; the bf16 sweep did not record it)
GREEDY_FP32_CUT = {"arith": 1, "word-problems": 5}
STEP_TIMES = """One grpo step (8 prompts x G = 4), median of 2 steps after a warm-up, one thread of a 2-core
machine whose CPU has AMX/avx512_bf16, other jobs paused, seconds. At the old 48-token cap on
`arith` (`OMP_NUM_THREADS=1 python benchmarks/step_time.py --profile smollm2-135m --precision bf16
--threads 1 --steps 2`):

| weights, compute | sample | reference forward | forward | backward | step |
|---|---|---|---|---|---|
| float32, float32 (`--precision fp32`, the CPU default) | 10.0 | 5.0 | 10.9 | 8.0 | 34.1 |
| float32 under bf16 autocast | 10.2 | 1.9 | 2.8 | 5.9 | 20.9 |
| frozen weights stored in bf16, LoRA in float32 (seeds 0-2's) | 6.5 | 1.7 | 2.7 | 5.8 | 16.8 |

At the plan's 128-token cap, one padded batch of 32 completions against length-sorted
micro-batches of 8 (the same loss; the plan's setting, in bf16), the two tasks at once
(`OMP_NUM_THREADS=1 python benchmarks/step_time.py --profile smollm2-135m --task word-problems
--precision bf16 --threads 1 --steps 2 --max-new-tokens 128 --micro-batch-size 32 8`, likewise
`--task arith`; sampling differs between rows because steps 2-3 follow different updates):

| task, micro-batch | sample | reference forward | forward | backward | step |
|---|---|---|---|---|---|
| arith, 32 | 16.0 | 3.4 | 6.4 | 11.8 | 37.8 |
| arith, 8 (the plan's) | 18.3 | 2.3 | 3.9 | 7.9 | 32.7 |
| word-problems, 32 | 23.9 | 4.6 | 7.3 | 15.7 | 51.8 |
| word-problems, 8 (the plan's) | 23.5 | 3.5 | 5.6 | 10.5 | 43.4 |

On a CPU without native bf16, bf16 backfires. On a 2-core AMD EPYC with AVX2 only (no
avx512, no AMX), `arith` at the plan's settings, the two precisions measured at once
(`OMP_NUM_THREADS=1 python benchmarks/step_time.py --profile smollm2-135m --task arith --precision
bf16 --threads 1 --steps 2 --max-new-tokens 128 --micro-batch-size 8`, and `--precision fp32`):

| precision | sample | reference forward | forward | backward | step |
|---|---|---|---|---|---|
| fp32 | 19.9 | 8.8 | 18.5 | 13.0 | 60.4 |
| bf16, emulated | 75.5 | 69.5 | 88.3 | 387.5 | 621.0 |

There bf16 is emulated, ten times slower than fp32, and `reproduce` and `train` say so in one line
(`models.load_policy`). Its samples differ too: the step-0 evaluation of `word-problems` at seed 2
gave 26.4% on that CPU against 23.3% in the shipped runs, so a bf16 run made there would not pair
with its seed's shipped runs. So that the plan can finish on any CPU, its seeds from 3 on compute in
float32 (`late_precision` in `course_lib/plans.py`), at full speed everywhere, from the same weights
without the bf16 rounding. Two bf16 runs of seed 2 were left when no CPU with native bf16 remained
to make them (`word-problems`: GRPO's token aggregation and sft- at 1e-5); they run at seed 5 in
float32 instead (`instead` in the plan), with GRPO's sequence run beside the token one so that the
length claim still pairs by seed. The plan gives every arm five seeds (those two: 0, 1, 3, 4, 5),
`word-problems`' grpo six, and `arith`'s grpo, sft+ and the control eight (seeds 5-7, `more` in the
plan: at five seeds, the power calculation at the ±5-point margin asked for about eight for sft+
against grpo, for its TOST before Holm; after Holm over the eight rows, whose first step tests at
0.05 / 8, the same calculation asks about 13, and for sft+- against grpo about 22 before Holm: out
of the plan's reach; the control too, so that the arms' test against it pairs on those seeds; the
seeds were added after the first five had been read, a second look at the data that the TOST does
not adjust for): an arm's own readings (gain, curves)
use all of its seeds, a difference paired with another arm the seeds the two share. Every run of a
seed shares one precision and one step-0 evaluation, so the comparisons still pair by seed; that
removes a shift of the base which all of a seed's objectives share, not a precision effect that
differs between objectives. The intervals below pool the seeds of both precisions as if
exchangeable, and the precision check (notebook 06, 10c) is where that assumption meets the data, at
low power (no interval until an arm has two seeds of each precision).

Does the precision move the base? Seeds 0-2's step-0 evaluation, repeated in float32 on the AVX2
CPU (`OMP_NUM_THREADS=1 python benchmarks/precision_base.py`: the same problems, 8 samples each,
the same sampling seed), against the shipped bf16 one of the same seed, float32 minus bf16: `arith`
+2.8, -0.5, +4.3 points (mean +2.2, 95% -3.9 to +8.2), `word-problems` -0.8, +0.6, +0.6 (+0.2,
-1.9 to +2.2). On `word-problems` no shift is shown. On `arith` the three pairs do not show one
either (the interval holds 0), but two of them lie well beyond one evaluation's noise: the bf16
seeds' step-0 evaluations, the same model under different sampling seeds, spread by 0.8 points (sd;
notebook 06, 10c), so a float32 shift of a few points on `arith` is possible (the CPU differs as
well as the precision).

The gains below are taken against the base at its best temperature, which the bf16 sweep found to be
greedy decoding on both tasks. Greedy decoding in float32 (`OMP_NUM_THREADS=1 python
benchmarks/precision_base.py --parts greedy`: every test problem, no sampling seed) answers `arith`
74.0% against the sweep's 78.0% (two problems of 50 fewer) and `word-problems` 57.5% against 58.8%
(one of 80). It cuts 1 of the 50 `arith` answers at the 128-token cap and 5 of the 80
`word-problems` ones (the column before `seconds`; scored wrong, as in training); the readings below
say what that could do to the bar. On `arith` the sampled step-0 accuracy moved the other way (+2.2
points, above); one reading, not checked problem by problem, is that a few near-tie problems flip
rather than the base shifting as a whole. So the bar is one evaluation that the precision (and the
CPU) moves by a problem or two; the readings below say how much that would move each gain.
"""


def fill(s: str) -> str:
    return textwrap.fill(s, 100, break_long_words=False, break_on_hyphens=False)


def nseeds(n: int) -> str:
    return f"{n} seed{'s' * (n != 1)}"


def progress(res: dict, seeds: list[int]) -> str:
    """'**So far 26 of the 65 planned runs** (2 seeds: 0, 1', or '**All 65 planned runs** (5 seeds: ...)'."""
    done = res["finished_runs"] == res["planned_runs"]
    n = sorted(Counter((r["task"], arm_name(r)) for r in res["runs"]).values())  # seeds an arm has
    return (f"**All {res['planned_runs']} planned runs**" if done else
            f"**So far {res['finished_runs']} of the {res['planned_runs']} planned runs**") \
        + f" ({nseeds(len(seeds))}: {', '.join(map(str, seeds))}" + (
            f"; {n[0]}{f' to {n[-1]}' * (n[-1] > n[0])} seeds an arm)" if done else "")


def _more() -> tuple[str, list[int]]:
    """The plan's ``more`` seeds: ("`arith`'s grpo, sft+ and confidence", [5, 6, 7]), or ("", []) without them."""
    more = plans.PLANS["smollm2"].get("more", ())
    arms = list(dict.fromkeys((s.task, s.objective) for s in more))
    objs = [o for _, o in arms]
    return (" and ".join(dict.fromkeys(f"`{t}`'s" for t, _ in arms)) + " " + ", ".join(objs[:-1]) + " and " * (len(objs) > 1)
            + objs[-1]) * bool(arms), sorted({s.seed for s in more})


def _precisions() -> str:
    """The plan's precision by seed: 'bfloat16 (...) for seeds 0-2 and float32 for seeds 3-5 (...)'."""
    p = plans.PLANS["smollm2"]
    k, late = p["late_precision"]
    last = max(s.seed for s in plans.plan_evidence("smollm2", PLAN_TASKS)[0])
    words = {"bf16": "bfloat16 (frozen weights stored in bf16, bf16 autocast)", "fp32": "float32"}
    moved = ", ".join(f"{old.task} {arm_name({**vars(old), 'learning_rate': old.learning_rate or 1e-4})} at seed {old.seed}"
                      for old in p.get("instead", {}))
    return (f"{words[p['config']['precision']]} for seeds 0-{k - 1} and {words[late]} for seeds {k}-{last}"
            + f" (seed {p['seeds']} stands in for runs of bf16 seeds no CPU with native bf16 was left to make: {moved};"
            " grpo's sequence run beside its token one)" * bool(moved))


def _intro(res: dict, tasks: list[str], seeds: list[int]) -> list[str]:
    st, runs, T = res["settings"], res["runs"], res["runs"][0]["temperature"]
    done = res["finished_runs"] == res["planned_runs"]
    if set(PLAN_TASKS) - set(tasks):
        raise ValueError(f"{sorted(set(PLAN_TASKS) - set(tasks))}: no finished run yet, so no run time to project the plan "
                         "from; ship the file once every task has a run")
    prec = seed_precisions(runs, FIRST)
    specs, settings, config = plans.plan_evidence("smollm2", PLAN_TASKS)
    todo = Counter((s.task, plans.make_config(res["profile"], s, settings, config).precision) for s in specs)
    wall = {k: [r["wall_s"] for r in runs if (r["task"], prec[r["seed"]]) == k] for k in todo}
    whole = {k: n * mean(wall[k] or [r["wall_s"] for r in runs if r["task"] == k[0]]) for k, n in todo.items()}  # seconds
    return [
        HEAD + ": SmolLM2-135M-Instruct (shipped)\n",
        fill("`data/results/smollm2_evidence_results.json` (figures in `data/results/smollm2_evidence_figures/`, tables "
             "in `smollm2_evidence_results.md`, run records in `smollm2_evidence_runs.tar.gz`): the paper's comparison on a "
             "real pretrained model with its own BPE tokenizer and chat template, with LoRA, on 2 CPU cores (the plan "
             f"`smollm2` in `course_lib/plans.py`). Weights: {res['weights'][0]}, the offline copy (`make smollm2`), likely "
             "a little weaker than the hub's full-precision model. Two tasks: `arith` (one single-digit addition or "
             "subtraction asked in words) and `word-problems` (the same arithmetic told as a short story, the nearer to "
             "GSM8K), the prompt asking for only the final number and the verifier reading the reply's last number, each "
             "with a test split that shares no arithmetic with training in either order (tests/test_heldout.py). grpo, "
             f"sft+, sft-, plain sft+- and the reward-free `confidence` control, {st['steps']} steps of 8 problems x G = 4 "
             f"at T = {T}, learning rate 1e-4, LoRA r 16, {_precisions()}, at most 128 new tokens with an answer cut "
             f"there scored wrong; sft- also at learning rate 1e-5; GRPO's token aggregation on `word-problems`"
             + (f"; {_more()[0]} also at seeds {_more()[1][0]}-{_more()[1][-1]} (the power calculation; below)"
                * bool(_more()[1])) + ". Held-out: "
             f"every test problem (50 and 80) x {st['eval_samples']} samples at the end of each run, and once more with "
             "another sampling seed; the base at T = 0.3, 0.6, 0.7, 1.0 and greedy, in bf16.") + "\n",
        fill(progress(res, seeds) + (
            "; every reading below is computed from them. Made by" if res["finished_runs"] == res["planned_runs"] else
            f"; {plans.PLANS['smollm2']['seeds']} seeds an arm are planned"
            + (f", {plans.PLANS['smollm2']['seeds'] + len(_more()[1])} for {_more()[0]}" * bool(_more()[1]))
            + "). The runs go seed by seed and the file ships as they "
            "finish; every reading below is computed from the seeds it holds, and with one seed there is no interval "
            "and no verdict. Made by")) + "\n",
        f"`{res['command']}`\n",
        STEP_TIMES,
        fill("Storing LoRA's frozen base weights (and a bf16 copy of the tied output layer) in bf16 once removes the "
             "cast autocast repeated in every forward; the matmuls are bit for bit the same (tests/test_models.py). "
             "Sampling is now the largest phase. The plan evaluates only what it reads: every held-out problem x 8 "
             "samples at the end of a run and once more with another sampling seed (the evaluation noise), the base "
             "alone over the temperature sweep, and the step-0 evaluation once per task and seed (it comes before any "
             "update, so every objective shares it). The whole plan, at the mean run time" + " so far" * (not done)
             + " of each task and precision (a task's, where its precision has no run yet), takes about "
             f"{sum(whole.values()) / 3600:.0f} CPU-hours (about {sum(whole.values()) / 7200:.0f} hours two runs at a "
             f"time), {100 * sum(v for k, v in whole.items() if k[0] == 'word-problems') / sum(whole.values()):.0f}% of "
             "it on `word-problems`; "
             f"measured in the runs{' so far' * (not done)}, seconds per step (median over runs, evaluations included, two runs at a "
             "time; the two precisions' runs were made on different CPUs, so these do not compare the precisions): "
             + ", ".join(f"{t} {median(r['wall_s'] / r['steps'] for r in mine):.0f} ({len(mine)} {p} run{'s' * (len(mine) > 1)})"
                                   for t in tasks for p in dict.fromkeys(prec[r["seed"]] for r in runs)
                                   if (mine := [r for r in runs if r["task"] == t and prec[r["seed"]] == p])) + ".") + "\n",
        fill(f"The tables below give two gains of an arm at T = {T}, against two evaluations of the same base with "
             "different sampling seeds: the temperature table's against the sweep's, the main table's against each "
             "seed's own step 0 (so that one pairs by seed). They differ by those evaluations' noise; the gain over "
             "the base at its best is the temperature table's second gain column.") + "\n",
    ]


def _readings(res: dict, tasks: list[str], short: bool) -> list[str]:
    """The bullets of 'What the real model shows so far' (``short``: an arm has fewer seeds than the plan gives it)."""
    st, runs = res["settings"], res["runs"]
    (T,) = {r["temperature"] for r in runs}
    main = [r for r in runs if not r["ablation"] and r["learning_rate"] == 1e-4]
    objs = list(dict.fromkeys(r["objective"] for r in main))
    sweep = {(r["task"], r["model"], r["learning_rate"]): r for r in res["temperature_sweep"]}
    eq = {(e["task"], e["objective"]): e for e in res["equivalence"]}
    cut: dict = {}
    for r in runs:
        cut.setdefault((r["task"], arm_name(r)), []).append(r["final_truncated"])
    out, prec = [], seed_precisions(runs, FIRST)
    for t in tasks:
        b = sweep.get((t, "base", None))
        if b is None:
            continue
        acc, ST = {k: v["mean"] for k, v in b["acc"].items()}, str(float(T))
        gains = [(o, sweep[t, o, 1e-4]["gain_vs_best_base"]) for o in objs if (t, o, 1e-4) in sweep]
        out.append(f"- **{t}: against the base at its best** ({100 * acc[b['best']]:.1f}% {b['best']}; {100 * acc[ST]:.1f}% "
                   f"at the training T = {T}; {100 * acc['1.0']:.1f}% at T = 1.0), the final models sampled at T = {T}: "
                   + ", ".join(f"{o} {ci_cell(g)}" for o, g in gains)
                   + f" points{' (95% over seeds)' * any(g['ci_low'] is not None for _, g in gains)}; the base at T = {T}: "
                   f"{', '.join(f'{100 * x:.1f}% ({p})' for x, p in sorted({(r['base_accuracy'], prec[r['seed']]) for r in runs if r['task'] == t}))} "
                   f"at step 0, {100 * acc[ST]:.1f}% in the sweep ({FIRST}).{_bar_shift(t, acc[b['best']], main, prec) if b['best'] == 'greedy' else ''}"
                   + (_bar_cap(t, gains) if b["best"] == "greedy" else ""))
    out.append("- **How to read them.** The base's best is the bar that lowering the temperature alone reaches (a model "
               "sharpened problem by problem could pass it with no reward at all); the reward-free `confidence` row "
               "shows how far training without the reward gets past it (the next bullet reads the two together). The base was "
               f"evaluated twice at T = {T}, with different sampling seeds: at each seed's step 0 (the main table's "
               "`base acc` and `gain`) and in the sweep (the temperature table's gains)."
               + (" Every reading from fewer seeds than the plan gives its arms is provisional." if short else ""))
    out += _learning(res, tasks, main)
    sizes = {t: len(get_task(t).load("test")) for t in tasks}
    bars = {t: sweep[t, "base", None]["acc"][sweep[t, "base", None]["best"]]["mean"] for t in tasks if (t, "base", None) in sweep}
    out.append("- **What the intervals cover.** Training seeds only, on one fixed test set ("
               + ", ".join(f"{t} {n} problems" for t, n in sizes.items()) + "): the base's greedy accuracy there is one "
               "number, with no error of its own given those problems. Read as a claim about new problems of the same "
               "kind, every accuracy would also carry the test set's own sampling error, about "
               + " and ".join(f"±{196 * math.sqrt(p * (1 - p) / sizes[t]):.1f} points on {t}" for t, p in bars.items())
               + " at the base's best (95%, binomial); less for a difference, measured on the same problems.")
    if eq:
        c = Counter(tost_word(e, "verdict_holm") for e in eq.values())
        fam = sum(e["p_tost"] is not None for e in eq.values())  # Holm's family: the rows with an interval
        one = len(eq) - fam
        out.append(f"- **TOST against GRPO** (±{100 * st['margin']:.0f} points, Holm over the {fam} rows above with an "
                   "interval): " + (", ".join(f"{n} {v}" for v, n in c.most_common() if v != "no interval (one seed)")
                                    if fam else "no interval yet, no verdict")
                   + (f"; {one} row{'s' * (one > 1)} with one seed (no interval)" if one and fam else "")
                   + ". The margin is " + " and ".join(
                       f"{100 * st['margin'] / g['mean']:.0f}% on {t} ({margin_span(st['margin'], g)} over that gain's "
                       "interval)" for t in tasks
                       if (g := sweep.get((t, "grpo", 1e-4), {}).get("gain_vs_best_base")) and g["mean"] > 0)
                   + " of GRPO's gain over the base's best, the part of its gain that lowering the temperature does not "
                   "give (the table's margin column gives it against the gain at the training T): an \"equivalent\" "
                   "would let that share of it differ"
                   + ". The verdicts are the micro table's (\"Equivalence to GRPO\" above); \"not shown equivalent\": the "
                   "90% interval straddles the margin with the difference itself beyond it, so more seeds at this difference "
                   "would not show equivalence. Holm corrects the equivalence tests only: a \"different\" or an above/below GRPO "
                   "stands uncorrected for the number of rows.")
    for n in res["eval_noise"]:
        out.append(f"- **Evaluation noise on {n['task']}**: the sd of one evaluation is {100 * n['eval_sd']:.1f} points "
                   f"(two sampling seeds, {n['runs']} runs); {noise_word(n, runs)}.")
    long3 = [f"{arm_name(r)} on {r['task']} seed {r['seed']} ({100 * r['final_truncated']:.0f}%: it "
             f"{'; '.join(filter(None, (cap_bound(r, bars[r['task']]), cap_row(main, r, st['margin']))))})" for r in runs
             if arm_name(r) in ("grpo", "sft+", "sft+-") and r["final_truncated"] >= 0.1 and r["task"] in bars]
    out.append("- **The cap**: final answers cut at 128 tokens, mean over seeds: " + "; ".join(
        f"{t} " + ", ".join(f"{a} {100 * mean(v):.0f}%" for (tt, a), v in cut.items() if tt == t) for t in tasks)
        + ". grpo, sft+ and sft+-: " + ("under 10% in every arm over its seeds" if all(
            mean(v) < 0.1 for (_, a), v in cut.items() if a in ("grpo", "sft+", "sft+-")) else "10% or more in an arm over its seeds")
        + ("; under 10% in every run." if not long3 else f"; 10% or more in {len(long3)} run{'s' * (len(long3) > 1)}: {'; '.join(long3)}."))
    out += _precision_check(runs, tasks, cut) + _tost_by_precision(res, eq, main)
    sm = [r for r in res["temperature_sweep"] if r["model"] == "sft-"]
    if sm:
        if plans.PLANS["smollm2"]["config"]["truncated"] != "wrong":
            raise ValueError("finished_word reads accuracy among uncut answers only where a cut answer scores wrong")
        words = []
        for r in sm:
            mine = [x for x in runs if (x["task"], x["objective"], x["learning_rate"]) == (r["task"], "sft-", r["learning_rate"])]
            fin, _ = finished_word(mine)
            moves = sft_word(r["gain"], r["gain_vs_best_base"])
            words.append(f"{r['task']} lr {report.lr_text(r['learning_rate'])} {ci_cell(r['gain'])}, {ci_cell(r['gain_vs_best_base'])}"
                         f": {moves}; final answers cut {100 * mean(cut[r['task'], arm_name(mine[0])]):.0f}% (base "
                         f"{100 * mean(x['base_truncated'] for x in mine):.0f}%), {fin}")
        out.append(f"- **sft- at two learning rates** (gain over the base at T = {T}; against its best; accuracy among "
                   "the answers the cap did not cut, against the base's at step 0, paired by seed: a selection that "
                   "likely favours the arm, so \"below\" holds despite it, \"no difference shown\" does not say "
                   "the cap explains the loss, and \"above\" may be the selection alone, notebook 06, 10d): " + "; ".join(words) + ".")
    out += _length(runs) + _beside(res, eq, main)
    return out


def _learning(res: dict, tasks: list[str], main: list[dict]) -> list[str]:
    """Notebook 06 10a's verdict per task: section 5's rule (:func:`course_helpers.learning_line`)."""
    gains = {(r["task"], r["model"]): r["gain_vs_best_base"] for r in res["temperature_sweep"] if r["learning_rate"] == 1e-4}
    words = [f"{t}: {beside}: {word}" if beside else f"{t}: {word}" for t in tasks for _, word, beside in [learning_line(main, gains, t)]]
    return ["- **Learning or sharpening** (section 5's rule, notebook 06, 10a: sharpening where the control ends above "
            "the base's best, learning from the reward where reward-weighted arms do and the control ends below it; where the "
            "control's interval holds 0, a reward-weighted arm must be shown above the control itself: each arm minus the "
            "control paired by seed, a two-sided t-test, as every direction here is read, with Holm over every "
            "reward-weighted arm of the task, so an interval printed here that excludes 0 is not enough alone): "
            + "; ".join(words) + "."] if words else []


def _bar_cap(task: str, gains: list[tuple[str, dict]]) -> str:
    """What the cap could do to the greedy bar: the float32 greedy's answers cut at it (:data:`GREEDY_FP32_CUT`), were
    as many of the bar's cut and every one right, and the arms whose 95% interval that would reach."""
    cut, n = GREEDY_FP32_CUT[task], GREEDY_FP32[task][1]
    if not cut:
        return ""
    up = cut / n
    reach = [o for o, g in gains if g["ci_low"] is not None and g["ci_low"] > 0 and g["ci_low"] <= up]
    return (f" The cap: the float32 greedy cuts {cut} of its {n} answers (scored wrong); were as many of the bar's cut and "
            f"every one right, the bar would be up to {100 * up:g} points higher"
            + (f", enough to bring the lower end of {', '.join(reach)}'s interval to 0 or below." if reach else
               ", which no interval above 0 here reaches."))


def _bar_shift(task: str, best: float, main: list[dict], prec: dict) -> str:
    """How far each arm's mean gain over the base's best would move if the float32 seeds were held to the float32
    base's greedy accuracy (:data:`GREEDY_FP32`) instead of the bf16 sweep's best: '' without float32 seeds."""
    right, n = GREEDY_FP32[task]
    flips = round(best * n) - right  # problems the bf16 bar answers that the float32 greedy does not (net)
    shift = 100 * flips / n
    frac = {o: mean(prec[r["seed"]] == "fp32" for r in main if (r["task"], r["objective"]) == (task, o))
            for o in dict.fromkeys(r["objective"] for r in main if r["task"] == task)}
    if not any(frac.values()) or not flips:
        return ""
    some = [f for f in frac.values() if f]  # the arms with a float32 seed
    lo, hi = min(some) * abs(shift), max(some) * abs(shift)
    side, way = ("under", "larger") if shift > 0 else ("over", "smaller")
    return (f" A sensitivity: the float32 base's own greedy answers {100 * right / n:.1f}%, {abs(flips)} problem"
            f"{'s' * (abs(flips) > 1)} of {n} ({abs(shift):g} points) {side} the bf16 bar; held to it, a float32 seed's "
            f"gain would be {abs(shift):g} points {way}, and the mean gain of each arm that has one, "
            + (f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f} to {hi:.1f}") + f" points {way} (intervals not recomputed).")


def _precision_check(runs: list[dict], tasks: list[str], arms: dict) -> list[str]:
    """Notebook 06 10c's precision check: the later-precision seeds against the plan's precision's."""
    prec, out = seed_precisions(runs, FIRST), []
    for late in sorted(set(prec.values()) - {FIRST}):
        words = [f"{t}: " + "; ".join(w) for t in tasks
                 if (w := precision_words(runs, t, [a for tt, a in arms if tt == t], prec, FIRST, late))]
        mine = [str(s) for s, p in prec.items() if p == late]
        out.append(f"- **The precision check** ({late} seed{'s' * (len(mine) > 1)} {', '.join(mine)}{', those an arm has' * (len(mine) > 1)} against "
                   f"{FIRST} seeds: the base at step 0 and each arm's final accuracy, points, Welch 95% once each side "
                   "has two seeds, no correction for their number): "
                   + "; ".join(words) + ".")
    return out


def _tost_by_precision(res: dict, eq: dict, main: list[dict]) -> list[str]:
    """Notebook 06 10c's sensitivity: the TOST rows on the seeds of one precision alone."""
    rows = tost_by_precision(main, eq, seed_precisions(res["runs"], FIRST), res["settings"]["margin"])
    words = [f"{p} seeds {', '.join(map(str, seeds))}: " + ("every row reads the same" if not moved else
                                                          f"{len(moved)} of {n} rows with two or more of its seeds change ({'; '.join(moved)})")
             for p, seeds, moved, n in rows if moved is not None]
    one = [f"{p} (seed {seeds[0]})" for p, seeds, moved, _ in rows if moved is None]
    return ["- **The TOST rows on one precision's seeds alone** (a sensitivity, before Holm; a row that changes is "
            "sensitive to the other precision's seeds or to having fewer: fewer seeds widen every interval, which can "
            "turn \"different\" into \"not shown equivalent\" with no precision effect): " + "; ".join(words)
            + (f"; not recomputed on {' or '.join(one)}: one seed, no interval" if one else "") + "."] if words else []


def _length(runs: list[dict]) -> list[str]:
    ab = {a: {r["seed"]: r for r in runs if (r["task"], r["objective"], r["aggregation"]) == ("word-problems", "grpo", a)}
          for a in ("sequence", "token")}
    d = {k: ab_diff(ab, k) for k in ("len_incorrect_complete", "share_incorrect_guess", "final_truncated")}
    if not d["len_incorrect_complete"]["n"]:
        return []
    return [f"- **The length claim** (GRPO sequence minus token aggregation on word-problems, mean length of the wrong "
            f"answers that ended before the cap, {nseeds(d['len_incorrect_complete']['n'])}): "
            f"{ci_cell(d['len_incorrect_complete'], 1)} tokens: {length_word(d)} (notebook 07's rule); notebook 06, "
            "section 10e, prints the error mix beside it."]


def _beside(res: dict, eq: dict, main: list[dict]) -> list[str]:
    """Notebook 06 section 10f's counts: each row against the micro grid's gsm8k-micro row and the paper's gaps."""
    grid = reproduce.load_results(DATA_DIR / "results" / "grid_results.json")
    geq = {(e["task"], e["objective"]): e for e in grid["equivalence"] if e.get("mu", 1) == 1}
    gsm = [p for p in report.load_paper_results()["results"] if p["task"] == "gsm8k" and p["model"].startswith("Qwen")]
    vs_micro, vs_paper = {}, {}  # verdict -> the rows that get it
    for (t, o), e in eq.items():
        if o == "confidence":
            continue
        key = next(stats.arm_key(r) for r in main if (r["task"], r["objective"]) == (t, o))
        _, _, m, p = beside(e, geq["gsm8k-micro", o], gsm, stats.paired(res["runs"], key, "grpo"), res["settings"]["margin"])
        vs_micro.setdefault(m, []).append(f"{t} {o}")
        vs_paper.setdefault(p.split(":")[0], []).append(f"{t} {o}")
    return ["- **Beside the micro model and the paper** (notebook 06, section 10f: each row's direction against GRPO "
            "on its 95% interval and its TOST verdict before Holm, set beside the micro grid's gsm8k-micro row; disagrees "
            "on opposite directions or equivalent against different, agrees when both lie on the same side of GRPO, else "
            "cannot tell where a TOST interval straddles the margin): "
            + _named(vs_micro) + "; against the "
            "paper's Qwen2.5 GSM8K gaps (section 9's rule: agrees where the 95% interval holds every gap, partly where it "
            "holds some, disagrees where it holds none, cannot tell where it holds them only because it is wide: it "
            "straddles the margin or its half-width exceeds it; an analogy: GSM8K is the paper's nearest task): "
            + _named(vs_paper) + "."]


def _named(rows: dict) -> str:
    """{verdict: rows} as 'agrees 2 (arith sft+, ...), ... of 6', the most common verdict first."""
    return ", ".join(f"{v} {len(r)} ({', '.join(r)})" for v, r in sorted(rows.items(), key=lambda kv: -len(kv[1]))) \
        + f" of {sum(map(len, rows.values()))}"


def section(path: Path = DATA_DIR / "results" / "smollm2_evidence_results.json") -> str:
    """The whole section, from its heading to the blank line before the next one."""
    res = reproduce.load_results(path)
    tasks = list(dict.fromkeys(r["task"] for r in res["runs"]))
    seeds = sorted({r["seed"] for r in res["runs"]})
    per_arm = Counter((r["task"], arm_name(r)) for r in res["runs"])  # seeds finished in each arm
    lo, hi = min(per_arm.values()), max(per_arm.values())
    parts = _intro(res, tasks, seeds) + [report.temperature_table(res), report.summary_table(res),
                                          report.equivalence_table(res),
                                          f"**What the real model shows{' so far' * (res['finished_runs'] < res['planned_runs'])} "
                                          f"({nseeds(hi) if lo == hi else f'{lo} to {hi} seeds'} an arm).**\n"]
    planned = planned_seeds(plans.plan_evidence("smollm2", PLAN_TASKS)[0])  # the seeds the plan gives each arm
    short = any(per_arm[k] < len(v) for k, v in planned.items())
    parts.append("\n".join(fill(o).replace("\n", "\n  ") for o in _readings(res, tasks, short)) + "\n")
    parts.append(fill("Notebook 06, section 10, reads the file: the same tables with their checks, a figure, and one "
                      "line per objective setting the SmolLM2 reading beside the micro grid's and the paper's GSM8K "
                      "gaps (section 9's rule). This section is written from the file, in the notebook's words, by "
                      "`python tools/readme_smollm2.py --write` (tests/test_readme.py checks it is current)."))
    return "\n".join(parts) + "\n"


def in_readme(text: str) -> str:
    """README's copy of the section (``text``: README.md); ValueError naming the missing heading."""
    for h in (HEAD, NEXT):
        if h not in text:
            raise ValueError(f"README.md has no heading '{h}': restore it, then run python tools/readme_smollm2.py --write")
    a, b = text.index(HEAD), text.index(NEXT)
    return text[a:b].rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/readme_smollm2.py", description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="replace the section in README.md (else print it)")
    args = ap.parse_args(argv)
    try:
        new = section()
    except ValueError as e:  # a file the section cannot be written from yet
        print(f"{e}", file=sys.stderr)
        return 2
    if not args.write:
        print(new, end="")
        return 0
    readme = ROOT / "README.md"
    text = readme.read_text()
    try:
        old = in_readme(text)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    readme.write_text(text.replace(old, new, 1))
    print(f"README.md: the section '{HEAD}' " + ("unchanged" if old == new else "rewritten"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
