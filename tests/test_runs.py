"""The run record (course_lib.runs): resume rules, a fresh start that never replaces a run,
checkpoints that hold only tensors and plain data, refuse crafted pickles and fall back to the
previous one when the newest is damaged. Runs use the tiny model and fake task of test_trainer."""

import json
import os

import pytest
import torch
from test_trainer import rows, run

from course_lib.runs import PREVIOUS, RunDirError, load_checkpoint, save_checkpoint


def test_resume_refuses_other_settings_and_lists_them(tmp_path):
    run(steps=2, run_dir=tmp_path)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(RunDirError, match=r"seed 0 \(saved\) vs 3 \(now\).*learning_rate"):
        run(steps=4, run_dir=tmp_path, resume=True, seed=3, learning_rate=5e-4)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    assert json.loads((tmp_path / "config.json").read_text())["seed"] == 0


def test_a_fresh_start_never_replaces_a_run_unless_asked(tmp_path):
    run(steps=2, run_dir=tmp_path)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(RunDirError, match="--resume.*--overwrite"):
        run(steps=2, run_dir=tmp_path)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    run(steps=1, run_dir=tmp_path, overwrite=True)
    assert len(rows(tmp_path / "metrics.jsonl")) == 1 and not (tmp_path / PREVIOUS).exists()


def test_checkpoints_hold_only_tensors_and_plain_data(tmp_path):
    run(steps=1, run_dir=tmp_path)
    outer = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # refuses any other object
    assert set(outer) == {"sha256", "payload"}
    assert set(load_checkpoint(tmp_path)) >= {"config", "progress", "trainable", "optimizer"}


def test_a_crafted_checkpoint_cannot_run_code(tmp_path):
    """A pickle that would run a command on load is refused (weights_only) and never runs."""
    run(steps=1, run_dir=tmp_path)
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"sha256": "x", "payload": Evil()}, tmp_path / "checkpoint.pt")
    (tmp_path / PREVIOUS).unlink(missing_ok=True)
    with pytest.raises(RunDirError, match="no usable checkpoint"):
        load_checkpoint(tmp_path)
    assert not marker.exists()


def _flip_a_bit(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the payload: the file still unpickles
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["bit flip", "truncated", "non-finite"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, capsys):
    run(steps=2, run_dir=tmp_path, checkpoint_every=1)  # both checkpoints are at step 2
    latest = tmp_path / "checkpoint.pt"
    if damage == "bit flip":
        _flip_a_bit(latest)
    elif damage == "truncated":
        latest.write_bytes(latest.read_bytes()[:1000])
    else:
        state = load_checkpoint(tmp_path)
        next(iter(state["trainable"].values())).fill_(float("nan"))
        save_checkpoint(tmp_path, state)  # a well-formed file with NaN weights
    capsys.readouterr()
    state = load_checkpoint(tmp_path)
    err = capsys.readouterr().err
    assert err.startswith("warning: checkpoint.pt") and len(err.splitlines()) == 1, err
    assert state["progress"]["step"] == 2  # the previous checkpoint, taken at step 2
    assert all(bool(torch.isfinite(t).all()) for t in state["trainable"].values())
