"""Rollouts and log-probs: masks, padding, seeding, and training log-probs == sampling log-probs."""

import pytest
import torch
from loop_fixtures import char_tokenizer, naive_sampled_token_logprobs, tiny_model

from course_lib.rollout import (
    completion_logprobs,
    completion_mask_from_eos,
    generate_rollouts,
    position_ids_from_mask,
    sampled_token_logprobs,
)


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


EOS = 1


@pytest.mark.parametrize(
    "ids, mask, truncated",
    [
        ([5, EOS, 7], [1, 1, 0], False),          # eos counted, what follows is padding
        ([5, 6, 7], [1, 1, 1], True),             # no eos: truncated
        ([EOS, 6, EOS], [1, 0, 0], False),        # empty answer: just the eos
        ([5, EOS, EOS], [1, 1, 0], False),        # only the first eos counts
    ],
)
def test_completion_mask_from_eos_table(ids, mask, truncated):
    m, t = completion_mask_from_eos(torch.tensor([ids]), [EOS])
    assert m.tolist() == [mask]
    assert t.tolist() == [truncated]


@pytest.mark.parametrize(
    "mask, positions",
    [([1, 1, 1], [0, 1, 2]), ([0, 0, 1, 1], [0, 0, 0, 1]), ([0, 1, 1, 1, 0], [0, 0, 1, 2, 2])],
)
def test_position_ids_from_mask_table(mask, positions):
    assert position_ids_from_mask(torch.tensor([mask])).tolist() == [positions]


def test_rollout_shapes_groups_and_texts(tok, model):
    r = generate_rollouts(model, tok, ["1ab>", "22>"], 3, max_new_tokens=8, seed=0)
    B = 6
    assert r.completion_ids.shape[0] == B and r.completion_ids.shape[1] <= 8
    assert r.prompt_ids.shape == r.prompt_mask.shape and r.prompt_ids.shape[0] == B
    assert r.prompts == ["1ab>"] * 3 + ["22>"] * 3
    assert r.prompt_mask[3:, 0].tolist() == [0, 0, 0]  # the shorter prompt is left-padded
    for ids, m, trunc, text in zip(r.completion_ids, r.completion_mask, r.truncated, r.texts):
        n = int(m.sum())
        assert bool(trunc) == (EOS not in ids[:n].tolist())
        body = ids[:n] if trunc else ids[: n - 1]
        assert text == tok.decode(body.tolist())


def test_rollout_is_seeded_and_micro_batching_does_not_change_it(tok, model):
    a = generate_rollouts(model, tok, ["1ab>", "22>"], 4, max_new_tokens=10, seed=7)
    b = generate_rollouts(model, tok, ["1ab>", "22>"], 4, max_new_tokens=10, seed=7)
    assert a.texts == b.texts
    greedy_full = generate_rollouts(model, tok, ["1ab>", "22>"], 2, max_new_tokens=10, temperature=0)
    greedy_mb = generate_rollouts(model, tok, ["1ab>", "22>"], 2, max_new_tokens=10, temperature=0,
                                  micro_batch_size=1)
    assert greedy_full.texts == greedy_mb.texts
    assert greedy_full.texts[0] == greedy_full.texts[1]  # greedy copies are identical


def test_rollout_rejects_bad_input(tok, model):
    with pytest.raises(ValueError, match="group_size"):
        generate_rollouts(model, tok, ["1>"], 0)
    with pytest.raises(ValueError, match="prompts"):
        generate_rollouts(model, tok, [], 2)


@pytest.mark.parametrize("temperature, micro_batch_size", [(1.0, None), (0.6, 3), (0.0, None)])
def test_rollout_entropy_and_logprobs_are_those_of_the_distributions_sampled_from(tok, model, temperature,
                                                                                  micro_batch_size):
    """The (B, T) entropies and sampled-token log-probs recorded while sampling equal those of the
    training forward's full logits / T, on every sampled token (0 after the eos); greedy records 0."""
    r = generate_rollouts(model, tok, ["1ab>", "3bbbbbb>", "5>"], 3, max_new_tokens=9, seed=1,
                          temperature=temperature, micro_batch_size=micro_batch_size)
    assert r.entropy.shape == r.logprobs.shape == r.completion_ids.shape
    if temperature == 0:
        assert not r.entropy.any() and not r.logprobs.any()
        return
    with torch.no_grad():
        ids, att = torch.cat([r.prompt_ids, r.completion_ids], 1), torch.cat([r.prompt_mask, r.completion_mask], 1)
        logits = model(input_ids=ids, attention_mask=att, position_ids=position_ids_from_mask(att)).logits
        logp = torch.log_softmax(logits[:, r.prompt_ids.shape[1] - 1 : -1].float() / temperature, -1)
        ent = -(logp.exp() * logp).sum(-1) * r.completion_mask
        lp = completion_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask,
                                 temperature=temperature)
    assert (r.entropy - ent).abs().max().item() < 1e-5 and r.entropy[r.completion_mask.bool()].min() > 0
    assert (r.logprobs - lp).abs().max().item() < 1e-5 and r.logprobs[r.completion_mask.bool()].max() < 0
    part = r.select([4, 1])
    assert torch.equal(part.entropy, r.entropy[[4, 1]][:, : part.completion_ids.shape[1]])
    assert torch.equal(part.logprobs, r.logprobs[[4, 1]][:, : part.completion_ids.shape[1]])


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_training_logprobs_match_sampling_logprobs(tok, model, temperature):
    """With position ids from the mask and logits / T, the training forward reproduces the
    distribution ``generate`` sampled from, at T = 1 and at the Qwen profiles' T = 0.6."""
    prompts = ["1ab>", "5>", "3bbbbbb>"]  # very different lengths: heavy left padding
    enc = tok(prompts, return_tensors="pt", padding=True)
    torch.manual_seed(0)
    out = model.generate(**enc, do_sample=True, top_k=0, temperature=temperature, max_new_tokens=12,
                         output_scores=True, return_dict_in_generate=True, pad_token_id=0, eos_token_id=EOS)
    comp = out.sequences[:, enc["input_ids"].shape[1]:]
    mask, _ = completion_mask_from_eos(comp, [EOS])
    # out.scores: the processed logits the sampler drew from (divided by the temperature)
    sampling = torch.stack([torch.log_softmax(s.float(), -1) for s in out.scores], 1)
    sampling = sampling.gather(-1, comp[..., None]).squeeze(-1) * mask
    with torch.no_grad():
        lp = completion_logprobs(model, enc["input_ids"], enc["attention_mask"], comp, mask,
                                 temperature=temperature)
        lp_t1 = completion_logprobs(model, enc["input_ids"], enc["attention_mask"], comp, mask)
    assert (lp - sampling).abs().max().item() < 1e-5
    if temperature != 1.0:  # the model's own (T = 1) log-probs are not the sampler's
        assert (lp_t1 - sampling).abs().max().item() > 0.05


def test_logprobs_refuse_a_zero_temperature(tok, model):
    r = generate_rollouts(model, tok, ["1ab>"], 1, max_new_tokens=4, seed=0)
    with pytest.raises(ValueError, match="temperature"):
        completion_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask,
                            temperature=0.0)


def test_chunked_logprobs_equal_naive_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 16, generator=g, requires_grad=True)
    head = torch.nn.Linear(16, 1000, bias=False)
    targets = torch.randint(0, 1000, (37,), generator=g)
    naive = naive_sampled_token_logprobs(head(hidden)[None], targets[None])[0]
    chunked = sampled_token_logprobs(hidden, targets, head, chunk_size=8)
    assert torch.allclose(chunked, naive, atol=1e-6)
    (gn_h,) = torch.autograd.grad(naive.sum(), hidden)
    (gc_h,) = torch.autograd.grad(chunked.sum(), hidden)
    assert torch.allclose(gc_h, gn_h, atol=1e-6)


def test_completion_logprobs_equal_full_forward_and_are_zero_on_padding(tok, model):
    r = generate_rollouts(model, tok, ["1ab>", "22>"], 3, max_new_tokens=8, seed=1)
    lp = completion_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, chunk_size=5)
    ids = torch.cat([r.prompt_ids, r.completion_ids], 1)
    att = torch.cat([r.prompt_mask, r.completion_mask], 1)
    logits = model(input_ids=ids, attention_mask=att, position_ids=position_ids_from_mask(att)).logits
    P = r.prompt_ids.shape[1]
    naive = naive_sampled_token_logprobs(logits[:, P - 1 : -1], r.completion_ids) * r.completion_mask
    assert torch.allclose(lp, naive, atol=1e-5)
    assert (lp[r.completion_mask == 0] == 0).all()


def test_select_trims_padding_columns(tok, model):
    r = generate_rollouts(model, tok, ["1ab>", "3bbbbbb>"], 2, max_new_tokens=8, seed=2)
    s = r.select([0, 1])  # the short prompt's rows
    assert s.prompt_mask[:, 0].any()  # no all-padding column left
    assert s.texts == r.texts[:2]
    full = completion_logprobs(model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask)
    part = completion_logprobs(model, s.prompt_ids, s.prompt_mask, s.completion_ids, s.completion_mask)
    assert torch.allclose(full[:2, : part.shape[1]], part, atol=1e-5)


def _generate_greedy(model, tok, prompts, eos, max_new_tokens=12):
    enc = tok(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=0, eos_token_id=eos)
    return out[:, enc["input_ids"].shape[1]:]


def test_sampler_equals_generate_when_greedy_including_early_eos(tok, model):
    """The row-dropping sampler and ``model.generate`` pick the same tokens (greedy), also when
    rows end at different steps and leave the batch early."""
    prompts = ["1ab>", "22>", "3bbbbbb>"]
    plain = _generate_greedy(model, tok, prompts, EOS)
    eos = int(plain[0, 3])  # a token greedy decoding emits mid-way, declared end-of-sequence
    a = generate_rollouts(model, tok, prompts, 1, max_new_tokens=12, temperature=0, eos_token_id=eos)
    ref = _generate_greedy(model, tok, prompts, eos)
    ref_mask, ref_trunc = completion_mask_from_eos(ref, [eos])
    assert torch.equal(a.completion_mask.sum(1), ref_mask.sum(1))
    assert torch.equal(a.truncated, ref_trunc)
    for row, ref_row, n in zip(a.completion_ids, ref, ref_mask.sum(1)):
        assert row[:n].tolist() == ref_row[:n].tolist()
    assert not bool(a.truncated[0])  # the first row did stop at the declared eos
