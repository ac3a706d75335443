"""Build and pretrain the micro base model: ``python tools/pretrain_micro.py [--steps ...]``.

Trains the base policy of the ``micro`` profile from scratch by next-token SFT on *traces*
written here for the seed-0 train split of ``course_lib.tasks.micro`` (both tasks in one model), measures its held-out success with
``course_lib.evaluate``, and writes::

    data/micro/tokenizer/     tokenizer.json + tokenizer_config.json (no config.json on purpose)
    data/micro/model/         Qwen2ForCausalLM.save_pretrained (config.json + safetensors)
    data/micro/manifest.json  command, seed, wall time, versions, base success and lengths

The tokenizer and the untrained model are built here (:func:`build_micro_tokenizer`,
:func:`build_micro_model`); ``course_lib.models.load_micro`` loads the result. With no options
it rebuilds the shipped checkpoint (the recipe in ``data/micro/manifest.json``).

What is simplified, and why:

- Pretraining is plain SFT on synthetic traces for a few minutes on a CPU. The traces, not the
  model size, decide whether RL has anything to improve. They are not solutions: they make the
  base *partially* competent and fail in ways RL can reweight (an honest search whose attempts
  hit with probability ~0.4 and that gives up after 2-4 of them, bare guesses without working, a
  few arithmetic slips), and never fake a hit with made-up arithmetic (a model pretrained on faked
  hits learns to fake them, and no objective recovers from that). The 1M-parameter model learns
  the arithmetic of an attempt but hardly learns to *aim* (6-8% of its attempts hit, against 40%
  in the traces), so its countdown success rests on how many attempts it makes before giving up,
  which it copies from the traces; that is why the search tries at least twice.
- Training batches are right-padded, so position ids are the usual 0..L-1; sampling is
  left-padded with position ids built from the attention mask, which gives the same positions
  to the same tokens.

A tool that writes the repository's data/micro/, so it lives outside the package.
"""

from __future__ import annotations

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
from typing import NamedTuple

import torch

from course_lib import DATA_DIR, loading
from course_lib.__main__ import USER_ERRORS, Parser, count
from course_lib.evaluate import evaluate
from course_lib.tasks import get_task, micro
from course_lib.tasks.micro_templates import apply_op, parse_steps, run_steps

PROG = "python tools/pretrain_micro.py"

MICRO_EOS, MICRO_PAD, MICRO_UNK = "<|endoftext|>", "<|pad|>", "<unk>"
#: Multi-character strings that are single tokens of the micro tokenizer.
MICRO_WORDS = ("<answer>", "</answer>", "####")
#: Every character the micro tasks use (tests check that each task text is covered).
MICRO_CHARS = (" \n#$%&'()*+,-./0123456789:;<=>?!" + "".join(map(chr, range(65, 91)))
               + "".join(map(chr, range(97, 123))))


def build_micro_tokenizer():
    """The character-level tokenizer (a ``PreTrainedTokenizerFast``, left padding).

    Example: ``tok.convert_ids_to_tokens(tok("7>5<answer>").input_ids)`` ->
    ``['7', '>', '5', '<answer>']``.
    """
    from tokenizers import AddedToken, Tokenizer, decoders
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    vocab = {MICRO_PAD: 0, MICRO_EOS: 1, MICRO_UNK: 2}
    for ch in MICRO_CHARS:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(BPE(vocab=vocab, merges=[], unk_token=MICRO_UNK))  # no merges: characters
    tok.decoder = decoders.Fuse()  # join characters back without spaces
    tok.add_special_tokens([AddedToken(t, special=True) for t in (MICRO_PAD, MICRO_EOS, MICRO_UNK)])
    tok.add_tokens([AddedToken(t, normalized=False) for t in MICRO_WORDS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=MICRO_EOS, pad_token=MICRO_PAD,
                                   unk_token=MICRO_UNK, padding_side="left")


def build_micro_model(tokenizer, *, seed: int = 0, hidden: int = 128, layers: int = 4, heads: int = 4):
    """A randomly initialised micro ``Qwen2ForCausalLM`` (~1M parameters at the defaults)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=4 * hidden,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=256,  # prompt (< 100 chars) + 64 new tokens
        tie_word_embeddings=True, bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    loading.align_generation_ids(model, tokenizer)
    return model


#: Completion cap of the micro setting, in tokens (the end-of-text token included).
# ------------------------------------------------------------------------------------ the traces

# Trace design (see the module docstring); the micro base model's competence follows from these.
P_GUESS = 0.25  # gsm8k: share of traces that are a bare answer without working
P_GUESS_COUNTDOWN = 0.15  # countdown: share of bare guesses (a small model rarely guesses right)
P_GUESS_RIGHT = 0.3  # a bare guess is right this often
P_HIT = 0.4  # countdown: each search attempt is a solution this often
MIN_ATTEMPTS = 2  # countdown: the search gives up after MIN_ATTEMPTS..MAX_ATTEMPTS
MAX_ATTEMPTS = 4  #   attempts (uniform), or earlier when the next one would pass the length cap
P_TYPO = 0.05  # countdown: a missed attempt shows an arithmetic slip this often
P_SLIP = 0.12  # gsm8k: each step's result is wrong this often (later steps stay honest)
P_STOP = 0.1  # gsm8k: the working stops early and reports an intermediate value this often
P_VERBOSE = 0.35  # gsm8k: the working names its steps ("left 20-3=17") this often
MAX_COMPLETION_CHARS = 60  # traces stay under the 64-token completion cap of the micro profile


class Trace(NamedTuple):
    """One pretraining completion and what its final answer is meant to be.

    Attributes:
        text: the completion, without the end-of-text token.
        correct: the final answer is right (the real verifier agrees; tests check it).
        kind: ``"search"`` / ``"work"`` (working shown) or ``"guess"`` (bare answer).
    """

    text: str
    correct: bool
    kind: str


def countdown_trace(example: dict, rng: random.Random) -> Trace:
    """A pretraining completion for a countdown-micro problem (see the module docstring).

    Example:
        >>> t = countdown_trace({"nums": [3, 7, 5], "target": 26}, random.Random(0))
        >>> t.text.endswith("</answer>")
        True
    """
    nums, target = tuple(example["nums"]), example["target"]
    exprs = micro.countdown_expressions(nums)
    hits = [e for e in exprs if e[2] == target]
    misses = [e for e in exprs if e[2] != target]
    if not hits:
        raise ValueError(f"{list(nums)} cannot reach {target} in two whole-number steps")

    def answer(expr: str) -> str:
        return f"<answer>{expr}</answer>"

    if rng.random() < P_GUESS_COUNTDOWN:
        pool = hits if (rng.random() < P_GUESS_RIGHT or not misses) else misses
        _, expr, value = rng.choice(pool)
        return Trace(answer(expr), value == target, "guess")

    budget = rng.randint(MIN_ATTEMPTS, MAX_ATTEMPTS)
    attempts: list[str] = []
    last = None
    for _ in range(budget):
        hit = rng.random() < P_HIT or not misses
        steps, expr, value = rng.choice(hits if hit else misses)
        if not hit and rng.random() < P_TYPO:
            steps = _typo(steps, target, rng)
        candidate = ";".join([*attempts, steps]) + answer(expr)
        if attempts and len(candidate) > MAX_COMPLETION_CHARS + 16:  # ~16 chars = 2 tag tokens
            break
        attempts.append(steps)
        last = (expr, value)
        if hit:
            break
    expr, value = last
    # a search that did not hit gives up and answers with its last (wrong) attempt
    return Trace(";".join(attempts) + answer(expr), value == target, "search")


def _typo(steps: str, target: int, rng: random.Random) -> str:
    """Slip in the first step; the second step is then computed honestly from the slip.
    The shown result never equals the target, so a slip never fakes a hit."""
    first, second = steps.split(",")
    lhs, r = first.split("=")
    wrong = int(r) + rng.choice([-2, -1, 1, 2])
    if wrong < 0:
        return steps
    s_lhs = second.split("=")[0]
    for op in "+-*/":
        if op in s_lhs:
            a, b = s_lhs.split(op)
            a, b = (wrong, int(b)) if a == r else (int(a), wrong)
            s = apply_op(a, op, b)
            if s is None or s == target:
                return steps
            return f"{lhs}={wrong},{a}{op}{b}={s}"
    return steps


def gsm8k_trace(example: dict, rng: random.Random) -> Trace:
    """A pretraining completion for a gsm8k-micro problem: working then ``#### N``.

    Step results are wrong with probability P_SLIP (later steps are computed honestly from the
    wrong value), the working stops early with probability P_STOP, and P_GUESS of the traces
    are a bare ``#### N``.

    Example:
        >>> ex = micro.gsm8k_examples("test", n=1)[0]
        >>> "#### " in gsm8k_trace(ex, random.Random(0)).text
        True
    """
    plan = example.get("steps") or parse_steps(example["answer"])
    solved = run_steps(plan)
    gold = solved[-1][4]
    if rng.random() < P_GUESS:
        if rng.random() < P_GUESS_RIGHT:
            guess = gold
        else:
            guess = rng.choice([r for *_, r in solved[:-1]] + [rng.randint(1, max(2 * gold, 10))])
        return Trace(f"#### {guess}", guess == gold, "guess")
    verbose = rng.random() < P_VERBOSE
    n_steps = len(plan)
    if n_steps > 1 and rng.random() < P_STOP:
        n_steps = rng.randint(1, n_steps - 1)

    def slip(r: int) -> int:
        return max(0, r + rng.choice([-3, -2, -1, 1, 2, 3, 10])) if rng.random() < P_SLIP else r

    shown = run_steps(plan[:n_steps], slip)
    while shown is None:  # a slip made a later division inexact: slip again
        shown = run_steps(plan[:n_steps], slip)
    parts = [f"{label} {x}{op}{y}={r}" if verbose else f"{x}{op}{y}={r}" for label, x, op, y, r in shown]
    final = shown[-1][4]
    return Trace(",".join(parts) + f"\n#### {final}", final == gold, "work")


# --------------------------------------------------------------------------------- pretraining

MAX_NEW_TOKENS = 64
TASKS = ("countdown-micro", "gsm8k-micro")
_TRACE = {"countdown-micro": countdown_trace, "gsm8k-micro": gsm8k_trace}


def make_batch(tokenizer, task: str, pool: list[dict], batch_size: int, rng: random.Random):
    """A right-padded SFT batch of fresh traces; loss only on completion tokens and the eos.

    Returns:
        ``input_ids, attention_mask, labels``, each ``(batch, seq)``; ``labels`` is -100 on
        prompt and padding positions.
    """
    prompt = get_task(task).prompt
    rows = []
    for _ in range(batch_size):
        ex = pool[rng.randrange(len(pool))]
        p = tokenizer(prompt(ex)).input_ids
        c = tokenizer(_TRACE[task](ex, rng).text).input_ids + [tokenizer.eos_token_id]
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


def pretrain(*, steps: int = 2600, seconds: float | None = None, seed: int = 0, batch_size: int = 64,
             lr: float = 3e-3, warmup: int = 50, log_every: int = 100, countdown_share: float = 0.85,
             model=None, tokenizer=None):
    """Next-token SFT of the micro model on fresh traces of both micro tasks.

    Each step is one batch of one task; ``countdown_share`` of the steps are countdown-micro,
    spread evenly. Countdown needs more steps: it asks the model to search, not just to follow a
    template. The defaults are the recipe of the shipped checkpoint (``data/micro/manifest.json``).

    AdamW (betas 0.9/0.95, weight decay 0.01), linear warm-up then cosine decay to 10% of
    ``lr``, gradient clipping at 1.0. Deterministic given ``seed`` on CPU when ``seconds`` is
    None (a time limit makes the number of steps depend on the machine).

    Returns:
        ``(model, tokenizer, history)``, history a list of ``{"step", "loss"}`` dicts.
    """
    tokenizer = build_micro_tokenizer() if tokenizer is None else tokenizer
    model = build_micro_model(tokenizer, seed=seed) if model is None else model
    rng = random.Random(seed)
    pools = {t: get_task(t).load("train", seed=seed) for t in TASKS}
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95))

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


#: pretrain()'s defaults: the recipe of the shipped checkpoint and the defaults of this command.
RECIPE = {name: p.default for name, p in inspect.signature(pretrain).parameters.items() if p.default is not None}


def evaluate_micro(model, tokenizer, *, samples: int = 4, seed: int = 0, n: int | None = None) -> dict:
    """Held-out success of the micro model on each micro task: ``samples`` completions per test
    problem at temperature 1.0, and one greedy completion (``n``: only the first n problems).

    Returns:
        ``{task: {"success_sampled", "success_greedy", "samples_per_problem", "problems",
        "mean_len", "mean_len_correct", "mean_len_incorrect", "truncated"}}`` (tokens, eos included).
    """
    result = {}
    for name in TASKS:
        task = get_task(name)
        examples = task.load("test", n=n)
        r = evaluate(model, tokenizer, task, examples, samples=samples, greedy=True,
                     max_new_tokens=MAX_NEW_TOKENS, temperature=1.0, batch_size=256, seed=seed)
        rnd = lambda v, d=4: None if v is None else round(v, d)  # noqa: E731
        result[name] = {
            "success_sampled": rnd(r["accuracy"]), "success_greedy": rnd(r["accuracy_greedy"]),
            "samples_per_problem": samples, "problems": len(examples), "mean_len": rnd(r["len_mean"], 2),
            "mean_len_correct": rnd(r["len_correct"], 2), "mean_len_incorrect": rnd(r["len_incorrect"], 2),
            "truncated": rnd(r["truncated"]),
        }
    return result


def save(model, tokenizer, out: Path) -> None:
    """Write ``model/`` and ``tokenizer/`` under ``out``, replacing each file atomically.

    Everything is first written to a scratch folder next to ``out`` and then moved into place
    file by file with ``os.replace``: a process that has the old ``model.safetensors``
    memory-mapped keeps reading the old file instead of crashing with a bus error.
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


def write_manifest(out: Path, command: str, recipe: dict, model, history, train_s: float, evaluation,
                   wall_s: float) -> dict:
    """``out/manifest.json``: how the model was built and what it scores (written atomically)."""
    manifest = {
        "command": command, **{k: recipe[k] for k in ("seed", "batch_size", "lr", "countdown_share")},
        "steps": len(history),
        "final_loss": round(sum(h["loss"] for h in history[-50:]) / len(history[-50:]), 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_wall_time_s": round(train_s, 1), "torch": torch.__version__,
        "transformers": __import__("transformers").__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "max_new_tokens": MAX_NEW_TOKENS,
        "trace_settings": {k: globals()[k] for k in ("P_GUESS", "P_GUESS_COUNTDOWN", "P_GUESS_RIGHT",
                                                          "P_HIT", "MIN_ATTEMPTS", "MAX_ATTEMPTS", "P_TYPO",
                                                          "P_SLIP", "P_STOP", "P_VERBOSE")},
    }
    if evaluation is not None:
        manifest["eval"] = evaluation
    manifest["wall_time_s"] = round(wall_s, 1)
    tmp = Path(out) / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, Path(out) / "manifest.json")
    return manifest


# ------------------------------------------------------------------------------ command line


def _command(argv: list[str]) -> str:
    """The command that rebuilds the micro model, without ``--out`` (where it went is no part of
    the recipe)."""
    argv = list(argv)
    i = next((i for i, a in enumerate(argv) if a == "--out" or a.startswith("--out=")), None)
    if i is not None:
        del argv[i : i + (2 if argv[i] == "--out" else 1)]
    return " ".join([PROG, *argv])


def _parser() -> Parser:
    ap = Parser(prog=PROG, description="Pretrain the micro base model on traces of the micro tasks, measure it, "
                "and write tokenizer/, model/ and manifest.json.")
    ap.add_argument("--steps", type=count, default=RECIPE["steps"], help="optimizer steps (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=None, help="also stop after this many seconds")
    ap.add_argument("--seed", type=int, default=RECIPE["seed"])
    ap.add_argument("--batch-size", type=count, default=RECIPE["batch_size"])
    ap.add_argument("--lr", type=float, default=RECIPE["lr"])
    ap.add_argument("--countdown-share", type=float, default=RECIPE["countdown_share"],
                    help="share of steps spent on countdown-micro (the rest on gsm8k-micro)")
    ap.add_argument("--eval-samples", type=int, default=4, help="sampled completions per test problem (0: none)")
    ap.add_argument("--threads", type=count, default=None, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=DATA_DIR / "micro", help="output folder")
    return ap


def pretrain_main(argv: list[str]) -> int:
    """Pretrain, save, measure and write the manifest; nothing is written before training ends."""
    ap = _parser()
    args = ap.parse_args(argv)
    if not 0.0 <= args.countdown_share <= 1.0:
        ap.error(f"argument --countdown-share: must be in [0, 1], got {args.countdown_share}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    start = time.time()
    recipe = {"steps": args.steps, "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr,
              "countdown_share": args.countdown_share}
    model, tok, history = pretrain(seconds=args.seconds, **recipe)
    train_s = time.time() - start
    save(model, tok, args.out)
    ev = evaluate_micro(model, tok, samples=args.eval_samples, seed=args.seed) if args.eval_samples > 0 else None
    m = write_manifest(args.out, _command(argv), recipe, model, history, train_s, ev, time.time() - start)
    print(json.dumps(m, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line: a bad option or value, or an unusable output folder, prints one line
    naming it and returns 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return pretrain_main(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a bad option, already reported in one line (2)
        return int(exit_.code or 0)
    except USER_ERRORS as err:
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
