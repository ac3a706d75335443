"""Every objective of the course on TRL's ``GRPOTrainer``: ``accelerate launch tools/scale.py ...``.

The course trains with its own loop on one GPU; the paper's budget (64 prompts x G = 5 x 1,024
tokens, 1.5B-3B models, several seeds) needs many GPUs and a fast sampler: TRL's ``GRPOTrainer``
under ``accelerate`` (DDP, DeepSpeed, FSDP), sampling with vLLM. This tool runs every row of
``course_lib.objectives.OBJECTIVES`` on it; it is the only part of the course that imports TRL
(the ``scale`` extra). The grpo rows are TRL's own GRPO; the rows without a ratio (``sft+``,
``sft-``, ``sft+-``, ``sft+-balanced``, ``sft+-sized``) get the course's weights and its
signed-SFT loss ``-aggregate(w * logp)`` through :class:`CourseGRPOTrainer`.

What makes TRL's definitions the course's (``tests/test_scale.py``: loss and gradient within
1e-6 for every row and aggregation): aggregation ``sequence`` / ``token`` / ``constant`` =
``loss_type`` ``grpo`` / ``dapo`` / ``dr_grpo``; ``use_bias_correction_kl=False`` (TRL's default
multiplies k3 by the ratio, which adds ``beta * k3 * grad(logp)`` even on-policy); log-probs of
``softmax(logits / T)``; the verifier as two reward functions, ``reward`` (weight 1) and
``correct`` (weight 0, read by the signed rows).

What differs and stays so: TRL's group std divides by G - 1 (``course_advantages=True`` gives
the grpo rows the course's); with vLLM each token's loss carries TRL's capped importance ratio
(the signed rows too); TRL numbers positions from the padded batch's left edge (equal with
rotary embeddings in exact arithmetic); its sampler shuffles with the seed, its warm-up starts
at 0; every completion goes through backward; the hub profiles are fully fine-tuned, not QLoRA;
no held-out evaluation runs during training. Each of N processes samples B / N completions; the
rewards are gathered so every group is normalised whole.

Launch, one process per GPU (unset options from the profile's budget; add ``--config_file``
with a DeepSpeed or FSDP config to shard; on a CPU ``--multi_gpu --num_processes 2`` starts
two gloo processes, as ``tests/test_scale.py`` does)::

    accelerate launch --num_processes 8 tools/scale.py --profile qwen2.5-1.5b \\
        --task gsm8k --objective sft+- --learning-rate 1e-6 --prompts-per-step 64 \\
        --group-size 5 --max-new-tokens 1024 --temperature 0.6 --out runs/scale/gsm8k-sft+-

A tool for runs on many GPUs with an optional extra, so it lives outside the package; it builds
on course_lib (objectives, tasks, profiles) and on the command line's ``course_lib.__main__``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import sys

# TRL's trainer imports bitsandbytes, which logs a notice about optional CPU kernels: not wanted
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402

from course_lib import loading, models  # noqa: E402
from course_lib.__main__ import USER_ERRORS, Parser, parse_config  # noqa: E402
from course_lib.objectives import aggregate, get_objective, weights  # noqa: E402
from course_lib.tasks import get_task  # noqa: E402
from course_lib.trainer import TrainConfig  # noqa: E402

#: course aggregation -> TRL loss_type with the same normaliser
TRL_LOSS_TYPE = {"sequence": "grpo", "token": "dapo", "constant": "dr_grpo"}
_AGGREGATION = {v: k for k, v in TRL_LOSS_TYPE.items()}


def reward_functions(task) -> list:
    """The task's verifier as two TRL reward functions: ``reward`` and ``correct`` (1.0 or 0.0).

    Each reads the dataset column ``example`` (the example as JSON, see :func:`task_dataset`)
    and returns one float per completion, B in all.
    """
    def reward(prompts, completions, example, **_):
        return [float(task.score(c, json.loads(e)).reward) for c, e in zip(completions, example)]

    def correct(prompts, completions, example, **_):
        return [float(task.score(c, json.loads(e)).correct) for c, e in zip(completions, example)]

    return [reward, correct]


def task_dataset(task, split: str = "train", *, n: int | None = None, seed: int = 0, prompt=None) -> Dataset:
    """The task's examples as a TRL dataset: columns ``prompt`` (plain text, ``prompt(example)``,
    default ``task.prompt``) and ``example`` (JSON, for the reward functions)."""
    prompt = prompt or task.prompt
    rows = [{"prompt": prompt(e), "example": json.dumps(e)} for e in task.load(split, n=n, seed=seed)]
    return Dataset.from_list(rows)


def grpo_config(cfg: TrainConfig, output_dir: str, *, use_vllm: bool | None = None, **overrides) -> GRPOConfig:
    """TRL's settings for the course run ``cfg``.

    Each rollout of B = prompts_per_step x group_size completions makes ``mu`` optimizer steps
    (``max_steps = steps * mu``), as in the course. Each of the N processes (``WORLD_SIZE``,
    set by ``accelerate launch``) samples and trains on B / N of them, in
    micro-batches of the largest size <= ``micro_batch_size`` that divides B / N.
    ``use_vllm`` default: vLLM is installed and a GPU is there. ``overrides`` go to
    ``GRPOConfig`` last.
    """
    row = get_objective(cfg.objective)
    n = int(os.environ.get("WORLD_SIZE", "1"))
    B = cfg.prompts_per_step * cfg.group_size
    if B % n:
        raise ValueError(f"{B} completions per step (prompts_per_step x group_size) do not split evenly "
                         f"into {n} processes: choose a prompts_per_step that makes them")
    rows = B // n
    micro = max(d for d in range(1, min(cfg.micro_batch_size, rows) + 1) if rows % d == 0)
    cuda = torch.cuda.is_available()
    dtype = models.compute_dtype(cfg.precision, torch.device("cuda" if cuda else "cpu"))
    if use_vllm is None:
        use_vllm = cuda and importlib.util.find_spec("vllm") is not None
    settings = dict(
        output_dir=output_dir, max_steps=cfg.steps * cfg.mu, seed=cfg.seed, per_device_train_batch_size=micro,
        gradient_accumulation_steps=rows // micro, num_generations=cfg.group_size,
        max_completion_length=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p, top_k=0,
        learning_rate=cfg.learning_rate, lr_scheduler_type="constant_with_warmup",
        warmup_steps=cfg.warmup_steps, weight_decay=0.0, max_grad_norm=cfg.grad_clip, optim="adamw_torch",
        num_iterations=cfg.mu, epsilon=(row.clip or (cfg.epsilon,))[0],
        epsilon_high=(row.clip or (cfg.epsilon, cfg.epsilon))[1], beta=cfg.beta if row.kl else 0.0,
        loss_type=TRL_LOSS_TYPE[row.aggregation or cfg.aggregation], scale_rewards="group" if row.std else "none",
        importance_sampling_level="sequence" if row.ratio == "sequence" else "token", use_bias_correction_kl=False,
        reward_weights=[1.0, 0.0], bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        use_cpu=not cuda, use_vllm=use_vllm, vllm_mode="colocate", logging_steps=1, report_to="none",
        save_strategy="steps" if cfg.checkpoint_every else "no", save_steps=cfg.checkpoint_every or 500,
    )
    return GRPOConfig(**{**settings, **overrides})


class CourseGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose per-completion weights and loss are one row of the course's table.

    Rows without ratio and KL, ``mixed_only`` rows (and every row when ``course_advantages``)
    get their weights from ``course_lib.objectives.weights``; rows without ratio and KL get the
    signed-SFT loss. Everything else (sampling, rewards, sharding, the optimizer) is TRL's.

    Args:
        objective: a name in ``OBJECTIVES``.
        course_advantages: the grpo rows use the course's advantages (population std) too.
        model, reward_funcs, args, **kwargs: as for ``GRPOTrainer``; ``reward_funcs`` is
            :func:`reward_functions` (``reward``, then ``correct``) and ``args.reward_weights``
            is ``[1, 0]``.
    """

    def __init__(self, model, reward_funcs, args: GRPOConfig, *, objective: str,
                 course_advantages: bool = False, **kwargs):
        row = get_objective(objective)
        problems = []
        if args.loss_type not in _AGGREGATION:
            problems.append(f"loss_type {args.loss_type!r} is none of {', '.join(_AGGREGATION)}")
        if args.beta != 0 and not row.kl:
            problems.append(f"{row.name} has no KL term: set beta=0")
        if not isinstance(reward_funcs, list) or len(reward_funcs) != 2 or list(args.reward_weights or []) != [1.0, 0.0]:
            problems.append("reward_funcs must be [reward, correct] with reward_weights [1, 0]")
        if args.multi_objective_aggregation != "sum_then_normalize":
            problems.append("multi_objective_aggregation must be 'sum_then_normalize'")
        if row.needs_logprobs:
            problems.append(f"{row.name} weighs samples by their own log-probs, which TRL's reward path does not "
                            "pass: train it with course_lib.trainer")
        if problems:
            raise ValueError("CourseGRPOTrainer: " + "; ".join(problems) + " (grpo_config sets all of these)")
        super().__init__(model=model, reward_funcs=reward_funcs, args=args, **kwargs)
        self.objective = row
        self.course_weights = not (row.ratio or row.kl) or row.mixed_only or course_advantages
        self._all_rewards = None

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        """TRL's (B_all, 2) rewards of every process's completions, kept for the weights."""
        self._all_rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        return self._all_rewards

    def _generate_and_score_completions(self, inputs):
        """TRL's batch for this process, with ``advantages`` (b,) replaced by the row's weights
        of its b completions, computed on the (B_all,) gathered rewards."""
        out = super()._generate_and_score_completions(inputs)
        if self.course_weights:
            n = out["advantages"].shape[0]  # this process's completions
            G = self.num_generations if self.model.training else self.num_generations_eval
            r = self._all_rewards.float()
            w = weights(self.objective, r[:, 0], r[:, 1] > 0.5, G)  # every group whole
            start = self.accelerator.process_index * n
            out["advantages"] = w[start:start + n].to(out["advantages"])
        return out

    def _compute_loss(self, model, inputs):
        """Rows with a ratio or KL: TRL's loss. The signed rows: ``-aggregate(w * logp)`` with
        TRL's normaliser, so that micro-batches, accumulation and processes add up to the
        course's full-batch loss (per_token (b, T), w (b,))."""
        if self.objective.ratio or self.objective.kl:
            return super()._compute_loss(model, inputs)
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        att = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        logp, entropy, _ = self._get_per_token_logps_and_entropies(
            model, ids, att, inputs["completion_ids"].size(1), compute_entropy=True)
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        per_token = inputs["advantages"][:, None] * logp
        if "importance_sampling_ratio" in inputs:  # vLLM sampled: the correction TRL applies to its rows
            per_token = per_token * inputs["importance_sampling_ratio"]
        train = self.model.training
        accum = self.current_gradient_accumulation_steps if train else 1
        aggregation = _AGGREGATION[self.loss_type]
        if aggregation == "token":  # the token count of this process's share of one optimizer step
            tokens = inputs["num_items_in_batch"] / self.accelerator.num_processes
            norm = {"num_tokens": tokens * accum / self.args.steps_per_generation if train else tokens}
        else:
            norm = {"num_sequences": logp.shape[0] * accum, "max_length": self.max_completion_length}
        stats = self.accelerator.reduce(torch.stack([(entropy * mask).sum(), mask.sum()]).detach().float(), "sum")
        self._metrics["train" if train else "eval"]["entropy"].append(float(stats[0] / stats[1].clamp(min=1)))
        return -aggregate(per_token, mask, aggregation, **norm)


def make_trainer(cfg: TrainConfig, output_dir: str, *, model=None, tokenizer=None, course_advantages: bool = False,
                 use_vllm: bool | None = None, train_dataset=None, **kwargs) -> CourseGRPOTrainer:
    """A ready :class:`CourseGRPOTrainer` for the course run ``cfg``; ``trainer.train()`` runs it.

    Args:
        model: a model, or a hub id / folder that TRL loads for full fine-tuning. Default: the
            micro model for the micro profile, else the profile's ``model_id``.
        tokenizer: default the course's (micro) or the model's, with the profile's eos and pad.
        train_dataset: default :func:`task_dataset` of ``cfg.task``'s training split.
        kwargs: ``GRPOTrainer`` arguments (``callbacks``, ``rollout_func``, ``peft_config``, ...)
            and ``GRPOConfig`` fields, which override :func:`grpo_config`.
    """
    profile, task = models.get_profile(cfg.profile), get_task(cfg.task)
    if model is None and profile.model_id is None:
        model, tokenizer = models.load_micro()
    model = profile.model_id if model is None else model
    if tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model if isinstance(model, str) else model.config._name_or_path)
    if profile.model_id is not None:
        tokenizer = loading.configure_tokenizer(tokenizer, profile)
    trainer_keys = {"callbacks", "rollout_func", "peft_config", "optimizers", "eval_dataset"}
    fields = {k: kwargs.pop(k) for k in list(kwargs) if k not in trainer_keys}
    if profile.gradient_checkpointing:  # transformers 5 renamed the field
        name = "activation_checkpointing" if "activation_checkpointing" in GRPOConfig.__dataclass_fields__ \
            else "gradient_checkpointing"
        fields.setdefault(name, True)
    args = grpo_config(cfg, output_dir, use_vllm=use_vllm, **fields)
    if train_dataset is None:
        def prompt(example):  # the chat template for instruct profiles, as the course's loop
            return models.format_prompt(tokenizer, profile, task.prompt(example))

        train_dataset = task_dataset(task, prompt=prompt, seed=cfg.seed)
    return CourseGRPOTrainer(model=model, reward_funcs=reward_functions(task), args=args,
                             train_dataset=train_dataset, processing_class=tokenizer, objective=cfg.objective,
                             course_advantages=course_advantages, **kwargs)


def run(cfg: TrainConfig, out: str, *, model=None, course_advantages: bool = False, use_vllm: bool | None = None,
        trl_fields: list[str] = ()) -> None:
    """One course run on TRL (``accelerate launch tools/scale.py ...``); the trained model,
    its tokenizer and ``course_config.json`` are saved in ``out``. ``trl_fields``: any
    ``GRPOConfig`` field as ``"FIELD=VALUE"``."""
    fields = dict(_field(text) for text in trl_fields)
    trainer = make_trainer(cfg, out, model=model, course_advantages=course_advantages, use_vllm=use_vllm, **fields)
    trainer.train()
    trainer.save_model(out)
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(out)
        with open(os.path.join(out, "course_config.json"), "w") as f:
            json.dump(dataclasses.asdict(cfg), f, indent=2)


def _field(text: str) -> tuple[str, object]:
    """``"name=value"`` -> (name, value read as JSON, else the string). Example:
    ``"vllm_gpu_memory_utilization=0.5"`` -> ``("vllm_gpu_memory_utilization", 0.5)``."""
    name, sep, value = text.partition("=")
    if not sep or name not in GRPOConfig.__dataclass_fields__:
        raise ValueError(f"--trl {text!r}: expected FIELD=VALUE with FIELD a GRPOConfig field")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value



def main(argv: list[str] | None = None) -> int:
    """The command line (each process of ``accelerate launch`` runs it): a bad option or value
    prints one line naming it and returns 2."""
    ap = Parser(prog="accelerate launch tools/scale.py",
                description="One course run (any objective) on TRL's GRPOTrainer, on N processes.")
    ap.add_argument("--out", required=True, help="TRL's output folder; the trained model is saved here")
    ap.add_argument("--model", default=None, help="hub id or folder (default: the profile's model)")
    ap.add_argument("--course-advantages", action="store_true", help="grpo rows: the course's std (divide by G)")
    ap.add_argument("--no-vllm", action="store_true", help="sample with Hugging Face generate even if vLLM is there")
    ap.add_argument("--trl", action="append", default=[], metavar="FIELD=VALUE",
                    help="any GRPOConfig field, e.g. vllm_gpu_memory_utilization=0.5 (repeatable)")
    try:
        cfg, opts = parse_config(ap, sys.argv[1:] if argv is None else list(argv))
        run(cfg, opts["out"], model=opts["model"], course_advantages=opts["course_advantages"],
            use_vllm=False if opts["no_vllm"] else None, trl_fields=opts["trl"])
    except SystemExit as exit_:  # argparse: --help (0) or a bad option, already reported in one line (2)
        return int(exit_.code or 0)
    except USER_ERRORS as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    import transformers

    transformers.utils.logging.disable_progress_bar()  # one loading bar per process otherwise
    sys.exit(main())
