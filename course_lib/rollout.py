"""Rollouts: sample G completions per prompt, and the log-probabilities of the sampled tokens.

The "sample" step of the one on-policy loop (``trainer.py``). Two functions matter:

- :func:`generate_rollouts` turns prompts into a :class:`Rollout`: every prompt repeated G
  times, the left-padded batch sampled with a KV cache by a small loop (:func:`_sample`) that
  drops each completion from the batch as soon as it ends (Hugging Face ``generate`` keeps
  finished rows until the longest one ends). Nothing downstream re-tokenises.
- :func:`completion_logprobs` runs the *training* forward pass and returns
  ``log pi(o_t | q, o_<t)`` for each sampled token, shape ``(B, T)``.

Three details decide whether the numbers are right:

1. **Position ids.** Prompts are left-padded; ``generate`` numbers positions from the attention
   mask (a prompt's first real token gets position 0) and the training forward does the same
   (``cumsum(mask) - 1``). With rotary embeddings a constant shift cancels in exact arithmetic,
   not in low precision, so we match ``generate`` exactly (``tests/test_rollout.py``: < 1e-5).
2. **Memory.** Qwen's vocabulary has 151,936 entries: a (batch, seq, vocab) float32
   ``log_softmax`` is gigabytes, kept for backward. The transformer body runs once; the output
   layer runs on a few hundred completion positions at a time, recomputed in backward
   (checkpointing), so one chunk of logits is alive at any moment
   (``benchmarks/logprobs_memory.py`` prints both peaks).
3. **Temperature.** The policy is the sampling distribution: at temperature T the log-probs are
   those of ``softmax(logits / T)`` (as TRL and verl), so the samples are on-policy for the loss.
   Top-p applies to sampling only; the log-probs are of the full tempered distribution (as TRL),
   so with top_p < 1 they are not exactly the sampler's.

The sampler records each sampled token's log-prob and entropy (the ``confidence`` row and the
entropy curves read them); the "old" log-probs of the PPO ratio (mu > 1) are still recomputed
with one no-grad forward of the training pass, so the first ratio is exactly 1 in any precision
(the sampler's cached forward differs in rounding). Tokens after the first end-of-sequence
token are padding, masked out and never scored.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint


@dataclass
class Rollout:
    """G sampled completions for each of P prompts (B = P * G rows, grouped consecutively).

    Rows ``g*G .. g*G+G-1`` belong to prompt ``g``.

    Attributes:
        prompt_ids: (B, P_len) left-padded prompt token ids.
        prompt_mask: (B, P_len) 1 for real prompt tokens, 0 for left padding.
        completion_ids: (B, T) sampled token ids, right-padded with the pad token.
        completion_mask: (B, T) 1 for tokens up to and including the first end-of-sequence
            token, 0 after it.
        truncated: (B,) bool, True where no end-of-sequence token was produced within
            ``max_new_tokens`` (the answer was cut off).
        texts: B decoded completions (without the end-of-sequence token).
        prompts: B prompt strings (each prompt repeated G times).
        entropy: (B, T) float32 entropy of each sampled token's tempered distribution, taken
            while sampling (0 after the eos, and everywhere when greedy): the same samples for
            every objective, at no extra forward.
        logprobs: (B, T) float32 log-probability of each sampled token under the tempered
            distribution (before top-p), taken while sampling, 0 after the eos and when greedy:
            what the reward-free ``confidence`` row weighs by, at no extra forward.
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    truncated: torch.Tensor
    texts: list[str]
    prompts: list[str]
    entropy: torch.Tensor | None = None
    logprobs: torch.Tensor | None = None

    @property
    def lengths(self) -> torch.Tensor:
        """(B,) number of completion tokens, end-of-sequence token included."""
        return self.completion_mask.sum(dim=1)

    def select(self, index: torch.Tensor | Sequence[int]) -> Rollout:
        """The rows ``index`` as a new Rollout (used for micro-batches). Columns that are padding
        in every selected row are trimmed, so short micro-batches run short forwards."""
        index = torch.as_tensor(index, dtype=torch.long)
        pm, cm = self.prompt_mask[index], self.completion_mask[index]
        p_start = int((pm.sum(0) > 0).nonzero().min()) if pm.any() else pm.shape[1] - 1
        t_end = int((cm.sum(0) > 0).nonzero().max()) + 1 if cm.any() else 1
        return Rollout(
            prompt_ids=self.prompt_ids[index][:, p_start:],
            prompt_mask=pm[:, p_start:],
            completion_ids=self.completion_ids[index][:, :t_end],
            completion_mask=cm[:, :t_end],
            truncated=self.truncated[index],
            texts=[self.texts[i] for i in index.tolist()],
            prompts=[self.prompts[i] for i in index.tolist()],
            entropy=None if self.entropy is None else self.entropy[index][:, :t_end],
            logprobs=None if self.logprobs is None else self.logprobs[index][:, :t_end],
        )


def _eos_ids(tokenizer, eos_token_id=None) -> list[int]:
    eos = eos_token_id if eos_token_id is not None else tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no eos_token_id; set tokenizer.eos_token = '...' first")
    return [int(e) for e in eos] if isinstance(eos, (list, tuple)) else [int(eos)]


def completion_mask_from_eos(completion_ids: torch.Tensor, eos_ids: Sequence[int]):
    """Mask through the first end-of-sequence token (inclusive) and the truncated flags.

    Args:
        completion_ids: (B, T) sampled ids.
        eos_ids: ids that end a sequence.

    Returns:
        mask (B, T) long, truncated (B,) bool.

    Example: ids ``[[5, 2, 7], [5, 6, 7]]`` with eos 2 -> mask ``[[1, 1, 0], [1, 1, 1]]``,
    truncated ``[False, True]``.
    """
    is_eos = torch.isin(completion_ids, torch.tensor(list(eos_ids), device=completion_ids.device))
    # number of eos tokens strictly before each position; a token is kept while it is 0
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    mask = (before == 0).long()
    truncated = ~is_eos.any(dim=1)
    return mask, truncated


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted from the first real token, as ``generate`` does for left padding.

    Example: mask ``[[0, 0, 1, 1, 1]]`` -> ``[[0, 0, 0, 1, 2]]`` (padding gets 0; it is masked).
    """
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


@torch.no_grad()
def generate_rollouts(
    model,
    tokenizer,
    prompts: Sequence[str],
    group_size: int,
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    micro_batch_size: int | None = None,
    seed: int | None = None,
    eos_token_id: int | list[int] | None = None,
) -> Rollout:
    """Sample ``group_size`` completions for every prompt.

    Args: model: a causal LM (or a PEFT model around one). tokenizer: with ``pad_token_id`` and
        ``eos_token_id``. prompts: P strings. group_size: G completions per prompt.
        max_new_tokens: the cap; answers cut there are flagged ``truncated``. temperature: 0 is
        greedy (the G copies are then identical). top_p: nucleus threshold (1.0 = off; top-k is
        off). micro_batch_size: rows sampled together (None = all B = P*G at once). seed: if
        given, ``torch.manual_seed(seed)`` first, so the same call gives the same rollout.

    Returns: a :class:`Rollout` with B = P * G rows. Example: ``generate_rollouts(model, tok,
    ["3 7 5>26:"], group_size=4, max_new_tokens=48).completion_ids`` is (4, T), T <= 48.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if not prompts:
        raise ValueError("prompts is empty: pass at least one prompt string")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token = tokenizer.eos_token")
    eos_ids = _eos_ids(tokenizer, eos_token_id)
    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    rows = [p for p in prompts for _ in range(group_size)]
    enc = tokenizer(rows, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    prompt_ids, prompt_mask = enc["input_ids"], enc["attention_mask"]
    was_training = model.training
    model.eval()
    mb = micro_batch_size or len(rows)
    pieces = []
    try:
        for start in range(0, len(rows), mb):
            ids, att = prompt_ids[start : start + mb].to(device), prompt_mask[start : start + mb].to(device)
            pieces.append(_sample(model, ids, att, max_new_tokens=max_new_tokens, temperature=temperature,
                                  top_p=top_p, eos_ids=eos_ids, pad_id=tokenizer.pad_token_id))
    finally:
        model.train(was_training)
    width = max(p[0].shape[1] for p in pieces)
    completion_ids, entropy, logprobs = (
        torch.cat([torch.nn.functional.pad(p[i], (0, max(width, 1) - p[i].shape[1]), value=v) for p in pieces])
        for i, v in ((0, tokenizer.pad_token_id), (1, 0.0), (2, 0.0)))
    mask, truncated = completion_mask_from_eos(completion_ids, eos_ids)
    if width == 0:  # max_new_tokens == 0: nothing sampled
        mask.zero_()
    texts = [tokenizer.decode(ids_row[: int(m.sum()) - (0 if trunc else 1)].tolist(), skip_special_tokens=False)
             for ids_row, m, trunc in zip(completion_ids, mask, truncated)]  # without the eos token itself
    return Rollout(prompt_ids, prompt_mask, completion_ids, mask, truncated, texts, rows, entropy * mask,
                   logprobs * mask)


def _cache_kwarg(model) -> str:
    """transformers 5 calls the KV-cache argument ``cache``; 4.x calls it ``past_key_values``."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _pick(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """(n, V) next-token logits -> (n,) token ids: greedy at temperature 0, else nucleus sampling
    (the same rule as ``generate``'s top-p: keep the most likely tokens up to mass top_p)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1)
        drop = sorted_logits.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        drop[:, -1] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1)[:, 0]


@torch.no_grad()
def _sample(model, ids, att, *, max_new_tokens, temperature, top_p, eos_ids, pad_id):
    """KV-cached sampling that removes each row from the batch as soon as it has produced an eos.

    ``generate`` keeps finished rows in the batch until the longest one ends; with completions of
    10 to 64 tokens under a 64-token cap, much of that work is padding. Here the batch (and its
    KV cache) shrinks as rows finish.

    Args:
        ids, att: (b, P_len) left-padded prompt ids and mask.

    Returns:
        (b, T) completion ids, T <= max_new_tokens, ``pad_id`` after each row's eos; (b, T)
        float32 entropies of the tempered distributions they were drawn from and (b, T) the
        sampled tokens' log-probs under them (both 0 when greedy), on the CPU.
    """
    from transformers import DynamicCache

    b = ids.shape[0]
    out = torch.full((b, max_new_tokens), pad_id, dtype=torch.long, device=ids.device)
    ent = torch.zeros(b, max_new_tokens, device=ids.device)
    lps = torch.zeros(b, max_new_tokens, device=ids.device)
    if max_new_tokens == 0:
        return out, ent, lps
    cache, kw = DynamicCache(), _cache_kwarg(model)
    pos = position_ids_from_mask(att)
    eos = torch.tensor(list(eos_ids), device=ids.device)
    alive = torch.arange(b, device=ids.device)
    logits = model(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=True, logits_to_keep=1,
                   **{kw: cache}).logits[:, -1]
    pos = pos[:, -1:] + 1
    width = max_new_tokens
    for t in range(max_new_tokens):
        tok = _pick(logits, temperature, top_p)
        out[alive, t] = tok
        if temperature > 0:
            dist = torch.distributions.Categorical(logits=logits.float() / temperature)
            ent[alive, t], lps[alive, t] = dist.entropy(), dist.log_prob(tok)
        if t == max_new_tokens - 1:
            break
        done = torch.isin(tok, eos)
        if done.any():
            keep = (~done).nonzero().flatten()
            if keep.numel() == 0:
                width = t + 1
                break
            alive, tok, att, pos = alive[keep], tok[keep], att[keep], pos[keep]
            cache.batch_select_indices(keep)
        att = torch.cat([att, att.new_ones(att.shape[0], 1)], dim=1)
        logits = model(input_ids=tok[:, None], attention_mask=att, position_ids=pos, use_cache=True,
                       logits_to_keep=1, **{kw: cache}).logits[:, -1]
        pos = pos + 1
    return out[:, :width].cpu(), ent[:, :width].cpu(), lps[:, :width].cpu()


def _chunk_logprobs(h: torch.Tensor, targets: torch.Tensor, weight, bias, temperature: float = 1.0):
    logits = torch.nn.functional.linear(h, weight, bias).float() / temperature
    return logits.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def sampled_token_logprobs(
    hidden: torch.Tensor,
    targets: torch.Tensor,
    output_layer: torch.nn.Module,
    *,
    chunk_size: int = 256,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``log softmax(output_layer(hidden) / temperature)[target]`` for N positions, ``chunk_size``
    at a time.

    Args:
        hidden: (N, H) final hidden states.
        targets: (N,) token ids whose log-probability we want.
        output_layer: the LM head (a ``nn.Linear`` with weight (V, H)).
        chunk_size: positions per chunk. Each chunk's (chunk_size, V) float32 logits exist only
            inside the chunk; with grad enabled they are recomputed in backward (checkpointing).
        temperature: the sampling temperature (> 0); the log-probs are of the tempered softmax.

    Returns:
        (N,) float32 log-probs.

    Example: N = 4096 positions and Qwen's V = 151,936: the naive float32 log-softmax holds
    2.5 GB of logits plus as much again for the log-softmax; here one (256, V) chunk, 156 MB.
    """
    if not temperature > 0:
        raise ValueError(f"log-probs need a temperature > 0, got {temperature}")
    weight = output_layer.weight
    bias = getattr(output_layer, "bias", None)
    tau = float(temperature)
    out = [hidden.new_zeros(0, dtype=torch.float32)]
    for s in range(0, hidden.shape[0], chunk_size):
        h, t = hidden[s : s + chunk_size], targets[s : s + chunk_size]
        if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
            out.append(checkpoint(_chunk_logprobs, h, t, weight, bias, tau, use_reentrant=False))
        else:
            out.append(_chunk_logprobs(h, t, weight, bias, tau))
    return torch.cat(out)


def _body_and_head(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def completion_logprobs(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    *,
    chunk_size: int = 256,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Training-time log-probs of the sampled completion tokens under the sampling
    distribution ``softmax(logits / temperature)`` (differentiable).

    Args:
        model: causal LM (or PEFT model); gradients flow to its trainable parameters.
        prompt_ids, prompt_mask: (B, P_len) left-padded prompts and their mask.
        completion_ids, completion_mask: (B, T) completions and their mask.
        chunk_size: positions per output-layer chunk (see :func:`sampled_token_logprobs`).
        temperature: the temperature the completions were sampled at (> 0).

    Returns:
        logprobs (B, T) float32, 0 where ``completion_mask`` is 0.

    Example::

        lp = completion_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)
        lp.shape == r.completion_ids.shape
    """
    device = next(model.parameters()).device
    p_len = prompt_ids.shape[1]
    ids = torch.cat([prompt_ids, completion_ids], dim=1).to(device)
    att = torch.cat([prompt_mask, completion_mask], dim=1).to(device)
    body, head = _body_and_head(model)
    hidden = body(
        input_ids=ids, attention_mask=att, position_ids=position_ids_from_mask(att), use_cache=False
    ).last_hidden_state
    # the hidden state at position j predicts token j + 1
    h = hidden[:, p_len - 1 : -1]
    cmask = completion_mask.to(device).bool()
    lp = sampled_token_logprobs(h[cmask], completion_ids.to(device)[cmask], head, chunk_size=chunk_size,
                                temperature=temperature)
    return torch.zeros(cmask.shape, dtype=torch.float32, device=device).masked_scatter(cmask, lp)
