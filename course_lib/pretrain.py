"""The micro base model: a character tokenizer, a ~1M-parameter Qwen2, and its pretraining.

``python -m course_lib pretrain-micro`` trains the base policy of the ``micro`` profile from
scratch by next-token SFT on the traces of ``course_lib.tasks.micro`` (both micro tasks in one
model), measures its held-out success, and writes::

    data/micro/tokenizer/   tokenizer.json + tokenizer_config.json (no config.json on purpose:
                            AutoTokenizer would then load a Qwen2Tokenizer that drops spaces)
    data/micro/model/       Qwen2ForCausalLM.save_pretrained (config.json + safetensors)
    data/micro/manifest.json  command, seed, wall time, versions, base success and lengths

``load_micro()`` loads that folder for batched, left-padded generation.

What is simplified, and why:

- The tokenizer is one token per character, plus single tokens for ``<answer>``,
  ``</answer>`` and ``####`` so completions stay under 64 tokens. Real models use BPE.
- Same architecture family as Qwen2.5 (``Qwen2ForCausalLM``) so every code path of the course
  (generation, log-probabilities, the trainer) runs unchanged, but 4 layers of width 128.
- Pretraining is plain SFT on synthetic traces for a few minutes on a CPU. The traces, not the
  model size, decide whether RL has anything to improve (see ``course_lib.tasks.micro``).
- Training batches are right-padded, so position ids are the usual 0..L-1; evaluation is
  left-padded and ``generate`` builds position ids from the attention mask, which gives the
  same positions to the same tokens.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

from course_lib import DATA_DIR
from course_lib.tasks import micro

__all__ = [
    "MAX_NEW_TOKENS",
    "build_model",
    "build_tokenizer",
    "evaluate_micro",
    "load_micro",
    "main",
    "pretrain",
]

#: Completion cap of the micro setting, in tokens (the end-of-text token included).
MAX_NEW_TOKENS = 64
EOS, PAD, UNK = "<|endoftext|>", "<|pad|>", "<unk>"
#: Multi-character strings that are single tokens.
WORD_TOKENS = ("<answer>", "</answer>", "####")
# Every character the micro tasks use (tests check that each task text is covered).
CHARS = " \n#$%&'()*+,-./0123456789:;<=>?!" + "".join(map(chr, range(65, 91))) + "".join(map(chr, range(97, 123)))
TASKS = ("countdown-micro", "gsm8k-micro")


# ------------------------------------------------------------------------------------ building


def build_tokenizer():
    """The character-level tokenizer (a ``PreTrainedTokenizerFast``, left padding).

    Example:
        >>> tok = build_tokenizer()
        >>> tok.convert_ids_to_tokens(tok("7>5<answer>").input_ids)
        ['7', '>', '5', '<answer>']
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {PAD: 0, EOS: 1, UNK: 2}
    for ch in CHARS:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))  # no merges: characters
    tok.decoder = decoders.Fuse()  # join characters back without spaces
    tok.add_special_tokens([AddedToken(t, special=True) for t in (PAD, EOS, UNK)])
    tok.add_tokens([AddedToken(t, normalized=False) for t in WORD_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=PAD, unk_token=UNK, padding_side="left"
    )


def build_model(tokenizer, *, seed: int = 0, hidden: int = 128, layers: int = 4, heads: int = 4):
    """A randomly initialised micro ``Qwen2ForCausalLM`` (~1M parameters at the defaults).

    Example:
        >>> m = build_model(build_tokenizer())
        >>> 0.8e6 < sum(p.numel() for p in m.parameters()) < 1.2e6
        True
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=256,  # prompt (< 100 chars) + 64 new tokens
        tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    _set_generation_ids(model, tokenizer)
    return model


def _set_generation_ids(model, tokenizer) -> None:
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.eos_token_id


def load_micro(path: str | Path | None = None, *, device: str | torch.device | None = None):
    """Load the micro base model and its tokenizer, ready for batched left-padded ``generate``.

    Args:
        path: a folder written by ``pretrain-micro`` (``tokenizer/`` and ``model/`` inside);
            default ``DATA_DIR / "micro"``.
        device: where to put the model (default CPU).

    Returns:
        ``(Qwen2ForCausalLM in eval mode, PreTrainedTokenizerFast)``; pad and eos ids are set
        on the tokenizer, the model config and ``model.generation_config``.

    Example:
        >>> model, tok = load_micro()
        >>> tok.padding_side, tok.decode(tok("3 7 5>26:").input_ids)
        ('left', '3 7 5>26:')
    """
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

    path = Path(DATA_DIR / "micro" if path is None else path)
    if not (path / "model" / "config.json").exists() or not (path / "tokenizer" / "tokenizer.json").exists():
        raise FileNotFoundError(
            f"no micro model in {path} (expected model/config.json and tokenizer/tokenizer.json); "
            "build it with `python -m course_lib pretrain-micro --out <folder>`"
        )
    tokenizer = PreTrainedTokenizerFast.from_pretrained(path / "tokenizer")
    tokenizer.padding_side = "left"
    model = Qwen2ForCausalLM.from_pretrained(path / "model")
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    _set_generation_ids(model, tokenizer)
    if device is not None:
        model.to(device)
    return model.eval(), tokenizer


# ------------------------------------------------------------------------------------ the data


def _examples(task: str, split: str, n: int | None = None, seed: int = 0) -> list[dict]:
    if task == "countdown-micro":
        return micro.countdown_examples(split, n, seed)
    return micro.gsm8k_examples(split, n, seed)


def _prompt(task: str, example: dict) -> str:
    return micro.countdown_prompt(example) if task == "countdown-micro" else micro.gsm8k_prompt(example)


def _trace(task: str, example: dict, rng: random.Random) -> micro.Trace:
    if task == "countdown-micro":
        return micro.countdown_trace(example, rng)
    return micro.gsm8k_trace(example, rng)


def _score(task: str, completion: str, example: dict):
    if task == "countdown-micro":
        from course_lib.tasks import countdown

        return countdown.score(completion, example["nums"], example["target"])
    from course_lib.tasks import gsm8k

    return gsm8k.score(completion, example["answer"])


def make_batch(tokenizer, task: str, pool: list[dict], batch_size: int, rng: random.Random):
    """A right-padded SFT batch of fresh traces; loss only on completion tokens and the eos.

    Returns:
        ``input_ids, attention_mask, labels``, each ``(batch, seq)``; ``labels`` is -100 on
        prompt and padding positions.
    """
    rows = []
    for _ in range(batch_size):
        ex = pool[rng.randrange(len(pool))]
        p = tokenizer(_prompt(task, ex)).input_ids
        c = tokenizer(_trace(task, ex, rng).text).input_ids + [tokenizer.eos_token_id]
        rows.append((p, c))
    width = max(len(p) + len(c) for p, c in rows)
    ids = torch.full((batch_size, width), tokenizer.pad_token_id)
    mask = torch.zeros((batch_size, width), dtype=torch.long)
    labels = torch.full((batch_size, width), -100)
    for i, (p, c) in enumerate(rows):
        n = len(p) + len(c)
        ids[i, :n] = torch.tensor(p + c)
        mask[i, :n] = 1
        labels[i, len(p) : n] = torch.tensor(c)
    return ids, mask, labels


# ------------------------------------------------------------------------------------ training


def pretrain(
    *,
    steps: int = 2600,
    seconds: float | None = None,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 3e-3,
    warmup: int = 50,
    log_every: int = 100,
    countdown_share: float = 0.85,
    model=None,
    tokenizer=None,
):
    """Next-token SFT of the micro model on fresh traces of both micro tasks.

    Each step is one batch of one task; ``countdown_share`` of the steps are countdown-micro,
    spread evenly (0.5 alternates, starting with countdown). Countdown needs more steps: it
    asks the model to search, not just to follow a template. The defaults are the recipe of
    the shipped checkpoint (``data/micro/manifest.json``).

    AdamW (betas 0.9/0.95, weight decay 0.01), linear warm-up then cosine decay to 10% of
    ``lr``, gradient clipping at 1.0. Deterministic given ``seed`` on CPU when ``seconds`` is
    None (a time limit makes the number of steps depend on the machine).

    Returns:
        ``(model, tokenizer, history)``, history a list of ``{"step", "loss"}`` dicts.
    """
    tokenizer = build_tokenizer() if tokenizer is None else tokenizer
    model = build_model(tokenizer, seed=seed) if model is None else model
    rng = random.Random(seed)
    pools = {t: _examples(t, "train", seed=seed) for t in TASKS}
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        frac = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    model.train()
    history, start, running = [], time.time(), []
    for step in range(steps):
        if seconds is not None and time.time() - start > seconds:
            break
        due = math.ceil(round((step + 1) * countdown_share, 9)) > math.ceil(round(step * countdown_share, 9))
        task = TASKS[0] if due else TASKS[1]
        ids, mask, labels = make_batch(tokenizer, task, pools[task], batch_size, rng)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        history.append({"step": step, "loss": loss.item()})
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:5d}  loss {sum(running) / len(running):.4f}  "
                  f"lr {lr_at(step):.2e}  {time.time() - start:6.1f}s", flush=True)
            running = []
    model.eval()
    return model, tokenizer, history


#: pretrain()'s defaults: the recipe of the shipped checkpoint (data/micro/manifest.json), and
#: the defaults of ``pretrain-micro``.
RECIPE = {name: p.default for name, p in inspect.signature(pretrain).parameters.items() if p.default is not None}


# ---------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], *, greedy: bool = False, batch_size: int = 256):
    """Batched left-padded generation; returns ``(texts, lengths)`` per prompt.

    ``lengths`` counts generated tokens up to and including the eos (``MAX_NEW_TOKENS`` when the
    cap cut the completion); ``texts`` are decoded without special tokens.
    """
    texts, lengths = [], []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True)
        kwargs = {"do_sample": False} if greedy else {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0}
        out = model.generate(**enc, max_new_tokens=MAX_NEW_TOKENS, **kwargs)
        new = out[:, enc.input_ids.shape[1] :]
        for row in new.tolist():
            n = row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
            lengths.append(n)
            texts.append(tokenizer.decode(row[:n], skip_special_tokens=True))
    return texts, lengths


def evaluate_micro(model, tokenizer, *, samples: int = 4, seed: int = 0, n: int | None = None) -> dict:
    """Held-out success of the micro model on each micro task.

    Args:
        samples: completions sampled per test problem at temperature 1.0 (200 problems, so
            ``samples=4`` gives 800 per task); greedy decoding is measured once per problem.
        n: use only the first ``n`` test problems.

    Returns:
        ``{task: {"success_sampled", "success_greedy", "mean_len", "mean_len_correct",
        "mean_len_incorrect", "truncated"}}``; lengths in tokens (eos included).
    """
    model.eval()
    result = {}
    for task in TASKS:
        examples = _examples(task, "test", n)
        prompts = [_prompt(task, ex) for ex in examples]
        torch.manual_seed(seed)
        texts, lengths = generate(model, tokenizer, prompts * samples)
        correct = [_score(task, t, ex).correct for t, ex in zip(texts, examples * samples)]
        gtexts, _ = generate(model, tokenizer, prompts, greedy=True)
        gcorrect = [_score(task, t, ex).correct for t, ex in zip(gtexts, examples)]
        ok = [n for n, c in zip(lengths, correct) if c]
        bad = [n for n, c in zip(lengths, correct) if not c]
        result[task] = {
            "success_sampled": round(sum(correct) / len(correct), 4),
            "success_greedy": round(sum(gcorrect) / len(gcorrect), 4),
            "samples_per_problem": samples,
            "problems": len(examples),
            "mean_len": round(sum(lengths) / len(lengths), 2),
            "mean_len_correct": round(sum(ok) / len(ok), 2) if ok else None,
            "mean_len_incorrect": round(sum(bad) / len(bad), 2) if bad else None,
            "truncated": round(sum(n >= MAX_NEW_TOKENS for n in lengths) / len(lengths), 4),
        }
    return result


# ------------------------------------------------------------------------------------- the CLI


def save(model, tokenizer, out: Path) -> None:
    """Write ``model/`` and ``tokenizer/`` under ``out``, replacing each file atomically.

    Everything is first written to a scratch folder next to ``out`` and then moved into place
    file by file with ``os.replace``. A process that has the old ``model.safetensors``
    memory-mapped keeps reading the old file (a new inode), instead of crashing with a bus
    error as it would if the file were truncated and rewritten in place. Files of an older
    save that the new one does not write are left alone.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".save-") as scratch:
        scratch = Path(scratch)
        model.save_pretrained(scratch / "model")
        tokenizer.save_pretrained(scratch / "tokenizer")
        for sub in ("model", "tokenizer"):
            (out / sub).mkdir(exist_ok=True)
            for f in (scratch / sub).iterdir():
                os.replace(f, out / sub / f.name)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _command(argv: list[str]) -> str:
    """The command line that rebuilds the model, without ``--out`` (where it went is no part of
    the recipe)."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--out":
            del argv[i : i + 2]
            break
        if arg.startswith("--out="):
            del argv[i]
            break
    return " ".join(["python -m course_lib pretrain-micro", *argv])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib pretrain-micro",
        description="Pretrain the micro base model on traces of the micro tasks, measure its "
        "held-out success, and write tokenizer/, model/ and manifest.json.",
    )
    parser.add_argument("--steps", type=int, default=RECIPE["steps"], help="optimizer steps (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="also stop after this many seconds (makes the run machine-dependent)")
    parser.add_argument("--seed", type=int, default=RECIPE["seed"])
    parser.add_argument("--batch-size", type=int, default=RECIPE["batch_size"])
    parser.add_argument("--lr", type=float, default=RECIPE["lr"])
    parser.add_argument("--countdown-share", type=float, default=RECIPE["countdown_share"],
                        help="share of steps spent on countdown-micro (the rest on gsm8k-micro)")
    parser.add_argument("--eval-samples", type=int, default=4,
                        help="sampled completions per test problem (0 skips evaluation)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 is faster on a busy machine)")
    parser.add_argument("--out", type=Path, default=DATA_DIR / "micro", help="output folder")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be at least 1")
    if not 0.0 <= args.countdown_share <= 1.0:
        parser.error("--countdown-share must be between 0 and 1")

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    start = time.time()
    model, tokenizer, history = pretrain(
        steps=args.steps, seconds=args.seconds, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
        countdown_share=args.countdown_share,
    )
    train_s = time.time() - start
    save(model, tokenizer, args.out)
    manifest = {
        "command": _command(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed,
        "steps": len(history),
        "batch_size": args.batch_size,
        "lr": args.lr,
        "countdown_share": args.countdown_share,
        "final_loss": round(sum(h["loss"] for h in history[-50:]) / len(history[-50:]), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_wall_time_s": round(train_s, 1),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "max_new_tokens": MAX_NEW_TOKENS,
        "trace_settings": {k: getattr(micro, k) for k in ("P_GUESS", "P_GUESS_COUNTDOWN", "P_GUESS_RIGHT", "P_HIT",
                                                          "MIN_ATTEMPTS", "MAX_ATTEMPTS",
                                                          "P_TYPO", "P_SLIP", "P_STOP", "P_VERBOSE")},
    }
    if args.eval_samples > 0:
        manifest["eval"] = evaluate_micro(model, tokenizer, samples=args.eval_samples, seed=args.seed)
    manifest["wall_time_s"] = round(time.time() - start, 1)
    _write_text_atomic(args.out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
