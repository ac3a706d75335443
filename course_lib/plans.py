"""What a reproduction runs: one run's spec, the settings all runs share, and the named plans.

``python -m course_lib reproduce`` turns options or a ``--plan NAME`` into a list of
:class:`RunSpec` (task, objective, seed, aggregation, mu, learning rate, optimizer) and one
:class:`Settings` (steps, held-out evaluation, pass@k, the TOST margin); :func:`make_config` makes
each spec a ``TrainConfig`` from the profile's budget; ``course_lib.reproduce`` runs them.

The plans: :func:`plan_runs` (the paper's comparison plus the aggregation ablation),
:func:`plan_beyond` (notebook 08's arms) and :data:`PLANS` (the evidence plans, micro and SmolLM2,
with their own settings: :func:`plan_evidence`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: the aggregations of the length ablation: GRPO's 1/|o_i|, DAPO's token mean, Dr. GRPO's constant
ABLATION_AGGREGATIONS = ("sequence", "token", "constant")


@dataclass(frozen=True)
class RunSpec:
    """One training run. ``ablation`` marks runs that exist only for the aggregation ablation. Example:
    ``RunSpec("countdown-micro", "grpo", 0).dirname`` -> ``countdown-micro/grpo_sequence/seed0``."""

    task: str
    objective: str
    seed: int
    aggregation: str = "sequence"
    ablation: bool = False
    mu: int = 1  # updates per rollout (notebook 08: > 1 makes the ratio and the clip act)
    learning_rate: float | None = None  # None: the budget's
    optimizer: str = "adamw"  # trainer.OPTIMIZERS; another is named in the run's directory, record and label
    precision: str | None = None  # None: the plan's or the budget's (a plan may set it by seed: PLANS' late_precision)

    @property
    def dirname(self) -> str:
        mu = f"_mu{self.mu}" if self.mu != 1 else ""
        lr = f"_lr{self.learning_rate:g}" if self.learning_rate is not None else ""
        opt = f"_{self.optimizer}" if self.optimizer != "adamw" else ""  # AdamW's runs keep their names
        return f"{self.task}/{self.objective}_{self.aggregation}{mu}{lr}{opt}/seed{self.seed}"

    @property
    def label(self) -> str:
        return f"{self.task} {self.objective} [{self.aggregation}, mu {self.mu}] seed {self.seed}"


@dataclass(frozen=True)
class Settings:
    """What every run of a reproduction gets: steps, held-out evaluation, pass@k, TOST margin."""

    steps: int
    eval_every: int
    eval_examples: int
    eval_samples: int
    pass_k: int = 0              # samples per problem for pass@k after training (0 = none)
    pass_k_examples: int = 50    # held-out problems for pass@k
    pass_k_seeds: int = 3        # pass@k for seeds 0..pass_k_seeds-1 only (it costs pass_k samples per problem)
    margin: float = 0.05         # TOST equivalence margin, in accuracy (0.05 = 5 points)
    budget: str = "default"      # the profile's budget the runs start from
    temperature: float | None = None  # sampling temperature of training and evaluation (None: the budget's)
    sweep_samples: int = 0       # samples per held-out problem at each SWEEP_TEMPERATURES (0 = no sweep)
    pass_k_split: str = "test"   # the split pass@k is measured on ("hard": base pass@256 <= 70%)
    sweep_runs: bool = True      # the sweep for every trained run (False: the base only; a run keeps its last evaluation)


def plan_runs(tasks, objectives, seeds, *, ablation_objectives=("grpo",),
              ablation_aggregations=ABLATION_AGGREGATIONS, ablation_tasks=None,
              main_aggregation: str = "sequence") -> list[RunSpec]:
    """Every run without duplicates, seed by seed (a reproduction stopped early leaves complete
    seeds behind): the main comparison with ``main_aggregation``, then each ablation objective
    with the other aggregations on ``ablation_tasks`` (default: all tasks).

    Example: ``plan_runs(["t"], ["grpo", "sft+"], [0], ablation_aggregations=("sequence", "token"))``
    -> t/grpo/sequence, t/sft+/sequence, t/grpo/token (ablation).
    """
    specs: list[RunSpec] = []
    for s in seeds:
        specs += [RunSpec(t, o, s, main_aggregation) for t in tasks for o in objectives]
        for spec in (RunSpec(t, o, s, a, ablation=True) for t in (tasks if ablation_tasks is None else ablation_tasks)
                     for o in ablation_objectives for a in ablation_aggregations):
            if dataclasses.replace(spec, ablation=False) not in specs and spec not in specs:
                specs.append(spec)
    return specs


# ----------------------------------------------------------------------------------- one run


def make_config(profile: str, spec: RunSpec, settings: Settings, extra: dict | None = None):
    """The TrainConfig of one run: the profile's budget and ``extra``, then what the spec and the
    settings set (a spec's mu 1, AdamW or no rate leaves the budget's or ``extra``'s value)."""
    from course_lib.trainer import TrainConfig

    more = {k: v for k, v, unset in (("mu", spec.mu, 1), ("optimizer", spec.optimizer, "adamw"), ("precision", spec.precision, None),
            ("learning_rate", spec.learning_rate, None), ("temperature", settings.temperature, None)) if v != unset}
    return TrainConfig.from_profile(
        profile, budget=settings.budget, task=spec.task, objective=spec.objective, seed=spec.seed,
        aggregation=spec.aggregation, steps=settings.steps, eval_every=settings.eval_every,
        eval_examples=settings.eval_examples, eval_samples=settings.eval_samples, **{**(extra or {}), **more})


#: notebook 08's arms on countdown-micro, beside the main runs it reuses (grpo, sft+, sft-):
#: Reinforce-Rej, Dr. GRPO at mu = 1; GRPO, GSPO at its own clip range and at GRPO's (gspo-eps) at
#: mu = 4 (the ratio and clip act); GRPO on random rewards at mu = 1 and 4 (clip off vs on)
BEYOND_ARMS = (("countdown-micro", "reinforce-rej", 1), ("countdown-micro", "dr-grpo", 1),
               ("countdown-micro", "grpo", 4), ("countdown-micro", "gspo", 4), ("countdown-micro", "gspo-eps", 4),
               ("countdown-micro-random", "grpo", 1), ("countdown-micro-random", "grpo", 4))


def plan_beyond(seeds, arms=BEYOND_ARMS) -> list[RunSpec]:
    """Notebook 08's runs, seed by seed. Example: ``len(plan_beyond(range(5)))`` -> 35."""
    return [RunSpec(t, o, s, mu=mu) for s in seeds for t, o, mu in arms]


#: the evidence plans (``--plan NAME``): objectives, seeds, steps, evaluation interval, AdamW's learning rates and
#: plain SGD's, extra (objective, learning rate) arms, ablation runs (task, objective, aggregation), the plan's
#: :class:`Settings` (over :data:`PLAN_SETTINGS`) and TrainConfig fields (``config``), and the profile it is for.
#: The micro plans sample at T = 0.6 (README). SGD's rate: AdamW's first update is about lr x sqrt(1.06M weights)
#: = 0.102 at 1e-4, whatever the gradient; SGD's is lr x the gradient (norm 0.18-0.38 on countdown-micro; 0.86-1.17
#: on gsm8k-micro, clipped to 1). 0.2, the geometric mean of the rates matching 0.102 per task, objective and seed
#: 0-2 (0.10-0.57), makes it 0.35-1.95 x AdamW's at 1e-4: inside the AdamW sweep's 0.3-3 x
#: (``OMP_NUM_THREADS=1 python benchmarks/sgd_rate.py``).
#: smollm2: the real model on both of its tasks, a cut answer earning nothing, and a cap of 128 tokens: the base
#: (T = 0.7, 50 x 4 test replies) runs past it on 6% of arith and 14.5% of word-problems (48: 20.5% and 49.5%;
#: 192: 4% and 9.5%, replies that never end; ``benchmarks/reply_lengths.py``); sft- also at 1e-5 (the
#: negatives-only paper's 1e-6 for full fine-tuning, x10 for LoRA as the Qwen profiles assume); GRPO's token
#: aggregation on word-problems (the length claim). Every held-out problem (arith 50, word-problems 80) x 8
#: samples; the base alone is swept over temperatures (a run keeps its last evaluation and one repeat of it).
#: Micro-batches of 8 completions sorted by length (the same loss): one batch of 32 pads every reply to the longest;
#: 8 cut the scoring passes by about a third (grpo, one thread: arith 21.6 -> 14.2 s, word-problems 27.6 -> 19.7 s;
#: ``benchmarks/step_time.py --task arith --precision bf16 --threads 1 --steps 2 --max-new-tokens 128 --micro-batch-size 32 8``).
#: Seeds 0-2 ran in bf16 on a CPU with AMX; seeds 3 on compute in fp32 (``late_precision``), which every CPU runs at
#: full speed, where bf16 without AMX/avx512_bf16 is emulated at about ten times fp32's step (README). A seed's runs
#: share one precision and one step-0 evaluation, so the comparison still pairs by seed. Two seed-2 bf16 runs were
#: left when no such CPU was left to make them (word-problems: grpo's token aggregation, sft- at 1e-5); ``instead``
#: runs them at seed 5 in fp32, with grpo's sequence run beside the token one so that the length claim pairs by seed.
#: ``more``: arith grpo and sft+ at seeds 5-7, where the power calculation at the +-5-point margin asked for about 8
#: seeds at five (sft+ against grpo: +2.0 points, sd 2.9; before Holm: at Holm's first step, 0.05 / 8, about 13);
#: sft+- against grpo asked for about 22, out of reach. The control too, so that section 10a's test of the arms
#: against it pairs on those seeds. Added after the five seeds were read: a second look the TOST does not adjust for.
#: grid: also GRPO's token and constant aggregations (notebook 07's ablation; measured during training only).
#: horizon: its question is the curves; the base alone is swept (gains over its best), no pass@k.
#: beyond-grid: notebook 08's arms (:data:`BEYOND_ARMS`) as the grid runs them, so they pair with its runs by seed.
#: balanced: sft+-balanced (notebook 06, section 3) likewise, beside the grid's grpo and plain sft+-.
_MICRO, _WP = ("countdown-micro", "gsm8k-micro"), "word-problems"
_BESIDE_GRID = {"seeds": 5, "steps": 60, "eval_every": 20, "pass_k": 0, "settings": {"sweep_samples": 0}}  # pairs with the grid by seed
PLANS = {"grid": {"objectives": ("grpo", "sft+", "sft-", "sft+-", "confidence"), "seeds": 5, "steps": 60,
                  "eval_every": 20, "pass_k": 256,
                  "ablation": tuple((t, "grpo", a) for t in _MICRO for a in ("token", "constant"))},
         "horizon": {"objectives": ("grpo", "sft+", "sft+-", "sft-"), "seeds": 3, "steps": 200, "eval_every": 25,
                     "pass_k": 0, "settings": {"sweep_runs": False}},
         "lr-sweep": {"objectives": ("grpo", "sft+-"), "seeds": 3, "steps": 60, "eval_every": 20, "pass_k": 0,
                      "learning_rates": (3e-5, 1e-4, 3e-4), "sgd_rates": (0.2,)},
         "beyond-grid": {"objectives": (), "mu_arms": BEYOND_ARMS, **_BESIDE_GRID},
         "balanced": {"objectives": ("sft+-balanced",), **_BESIDE_GRID},
         "smollm2": {"profile": "smollm2-135m", "objectives": ("grpo", "sft+", "sft-", "sft+-", "confidence"),
                     "seeds": 5, "steps": 30, "eval_every": 0, "pass_k": 0, "arms": (("sft-", 1e-5),), "ablation": ((_WP, "grpo", "token"),),
                     "settings": {"eval_examples": 100, "eval_samples": 8, "temperature": None, "sweep_samples": 8,
                                  "sweep_runs": False, "pass_k_split": "test"},
                     "config": {"max_new_tokens": 128, "truncated": "wrong", "precision": "bf16", "micro_batch_size": 8},
                     "late_precision": (3, "fp32"), "instead": {  # for the whole plan only, not --seeds 3
                         RunSpec(_WP, "grpo", 2, "token", ablation=True): (RunSpec(_WP, "grpo", 5, "token", ablation=True), RunSpec(_WP, "grpo", 5)),
                         RunSpec(_WP, "sft-", 2, learning_rate=1e-5): (RunSpec(_WP, "sft-", 5, learning_rate=1e-5),)},
                     "more": tuple(RunSpec("arith", o, s) for s in (5, 6, 7) for o in ("grpo", "sft+", "confidence"))}}
PLAN_SETTINGS = {"eval_examples": 200, "eval_samples": 4, "temperature": 0.6, "sweep_samples": 16,
                 "pass_k_examples": 100, "pass_k_split": "hard", "margin": 0.05}


def plan_evidence(name: str, tasks, seeds: int | None = None, objectives=None) -> tuple[list[RunSpec], Settings, dict]:
    """The runs, settings and TrainConfig fields of plan ``name`` (:data:`PLANS`), seed by seed. Example:
    ``len(plan_evidence("lr-sweep", ["a", "b"])[0])`` -> 48 (3 seeds x (3 AdamW rates + 1 SGD) x 2 x 2). With all of its
    seeds, a plan's ``instead`` ({run: its stand-ins}) drops those runs and adds their stand-ins after the last seed, and
    its ``more`` (runs) adds more seeds of some arms after them."""
    p = PLANS[name]
    seeds = p["seeds"] if seeds is None else seeds
    settings = Settings(steps=p["steps"], eval_every=p["eval_every"], pass_k=p["pass_k"], pass_k_seeds=seeds,
                        **{**PLAN_SETTINGS, **p.get("settings", {})})
    rates = [(lr, "adamw") for lr in p.get("learning_rates", (None,))] + [(lr, "sgd") for lr in p.get("sgd_rates", ())]
    specs = []
    for s in range(seeds):
        specs += [RunSpec(t, o, s, learning_rate=lr, optimizer=opt) for lr, opt in rates for t in tasks
                  for o in objectives or p["objectives"]]
        specs += [RunSpec(t, o, s, learning_rate=lr) for o, lr in p.get("arms", ()) for t in tasks]
        specs += plan_beyond([s], p["mu_arms"]) if "mu_arms" in p else []  # their own tasks
        specs += [RunSpec(t, o, s, agg, ablation=True) for t, o, agg in p.get("ablation", ()) if t in tasks]
    swap = p.get("instead", {}) if seeds == p["seeds"] else {}  # runs moved to another seed: (the old run: its stand-ins)
    more = p.get("more", ()) if seeds == p["seeds"] else ()  # more seeds of some arms
    extra = [y for x, new in swap.items() if x in specs for y in new] + [y for y in more if y.task in tasks]  # of those asked for:
    specs = [x for x in specs if x not in swap] + [y for y in extra if y.ablation or y.learning_rate or y.objective in (objectives or p["objectives"])]
    first, late = p.get("late_precision", (seeds, None))  # from seed ``first`` on, the runs compute in ``late``
    return [dataclasses.replace(x, precision=late) if x.seed >= first else x for x in specs], settings, dict(p.get("config", {}))
