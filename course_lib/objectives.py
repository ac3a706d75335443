"""Every objective of the course: one table, two functions, and the pieces they are made of.

Shapes: B = completions in the batch (P prompts x G samples, grouped consecutively),
T = completion length (right-padded; ``mask`` is 1 on real tokens).

The whole point of the course fits on one screen. Each objective weighs each sampled
completion by one number w_i and puts the same loss on it::

    GRPO                                          signed SFT (Filtered-ISFT)
    ----                                          --------------------------
    w_i   = (r_i - mean_g r) / (std_g r + eps)    w_i = +1 if correct, -1 if not (or 0)
    rho   = exp(logp - old_logp)                  (no ratio: the samples are on-policy)
    term  = min(rho*w_i, clip(rho)*w_i)           term = w_i * logp
            - beta * KL_k3(pi || pi_ref)
    loss  = -aggregate(term, mask)                loss = -aggregate(term, mask)

With one update per rollout (mu = 1), ``rho == 1`` in value, the clip is inactive and
``grad(rho * w) == w * grad(logp)``: GRPO's gradient *is* signed SFT's gradient with the group
advantages as weights. ``tests/test_objectives.py`` checks this in float64. The KL term is
itself a per-token weight on the model's own samples: its gradient is
``-beta * (1 - pi_ref / pi_theta) * grad(logp)`` at each token (notebook 02).

:data:`OBJECTIVES` is the table: one :class:`Objective` per name, saying how the weights are
made and whether the ratio/clip and the KL apply. :func:`weights` and :func:`loss` read a row;
the training loop never branches on an objective's name. One row, ``confidence``, is a control
without any verifier signal: GRPO's loss with the model's own confidence (the group-normalised
mean log-prob of each sample) as the reward, so what it gains is what sharpening alone gives;
its weights need the sampled tokens' log-probs (``weights(..., logprobs=, mask=)``).

What is simplified: no value function and no per-token credit (every token of a completion
gets the same weight, the paper's assumption 2); the group std is the *population* std
(divide by G, as ``torch.std(unbiased=False)``). TRL and DeepSeekMath use the sample std
(divide by G - 1), which only rescales the advantages by sqrt(G/(G-1)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: how per-token terms become one number; see :func:`aggregate`
AGGREGATIONS = ("sequence", "token", "constant")
#: how group advantages are scaled; see :func:`group_advantages`
ADVANTAGE_SCALES = ("group", "batch", "none")


@dataclass(frozen=True)
class Objective:
    """One row of the objective table.

    Attributes:
        name: the name used everywhere (CLI, ``reproduce``, notebooks, README).
        weights: ``"advantage"`` = GRPO's group advantages; ``"signed"`` = +positive for a
            correct sample, -negative for an incorrect one; ``"confidence"`` = the group
            advantages of the samples' own mean token log-probabilities (no verifier signal,
            :func:`confidence_weights`).
        positive, negative: the two signed weights (F-ISFT+: 1, 0; F-ISFT-: 0, 1; +-: 1, 1).
        balance: signed only; each group's negatives are scaled by min(1, k / (G - k)).
        std: advantage only; divide by the group's std (False: only centre, as Dr. GRPO).
        mixed_only: give weight 0 to groups that are all right or all wrong (Reinforce-Rej).
        ratio: PPO's clipped ratio: ``"token"`` per token (GRPO), ``"sequence"`` one ratio per
            completion, the exp of its mean log-ratio (GSPO); None: no ratio. The ratio and
            its clip matter only with mu > 1 updates per rollout.
        kl: subtract beta * KL(pi || pi_ref) per token.
        aggregation: the row's own normaliser (Dr. GRPO: "constant"); None: the run's.
        clip: the row's own clip range (low, high): ratio kept in [1 - low, 1 + high]; None: the
            run's epsilon both ways. GSPO clips its sequence ratio at (3e-4, 4e-4).
        source: where it comes from: "paper: ..." (the paper's runs), "course's own: ...", or
            "later paper: ..." (the claims notebook 08 tests).
    """

    name: str
    weights: str
    positive: float = 1.0
    negative: float = 1.0
    balance: bool = False
    std: bool = True
    mixed_only: bool = False
    ratio: str | None = None
    kl: bool = False
    aggregation: str | None = None
    clip: tuple[float, float] | None = None
    source: str = ""

    @property
    def needs_logprobs(self) -> bool:
        """True when :func:`weights` needs the sampled tokens' log-probs (``logprobs``, ``mask``)."""
        return self.weights == "confidence"


#: The objective table. ``sft+-sized`` is ``grpo-no-kl`` without the ratio: the table itself
#: states the paper's claim (at mu = 1 the two rows are one update). The balanced variant equals
#: GRPO's weights divided by A+ whenever a group has k <= G/2 correct samples (notebook 05).
OBJECTIVES: dict[str, Objective] = {o.name: o for o in (
    Objective("grpo", "advantage", ratio="token", kl=True, source="paper: GRPO"),
    Objective("grpo-no-kl", "advantage", ratio="token", source="paper: GRPO-wo-KL"),
    Objective("sft+", "signed", negative=0.0, source="paper: Filtered-ISFT+ (RAFT)"),
    Objective("sft-", "signed", positive=0.0, source="paper: Filtered-ISFT-"),
    Objective("sft+-", "signed", source="paper: Filtered-ISFT+-, weights +1 / -1"),
    Objective("sft+-balanced", "signed", balance=True,
              source="course's own: Filtered-ISFT+- with negatives scaled by min(1, k/(G-k))"),
    Objective("sft+-sized", "advantage",
              source="course's own: GRPO's advantages as signed-SFT weights (the exact-GRPO check)"),
    # notebook 08: what later papers claim about "RL" for LLMs (RAFT is sft+)
    Objective("reinforce-rej", "signed", mixed_only=True, ratio="token",
              source="later paper: Xiong et al. 2504.11343: +1/-1 on mixed groups only, PPO ratio"),
    Objective("dr-grpo", "advantage", std=False, ratio="token", aggregation="constant",
              source="later paper: Liu et al. 2503.20783: no std scaling, constant normaliser"),
    Objective("gspo", "advantage", ratio="sequence", clip=(3e-4, 4e-4),
              source="later paper: Zheng et al. 2507.18071: sequence-level ratio, its own clip (3e-4, 4e-4)"),
    Objective("gspo-eps", "advantage", ratio="sequence",
              source="course's own: GSPO's sequence ratio clipped at the run's epsilon, as grpo's ratio is"),
    # the reward-free control: GRPO's loss with the model's own confidence as the reward
    Objective("confidence", "confidence", ratio="token", kl=True,
              source="later paper: Zhao et al. 2505.19590 (Intuitor), simplified: group-normalised mean token "
                     "log-prob of the sample as the reward, no verifier"),
)}


def get_objective(name: str) -> Objective:
    """The row called ``name``; a ValueError lists the valid names."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


def weights(objective: Objective, rewards: torch.Tensor, correct: torch.Tensor, group_size: int, *,
            logprobs: torch.Tensor | None = None, mask: torch.Tensor | None = None):
    """(B,) weight of each completion under ``objective``.

    Args:
        rewards: (B,) verifier rewards. correct: (B,) bool verdicts. group_size: G.
        logprobs: (B, T) log-probs of the sampled tokens under the sampling policy (no grad
            needed), and mask: (B, T) 1 on real completion tokens. Only rows whose
            ``needs_logprobs`` is True read them (``confidence``), and those rows need them;
            every other row ignores them, so the four-argument call is unchanged.

    Example: rewards ``[1, 0, 0, 0]``, G = 4 -> grpo ``[1.73, -0.58, -0.58, -0.58]``,
    sft+- ``[1, -1, -1, -1]``, sft+ ``[1, 0, 0, 0]``, sft+-balanced ``[1, -1/3, -1/3, -1/3]``.
    """
    if objective.needs_logprobs:
        if logprobs is None or mask is None:
            raise ValueError(
                f"objective {objective.name!r} weighs each sample by its own log-probability: call "
                "weights(objective, rewards, correct, G, logprobs=<(B, T) sampled-token log-probs>, "
                "mask=<(B, T) completion mask>)")
        return confidence_weights(logprobs, mask, group_size)
    if objective.weights == "advantage":
        w = group_advantages(rewards, group_size, scale="group" if objective.std else "none")
    else:
        w = signed_weights(correct, group_size, positive=objective.positive, negative=objective.negative,
                           balance=objective.balance, dtype=rewards.dtype)
    if objective.mixed_only:
        w = w * mixed_groups(rewards > 0, group_size).repeat_interleave(group_size).to(w.dtype)
    return w


def loss(objective: Objective, logprobs, old_logprobs, w, mask, *, beta: float = 0.0,
         ref_logprobs=None, epsilon: float = 0.2, aggregation: str = "sequence", **norm):
    """Scalar loss of ``objective`` on one (micro-)batch: the clipped ratio (+ KL) or the
    weighted negative log-likelihood. Arguments as in :func:`grpo_loss`; ``beta`` is used only
    by rows with ``kl=True``, ``aggregation`` only by rows without their own."""
    agg = objective.aggregation or aggregation
    low, high = objective.clip or (epsilon, epsilon)
    if objective.ratio == "sequence":
        return gspo_loss(logprobs, old_logprobs, w, mask, epsilon=low, epsilon_high=high, **norm)
    if objective.ratio or objective.kl:
        return grpo_loss(logprobs, old_logprobs, w, mask, epsilon=low, epsilon_high=high,
                         beta=beta if objective.kl else 0.0, ref_logprobs=ref_logprobs, aggregation=agg, **norm)
    return signed_sft_loss(logprobs, w, mask, aggregation=agg, **norm)


def clipped(objective: Objective, logprobs, old_logprobs, w, mask, epsilon: float = 0.2) -> float:
    """Fraction of the row's clipping units (tokens; completions for a sequence ratio) where the
    clip cut the gradient. Always 0 with one update per rollout."""
    low, high = objective.clip or (epsilon, epsilon)
    if objective.ratio != "sequence":
        return clip_fraction(logprobs, old_logprobs, w, mask, epsilon=low, epsilon_high=high)
    with torch.no_grad():
        ratio = _sequence_ratio(logprobs, old_logprobs, mask)
        cut = ((ratio > 1 + high) & (w > 0)) | ((ratio < 1 - low) & (w < 0))
        return float(cut.float().mean()) if cut.numel() else 0.0


# ------------------------------------------------------------------------------ the pieces


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str = "sequence",
    *,
    num_sequences: int | None = None,
    num_tokens: int | float | None = None,
    max_length: int | None = None,
) -> torch.Tensor:
    """Reduce (B, T) per-token terms to a scalar.

    - ``"sequence"``: mean over each completion's tokens, then mean over completions
      (GRPO's 1/|o_i|: long completions get less weight per token).
    - ``"token"``: sum over all tokens / number of tokens (DAPO).
    - ``"constant"``: sum / (B * max_length) (Dr. GRPO's normaliser; every token weighs the same).

    Args:
        per_token: (B, T). mask: (B, T), 1 on real tokens.
        num_sequences, num_tokens, max_length: the *full batch's* B, token count and length
            normaliser. Pass them when ``per_token`` is one micro-batch of a bigger batch, so
            the micro-batch losses add up exactly to the full-batch loss. Defaults: this
            tensor's B, its mask sum and T.

    Example: per_token ``[[1, 1, 0], [4, 0, 0]]``, mask ``[[1, 1, 0], [1, 0, 0]]`` ->
    sequence 2.5, token 2.0, constant 1.0.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    mask = mask.to(per_token.dtype)
    summed = per_token * mask
    n = num_sequences if num_sequences is not None else per_token.shape[0]
    if aggregation == "sequence":
        lengths = mask.sum(dim=1).clamp(min=1)
        return (summed.sum(dim=1) / lengths).sum() / max(n, 1)
    if aggregation == "token":
        t = num_tokens if num_tokens is not None else mask.sum()
        return summed.sum() / (t.clamp(min=1) if torch.is_tensor(t) else max(t, 1))
    t = max_length if max_length is not None else per_token.shape[1]
    return summed.sum() / max(n * t, 1)


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4
) -> torch.Tensor:
    """(r - group mean) / (std + eps), one value per completion.

    Args:
        rewards: (B,) with B a multiple of ``group_size``; rows of a group are consecutive.
        group_size: G.
        scale: ``"group"`` divides by the group's population std, ``"batch"`` by the whole
            batch's population std, ``"none"`` only centres (Dr. GRPO).
        eps: added to the std. A group whose rewards are all equal gets exactly 0 (never NaN).

    Returns (B,) advantages in ``rewards``' dtype. Example: rewards ``[1, 0, 0, 0]``, G = 4 -> ``[1.732, -0.577, -0.577, -0.577]`` (up to eps):
    A+ = sqrt((1-p)/p), A- = -sqrt(p/(1-p)) with p = 1/4.
    """
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"scale must be one of {ADVANTAGE_SCALES}, got {scale!r}")
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(
            f"rewards has {rewards.numel()} entries, not a multiple of group_size={group_size}"
        )
    r = rewards.reshape(-1, group_size)
    centred = r - r.mean(dim=1, keepdim=True)
    if scale == "group":
        centred = centred / (r.std(dim=1, unbiased=False, keepdim=True) + eps)
    elif scale == "batch":
        centred = centred / (rewards.std(unbiased=False) + eps)
    # a zero-variance group is exactly 0 (even with eps = 0, where 0/0 would be NaN)
    flat = (r == r[:, :1]).all(dim=1, keepdim=True)
    return torch.where(flat, torch.zeros_like(r), centred).reshape(-1)


def mixed_groups(correct: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B // G,) True for groups with both right and wrong samples (the only ones GRPO learns from).

    Example: correct ``[T, F, T, T]``, G = 2 -> ``[True, False]``.
    """
    k = correct.reshape(-1, group_size).to(torch.int64).sum(dim=1)
    return (k > 0) & (k < group_size)


def signed_weights(
    correct: torch.Tensor,
    group_size: int,
    *,
    positive: float = 1.0,
    negative: float = 1.0,
    balance: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Per-completion weights for signed SFT (the paper's Filtered-ISFT).

    Args:
        correct: (B,) bool verdicts, groups of ``group_size`` consecutive rows.
        positive: weight of a correct sample (F-ISFT+ and +-: 1; F-ISFT-: 0).
        negative: size of the push-down on an incorrect sample (F-ISFT- and +-: 1; F-ISFT+: 0).
            The weight used is ``-negative``.
        balance: scale each group's negative weights by ``min(1, k / (G - k))`` (k = correct in
            the group), so the push-down mass never exceeds the push-up mass (without it, 1
            correct of 8 pushes down 7 samples and up only 1).
        dtype: of the (B,) weights returned (the trainer passes the rewards' dtype).

    Example: correct ``[T, F, F, F]``, G = 4: plain +- -> ``[1, -1, -1, -1]``;
    balanced -> ``[1, -1/3, -1/3, -1/3]``. GRPO's advantages as weights are the row
    ``sft+-sized`` (an advantage row without the ratio), not a flag here.
    """
    c = correct.to(torch.bool).reshape(-1)
    if c.numel() % group_size:
        raise ValueError(f"{c.numel()} verdicts is not a multiple of group_size={group_size}")
    pos, neg = c.to(dtype) * positive, -(~c).to(dtype) * negative
    if balance:
        k = c.reshape(-1, group_size).sum(dim=1, keepdim=True).to(dtype)
        factor = torch.clamp(k / (group_size - k).clamp(min=1), max=1.0)
        neg = (neg.reshape(-1, group_size) * factor).reshape(-1)
    return pos + neg


def confidence_weights(logprobs: torch.Tensor, mask: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """Reward-free weights: each sample's mean token log-probability, group-normalised.

    The model's own confidence stands in for the verifier's reward, as in Intuitor (Zhao et al.,
    arXiv 2505.19590), so what the ``confidence`` row gains over the base is what sharpening gives.
    Simplified: Intuitor's *self-certainty* is the mean over tokens of KL(uniform || p(.|context))
    over the vocabulary; here the score is the mean log-prob of the *sampled* tokens, which ranks a
    group's samples by the same kind of confidence from what the loop already has. As in Intuitor,
    scores become GRPO's group advantages, (s - mean_g s) / (std_g s + eps).

    Args: logprobs: (B, T) sampled-token log-probs (read without grad). mask: (B, T) 1 on real
        completion tokens (a completion without tokens scores 0). group_size: G. eps: as above.
    Returns: (B,) weights in ``logprobs``' dtype; a group whose scores are all equal gets exactly 0.

    Example: mean log-probs ``[-1, -2, -3, -2]`` in one group (G = 4) -> ``[1.41, 0, -1.41, 0]``.
    """
    with torch.no_grad():
        m = mask.to(logprobs.dtype)
        score = (logprobs.detach() * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
        return group_advantages(score, group_size, scale="group", eps=eps)


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || pi_ref): exp(d) - d - 1 with d = ref - logp. Always >= 0.

    Example: logp = ref -> 0.
    """
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logprobs: torch.Tensor | None = None,
    aggregation: str = "sequence",
    **norm,
) -> torch.Tensor:
    """GRPO's clipped surrogate, negated (a loss to minimise).

    Args:
        logprobs: (B, T) current log-probs of the sampled tokens (with grad).
        old_logprobs: (B, T) log-probs when the rollout was sampled (no grad). With one update
            per rollout they equal ``logprobs.detach()`` and the ratio is 1.
        advantages: (B,) one value per completion (every token shares it).
        mask: (B, T) 1 on real completion tokens.
        epsilon: lower clip, ratio >= 1 - epsilon. epsilon_high: upper clip (DAPO's
            "clip-higher"; default = epsilon).
        beta: KL weight; 0 skips the KL (and then ``ref_logprobs`` is not needed).
        ref_logprobs: (B, T) reference log-probs, required when beta > 0.
        aggregation: ``"sequence"`` (GRPO), ``"token"`` (DAPO) or ``"constant"`` (Dr. GRPO);
            see :func:`aggregate`, which also documents ``**norm``.

    Returns:
        scalar loss.

    Example: logprobs == old_logprobs, advantages ``[1, -1]``, one token each -> loss 0
    (the terms cancel), but its gradient is that of ``-(1*logp_0 - 1*logp_1)/2``.
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    hi = epsilon if epsilon_high is None else epsilon_high
    adv = advantages.to(logprobs.dtype)[:, None]
    ratio = torch.exp(logprobs - old_logprobs)
    term = torch.min(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + hi) * adv)
    if beta > 0:
        if ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs (the reference policy's log-probs)")
        term = term - beta * kl_k3(logprobs, ref_logprobs)
    return -aggregate(term, mask, aggregation, **norm)


def _sequence_ratio(logprobs, old_logprobs, mask) -> torch.Tensor:
    """(B,) exp(mean over each completion's tokens of logp - old_logp)."""
    m = mask.to(logprobs.dtype)
    return torch.exp(((logprobs - old_logprobs) * m).sum(dim=1) / m.sum(dim=1).clamp(min=1))


def gspo_loss(logprobs, old_logprobs, advantages, mask, *, epsilon: float = 0.2, epsilon_high: float | None = None,
              **norm) -> torch.Tensor:
    """GSPO's clipped surrogate with one length-normalised ratio per completion, negated.

    ``s_i = exp(mean_t(logp - old_logp))``; loss = -mean_i min(s_i A_i, clip(s_i) A_i) (over the
    full batch's ``num_sequences`` when given). At mu = 1, s_i = 1 and
    grad s_i = mean_t grad logp: the update is GRPO's with sequence aggregation.

    Args: as :func:`grpo_loss` (no KL; GSPO's paper uses none).
    """
    adv = advantages.to(logprobs.dtype)
    s = _sequence_ratio(logprobs, old_logprobs, mask)
    hi = epsilon if epsilon_high is None else epsilon_high
    term = torch.min(s * adv, torch.clamp(s, 1 - epsilon, 1 + hi) * adv)
    n = norm.get("num_sequences") or logprobs.shape[0]
    return -term.sum() / max(n, 1)


def signed_sft_loss(
    logprobs: torch.Tensor,
    weights: torch.Tensor,
    mask: torch.Tensor,
    *,
    aggregation: str = "sequence",
    **norm,
) -> torch.Tensor:
    """Signed SFT: the negative weighted log-likelihood of the model's own samples.

    Args:
        logprobs: (B, T) log-probs of the sampled tokens (with grad).
        weights: (B,) per completion, e.g. from :func:`signed_weights` (+1 pushes a sample up,
            negative values push it down, 0 ignores it).
        mask: (B, T). aggregation, ``**norm``: as in :func:`aggregate`.

    Example: weights ``[1, 0]`` -> ordinary SFT on the first completion only.
    """
    return -aggregate(weights.to(logprobs.dtype)[:, None] * logprobs, mask, aggregation, **norm)


@torch.no_grad()
def clip_fraction(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
) -> float:
    """Fraction of real tokens where the clip is active (the gradient is cut).

    That is: ratio > 1 + epsilon_high with a positive advantage, or ratio < 1 - epsilon with a
    negative one. Always 0 with one update per rollout. Example: ratio 1.5, A = 1, eps 0.2 -> 1.0.
    """
    hi = epsilon if epsilon_high is None else epsilon_high
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages[:, None]
    clipped = ((ratio > 1 + hi) & (adv > 0)) | ((ratio < 1 - epsilon) & (adv < 0))
    m = mask.bool()
    return float(clipped[m].float().mean()) if m.any() else 0.0
