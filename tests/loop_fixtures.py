"""Tiny, committed fixtures for the loop tests: a random Qwen2 model, a character tokenizer and a
fake task whose rewards are a deterministic function of the text. Nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import Tokenizer, decoders, models
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CHARS = list("0123456789abcdef+-*=>:| ")


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character, plus <pad> (id 0) and <eos> (id 1); left padding."""
    vocab = {"<pad>": 0, "<eos>": 1}
    for c in CHARS:
        vocab[c] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")
    tok.padding_side = "left"
    return tok


def tiny_model(vocab_size: int = 2 + len(CHARS), seed: int = 0, dtype=torch.float32) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=1,
    )
    return Qwen2ForCausalLM(cfg).to(dtype)


@dataclass(frozen=True)
class FakeScore:
    reward: float
    correct: bool
    well_formed: bool
    reason: str


def _fake_load(split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    rows = [{"a": i % 7, "b": (3 * i) % 5} for i in range(40 if split == "train" else 12)]
    return rows[:n] if n is not None else rows


def _fake_prompt(ex: dict) -> str:
    return f"{ex['a']}{'ab'[ex['b'] % 2] * (1 + ex['b'])}>"


def _fake_score(completion: str, ex: dict) -> FakeScore:
    # "correct" when the completion contains the digit of the example: a random tiny model
    # gets this sometimes, so groups have mixed rewards
    ok = str(ex["a"]) in completion
    return FakeScore(float(ok), ok, True, "has digit" if ok else "no digit")


@dataclass(frozen=True)
class FakeTask:
    name: str = "fake"
    load: object = _fake_load
    prompt: object = _fake_prompt
    score: object = _fake_score


def fake_task() -> FakeTask:
    return FakeTask()


def naive_sampled_token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The textbook way, for tests only: a full float32 log-softmax over (B, T, V), then gather."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None]).squeeze(-1)
