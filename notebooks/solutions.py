"""Reference solutions to the coding exercises of the notebooks.

Open this file when you are stuck or want to compare; ``exercises.check`` compares your version
with ``course_lib.objectives`` on random inputs. Shapes: B = completions (P prompts x G samples,
grouped consecutively), T = completion length (right-padded; ``mask`` is 1 on real tokens).
"""

import torch


def group_advantages(rewards, G):
    """(B,) rewards -> (B,) GRPO advantages (r - group mean) / (group population std + 1e-4);
    a group whose rewards are all equal gets exactly 0 (notebook 02).

    Example: rewards [1, 0, 0, 0], G = 4 -> [1.732, -0.577, -0.577, -0.577] (up to the 1e-4).
    """
    r = rewards.reshape(-1, G)
    a = (r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, unbiased=False, keepdim=True) + 1e-4)
    flat = (r == r[:, :1]).all(dim=1, keepdim=True)
    return torch.where(flat, torch.zeros_like(a), a).reshape(-1)


def clipped_surrogate(logprobs, old_logprobs, advantages, mask, epsilon=0.2):
    """GRPO's clipped surrogate as a loss (no KL, GRPO's 1/|o_i| then mean over completions).

    Args: logprobs, old_logprobs, mask: (B, T); advantages: (B,). Returns a scalar (notebook 04).
    Example: logprobs == old_logprobs -> the loss is -mean_i A_i, its gradient A_i/(B|o_i|) per token.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages[:, None]
    term = torch.min(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)
    per_sequence = (term * mask).sum(dim=1) / mask.sum(dim=1)
    return -per_sequence.mean()


def signed_weights(correct, G, positive=1.0, negative=1.0, balance=False):
    """(B,) bool verdicts -> (B,) signed-SFT weights: +positive if right, -negative if wrong;
    with ``balance`` each group's negatives are scaled by min(1, k / (G - k)) (notebook 05).

    Example: correct [T, F, F, F], G = 4 -> [1, -1, -1, -1]; balanced -> [1, -1/3, -1/3, -1/3].
    """
    c = correct.reshape(-1, G).float()
    w = c * positive - (1 - c) * negative
    if balance:
        k = c.sum(dim=1, keepdim=True)
        factor = torch.clamp(k / (G - k).clamp(min=1), max=1.0)
        w = torch.where(c > 0, w, w * factor)
    return w.reshape(-1)


def aggregate(per_token, mask, aggregation):
    """(B, T) per-token terms -> a scalar: "sequence" (mean per completion, then over completions;
    GRPO's 1/|o_i|), "token" (sum / number of real tokens; DAPO) or "constant" (sum / (B * T);
    Dr. GRPO) (notebook 07).

    Example: per_token [[1, 1, 0], [4, 0, 0]], mask [[1, 1, 0], [1, 0, 0]] -> 2.5, 2.0, 1.0.
    """
    summed = per_token * mask
    if aggregation == "sequence":
        return (summed.sum(dim=1) / mask.sum(dim=1)).mean()
    if aggregation == "token":
        return summed.sum() / mask.sum()
    return summed.sum() / per_token.numel()
