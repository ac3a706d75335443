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

A tool that writes the repository's data/results/, so it lives outside the package; standard
library only.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

RECORD = ("config.json", "metrics.jsonl", "eval.jsonl", "result.json", "wall_s.json")


def record_files(out: Path) -> tuple[list[Path], int]:
    """``(files to pack, finished runs)`` of the reproduction folder ``out``."""
    runs = sorted(p.parent for p in (out / "runs").rglob("result.json"))
    base = sorted((out / "base").glob("*.json")) + sorted((out / "base" / "step0").glob("*.json"))
    files = base + [r / f for r in runs for f in RECORD if (r / f).is_file()]
    return files, len(runs)


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
    args = ap.parse_args(argv)
    try:
        finished = pack(args.out, args.tarball)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{finished} finished runs packed into {args.tarball}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
