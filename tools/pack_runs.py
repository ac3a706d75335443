"""Pack a reproduction's finished run records for data/results/: ``python tools/pack_runs.py OUT TARBALL``.

A run record ships without its checkpoints: each finished run's ``config.json``,
``metrics.jsonl``, ``eval.jsonl``, ``result.json`` and ``wall_s.json`` (a run is finished when it
has ``result.json``), the base measurements in ``base/`` and the shared step-0 evaluations in
``base/step0/``. Paths in the archive start with the folder's name, so unpacking it into
``results/`` and rerunning the recorded ``reproduce`` command there resumes the plan (unfinished
runs start over, reusing their seed's step-0 evaluation) or, with ``--report-only``, rebuilds its
results exactly. The archive is the same bytes for the same records (sorted names, fixed times
and owners), so repacking unchanged records changes nothing in git.

    python tools/pack_runs.py results/grid data/results/grid_runs_partial.tar.gz

With ``--step0`` it first restores the shared step-0 evaluation of every finished run whose file is
missing, from the run's own ``eval.jsonl`` (its first row is that evaluation), so a plan resumed on
another machine reuses it instead of measuring it again there; a run whose first row differs from
its seed's file is named (its seed's runs would not pair).

    python tools/pack_runs.py --step0 results/smollm2_evidence data/results/smollm2_evidence_runs.tar.gz

A tool that writes the repository's data/results/, so it lives outside the package; standard
library only, but for ``--step0`` (course_lib names the step-0 files).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RECORD = ("config.json", "metrics.jsonl", "eval.jsonl", "result.json", "wall_s.json")


def record_files(out: Path) -> tuple[list[Path], int]:
    """``(files to pack, finished runs)`` of the reproduction folder ``out``."""
    runs = sorted(p.parent for p in (out / "runs").rglob("result.json"))
    base = sorted((out / "base").glob("*.json")) + sorted((out / "base" / "step0").glob("*.json"))
    files = base + [r / f for r in runs for f in RECORD if (r / f).is_file()]
    return files, len(runs)


def restore_step0(out: Path) -> tuple[int, list[str]]:
    """Write each finished run's step-0 evaluation where its shared file is missing; returns
    ``(files written, runs whose step-0 evaluation differs from their file)``."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from course_lib.reproduce import step0_file
    from course_lib.trainer import TrainConfig

    written, differ = 0, []
    for run in sorted(p.parent for p in (Path(out) / "runs").rglob("result.json")):
        first = json.loads((run / "eval.jsonl").read_text().splitlines()[0])
        if first.get("step") != 0:
            continue
        shared = step0_file(Path(out) / "base" / "step0", TrainConfig(**json.loads((run / "config.json").read_text())))
        if not shared.exists():
            shared.parent.mkdir(parents=True, exist_ok=True)
            shared.write_text(json.dumps(first, indent=2))
            written += 1
        elif json.loads(shared.read_text()) != first:
            differ.append(str(run.relative_to(out)))
    return written, differ


def pack(out: Path, tarball: Path) -> int:
    """Write ``tarball`` from ``out``'s finished records; returns the number of finished runs."""
    out = Path(out)
    if not (out / "runs").is_dir():
        raise ValueError(f"{out} has no runs/ folder: give the --out folder of a reproduction")
    files, finished = record_files(out)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(str(Path(out.name) / path.relative_to(out)))
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tarball.open("wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(raw.getvalue())
    return finished


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tools/pack_runs.py", description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="a reproduction's --out folder (holding runs/ and base/)")
    ap.add_argument("tarball", type=Path, help="the archive to write, e.g. data/results/grid_runs.tar.gz")
    ap.add_argument("--step0", action="store_true", help="first restore missing step-0 files from the runs")
    args = ap.parse_args(argv)
    try:
        if args.step0:
            written, differ = restore_step0(args.out)
            print(f"{written} step-0 evaluations restored from their runs"
                  + (f"; these differ from their seed's: {', '.join(differ)}" if differ else ""))
        finished = pack(args.out, args.tarball)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{finished} finished runs packed into {args.tarball}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
