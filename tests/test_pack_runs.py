"""tools/pack_runs.py: a reproduction's finished run records, packed without checkpoints."""

import importlib.util
import json
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("pack_runs", ROOT / "tools" / "pack_runs.py")
pack_runs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pack_runs)


def _reproduction(out: Path) -> None:
    (out / "base").mkdir(parents=True)
    (out / "base" / "t.json").write_text("{}")
    (out / "base" / "step0").mkdir()
    (out / "base" / "step0" / "0123abcd.json").write_text("{}")  # a step-0 evaluation shared by a seed's runs
    for run, done in (("t/grpo_sequence/seed0", True), ("t/sft+_sequence/seed0", False)):
        d = out / "runs" / run
        d.mkdir(parents=True)
        for f in ("config.json", "metrics.jsonl", "eval.jsonl", "wall_s.json", "checkpoint.pt"):
            (d / f).write_text(json.dumps({"file": f}))
        if done:
            (d / "result.json").write_text("{}")


def test_only_finished_records_the_base_and_step0_are_packed_under_the_folder_name(tmp_path):
    _reproduction(tmp_path / "grid")
    assert pack_runs.pack(tmp_path / "grid", tmp_path / "a.tar.gz") == 1
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        names = tar.getnames()
        assert tar.extractfile("grid/runs/t/grpo_sequence/seed0/metrics.jsonl").read() == b'{"file": "metrics.jsonl"}'
    assert names == (["grid/base/t.json", "grid/base/step0/0123abcd.json"]
                     + [f"grid/runs/t/grpo_sequence/seed0/{f}" for f in pack_runs.RECORD])


def test_the_same_records_give_the_same_bytes(tmp_path):
    _reproduction(tmp_path / "grid")
    pack_runs.pack(tmp_path / "grid", tmp_path / "a.tar.gz")
    (tmp_path / "grid" / "base" / "t.json").touch()  # a newer time stamp changes nothing
    pack_runs.pack(tmp_path / "grid", tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_a_folder_without_runs_is_refused_in_one_line(tmp_path, capsys):
    assert pack_runs.main([str(tmp_path / "nothing"), str(tmp_path / "x.tar.gz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "runs/" in err and not (tmp_path / "x.tar.gz").exists()


def test_step0_restores_a_seeds_shared_evaluation_from_its_runs_and_names_a_run_that_differs(tmp_path):
    from dataclasses import asdict

    from course_lib.reproduce import step0_file
    from course_lib.trainer import TrainConfig

    out = tmp_path / "plan"
    first = {"step": 0, "accuracy": 0.25, "truncated": 0.05}
    for objective, acc in (("grpo", 0.25), ("sft+", 0.25), ("sft-", 0.3)):  # sft-'s first row is another measurement
        d = out / "runs" / "t" / f"{objective}_sequence" / "seed0"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(asdict(TrainConfig.from_profile("micro", objective=objective))))
        (d / "eval.jsonl").write_text(json.dumps({**first, "accuracy": acc}) + "\n" + json.dumps({"step": 30}) + "\n")
        (d / "result.json").write_text("{}")
    written, differ = pack_runs.restore_step0(out)
    shared = step0_file(out / "base" / "step0", TrainConfig.from_profile("micro"))
    assert (written, json.loads(shared.read_text())) == (1, first)  # one file for the seed: objectives share it
    assert differ == ["runs/t/sft-_sequence/seed0"]
    assert pack_runs.restore_step0(out) == (0, differ)  # written once
