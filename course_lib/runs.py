"""The run record: run directories, checksummed checkpoints, the resume rules and Ctrl-C.

A run directory holds ``config.json``, ``metrics.jsonl`` (one row per step), ``eval.jsonl``
(held-out evaluations), ``checkpoint.pt`` and ``checkpoint.prev.pt`` (the one before). Resuming
refuses other settings (only ``steps`` may grow); a fresh start never replaces a run unless
asked; a checkpoint is written atomically with its sha256 and read with ``weights_only=True``,
falling back to the previous one when the newest is damaged. Only a state at a step boundary
is ever saved, so a run killed at any point resumes to the result it would have had.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

CHECKPOINT, PREVIOUS = "checkpoint.pt", "checkpoint.prev.pt"
RECORD = ("config.json", "metrics.jsonl", "eval.jsonl", CHECKPOINT, PREVIOUS)


class RunDirError(ValueError):
    """A run directory cannot be used as asked (the message names the fix)."""


@dataclass
class Progress:
    """The loop's mutable state; with the weights and optimizer it is the checkpoint."""

    step: int = 0
    position: int = 0                # training examples drawn so far
    history: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    skipped: int = 0                 # updates skipped as non-finite
    streak: int = 0                  # ... of them in a row
    dirty: bool = False              # True while a step's update is applied but not yet recorded


def open_run(run_dir, cfg, *, resume: bool | str, overwrite: bool, model, optimizer, scaler) -> tuple[Path | None, Progress]:
    """The run directory (None: no record) and the progress to start from: restored into
    ``model``, ``optimizer`` and ``scaler`` on resume (``resume="auto"``: if a run is there)."""
    if run_dir is None:
        return None, Progress()
    out = Path(run_dir)
    if resume == "auto":  # notebooks: resume the run that is there, else start one
        resume = any((out / f).exists() for f in RECORD) and not overwrite
    saved = open_run_dir(out, cfg, resume=resume, overwrite=overwrite)
    run = _restore(saved, model, optimizer, scaler) if saved else Progress()
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    for name, rows in (("metrics.jsonl", run.history), ("eval.jsonl", run.evals)):  # rows past the checkpoint
        (out / name).write_text("".join(json.dumps(_clean(r)) + "\n" for r in rows))  # belong to a redone step
    return out, run


def open_run_dir(out: Path, cfg, *, resume: bool, overwrite: bool) -> dict | None:
    """Make ``out`` ready for the run ``cfg`` (a TrainConfig): the checkpoint to resume from, or
    None for a fresh start.

    Refuses (RunDirError, with the fix in the message): a path that is a file; resuming where
    there is no run, or a run with other settings (only ``steps`` may differ); starting fresh
    over an existing run without ``overwrite``; a directory that cannot be written.
    """
    if out.exists() and not out.is_dir():
        raise RunDirError(f"run directory {out} is a file, not a directory: choose another --run-dir")
    existing = [f for f in RECORD if (out / f).exists()]
    if resume:
        if not existing:
            raise RunDirError(f"nothing to resume in {out}: no run there; start it without --resume")
        state = load_checkpoint(out)
        differ = {k: (v, asdict(cfg)[k]) for k, v in state["config"].items() if k != "steps" and asdict(cfg).get(k) != v}
        if cfg.steps < state["progress"]["step"]:
            raise RunDirError(f"{out} is already at step {state['progress']['step']}: resume with --steps >= "
                              "that, or choose another --run-dir")
        if differ:
            listed = ", ".join(f"{k} {a!r} (saved) vs {b!r} (now)" for k, (a, b) in differ.items())
            raise RunDirError(f"{out} holds a run with other settings: {listed}; resume with the saved "
                              "settings, or choose another --run-dir, or pass --overwrite to start over")
        return state
    if existing and not overwrite:
        raise RunDirError(f"{out} already holds a run ({', '.join(existing)}): pass --resume to continue "
                          "it, --overwrite to replace it, or choose another --run-dir")
    try:
        out.mkdir(parents=True, exist_ok=True)
        for f in existing:
            (out / f).unlink()
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise RunDirError(f"cannot write to run directory {out} ({err.strerror or err}): choose a "
                          "writable --run-dir") from err
    return None


def save_state(out: Path, cfg, run: Progress, model, optimizer, scaler) -> None:
    """Checkpoint the run at a step boundary: tensors and plain data only."""
    save_checkpoint(out, {
        "format": 2, "config": asdict(cfg), "progress": asdict(run),
        "trainable": {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "rng": torch.get_rng_state(),
    })


def save_checkpoint(out: Path, state: dict) -> None:
    """Write ``checkpoint.pt`` atomically, with the sha256 of its contents; the checkpoint it
    replaces becomes ``checkpoint.prev.pt``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    tmp = out / (CHECKPOINT + ".tmp")
    torch.save({"sha256": hashlib.sha256(data).hexdigest(),
                "payload": torch.frombuffer(bytearray(data), dtype=torch.uint8)}, tmp)
    if (out / CHECKPOINT).exists():
        os.replace(out / CHECKPOINT, out / PREVIOUS)
    os.replace(tmp, out / CHECKPOINT)  # a kill between the two replaces leaves PREVIOUS usable


def load_checkpoint(out: Path) -> dict:
    """The newest usable checkpoint in ``out``: ``checkpoint.pt``, else (with a one-line notice)
    ``checkpoint.prev.pt``. Usable = loads with ``weights_only=True``, its sha256 matches and
    every tensor is finite."""
    problems = []
    for name in (CHECKPOINT, PREVIOUS):
        if not (out / name).exists():
            continue
        try:
            outer = torch.load(out / name, map_location="cpu", weights_only=True)
            data = outer["payload"].numpy().tobytes()
            if hashlib.sha256(data).hexdigest() != outer["sha256"]:
                raise ValueError("checksum mismatch: the file is corrupt")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            if state.get("format") != 2:
                raise ValueError("not a course_lib checkpoint (format 2)")
            if not all(bool(torch.isfinite(t).all()) for t in _tensors(state) if t.is_floating_point()):
                raise ValueError("it holds non-finite numbers")
        except Exception as err:  # unreadable for any reason: try the previous one
            problems.append(f"{name}: {str(err).splitlines()[0][:160] if str(err) else type(err).__name__}")
            continue
        if problems:
            print(f"warning: {problems[0]}; using {name} (step {state['progress']['step']})", file=sys.stderr)
        return state
    raise RunDirError(f"no usable checkpoint in {out} ({'; '.join(problems) or 'none written yet'}): "
                      "start the run again with --overwrite")


def load_weights(model, trainable: dict) -> None:
    """Copy a checkpoint's trainable tensors into ``model`` (in place; names must match)."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(params) != set(trainable):
        raise RunDirError("the checkpoint's trainable parameters do not match this model: resume with "
                          "the same profile, or choose another --run-dir")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(trainable[n].to(p.device, p.dtype))


def _restore(state: dict, model, optimizer, scaler) -> Progress:
    load_weights(model, state["trainable"])
    optimizer.load_state_dict(state["optimizer"])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"])
    return Progress(**state["progress"])


def append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(_clean(row)) + "\n")


@contextlib.contextmanager
def interrupts():
    """First Ctrl-C: finish the current step, then stop (checkpointed). Second Ctrl-C: stop now
    (KeyboardInterrupt; that step is discarded). Plain KeyboardInterrupt outside the main thread."""
    flag = SimpleNamespace(requested=False)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True
        print("\nCtrl-C: finishing this step, then saving a checkpoint (Ctrl-C again: stop now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def say_interrupted(run: Progress, out: Path | None) -> None:
    if run.dirty:
        where = f"step {run.step + 1} was discarded; {out} keeps its last checkpoint" if out else "nothing saved"
    else:
        where = f"checkpoint saved in {out}: resume with --resume" if out else "no run_dir: nothing saved"
    print(f"interrupted after step {run.step}; {where}", file=sys.stderr)


def _tensors(obj):
    if torch.is_tensor(obj):
        yield obj
    elif isinstance(obj, (dict, list, tuple)):
        for v in obj.values() if isinstance(obj, dict) else obj:
            yield from _tensors(v)


def _clean(d: dict) -> dict:
    """JSON-safe: NaN/inf -> None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
