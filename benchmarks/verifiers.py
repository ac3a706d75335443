"""Verifier speed: scores per second on typical completions, worst single call on the edge cases.

Run from the repository root (needs the dev extra, for the edge-case tables in tests/):

    python benchmarks/verifiers.py            # about 10 s
    python benchmarks/verifiers.py --quick    # about 2 s

Targets on one core: >= 20,000 Countdown and >= 100,000 GSM8K scores per second, and no
single call on the edge-case tables over 5 ms. The verifier runs once per sampled completion,
so at these speeds it never matters next to generation. Timings on a shared machine are noisy;
the worst call is the slowest of the per-case minimum over several repeats, so that one
scheduler hiccup does not count as a slow input (the raw maximum is printed too).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import random
import sys
import time
from pathlib import Path

from course_lib.tasks import countdown, gsm8k

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"countdown": 20_000, "gsm8k": 100_000}
WORST_MS = 5.0


def _edge_table(name: str) -> list[tuple]:
    spec = importlib.util.spec_from_file_location(f"_edges_{name}", ROOT / "tests" / f"test_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EDGE_CASES


def countdown_completions(n: int) -> list[tuple[str, list[int], int]]:
    """Typical R1-style completions: about half correct, the rest wrong or malformed."""
    rng = random.Random(0)
    out = []
    for p in countdown.generate(n, seed=0):
        nums, target = p["nums"], p["target"]
        expr = countdown.solve(nums, target)
        think = f"<think>Let me try {' and '.join(map(str, nums))} to reach {target}. " * 3 + "</think>\n"
        kind = rng.random()
        if kind < 0.5:
            answer = f"<answer> {expr} </answer>"
        elif kind < 0.8:
            answer = f"<answer>{' + '.join(map(str, nums))}</answer>"
        elif kind < 0.9:
            answer = f"<answer>{expr} = {target}</answer>"
        else:
            answer = "I could not find it."
        out.append((think + answer, nums, target))
    return out


def gsm8k_completions(n: int) -> list[tuple[str, str]]:
    """Typical completions: the bundled reference solutions, boxed answers, wrong answers."""
    rng = random.Random(0)
    rows = gsm8k.load("test", n=n, seed=0)
    out = []
    for r in rows:
        gold = r["answer"].rsplit("####", 1)[1].strip()
        steps = r["answer"].rsplit("####", 1)[0]
        kind = rng.random()
        if kind < 0.4:
            text = r["answer"]
        elif kind < 0.7:
            text = f"{steps}So the answer is \\boxed{{{gold}}}."
        elif kind < 0.9:
            text = f"{steps}#### {gold}1"
        else:
            text = steps
        out.append((text, r["answer"]))
    return out


def rate(fn, items, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for item in items:
            fn(*item)
        best = min(best, time.perf_counter() - t0)
    return len(items) / best


def worst_call(fn, cases, repeats: int) -> tuple[float, float, str]:
    """(slowest per-case minimum in ms, raw maximum in ms, the slowest case's reason)."""
    worst = raw = 0.0
    label = ""
    for args in cases:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            s = fn(*args)
            times.append(time.perf_counter() - t0)
        if min(times) > worst:
            worst, label = min(times), s.reason
        raw = max(raw, max(times))
    return worst * 1e3, raw * 1e3, label


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer completions and repeats")
    args = parser.parse_args(argv)
    n, repeats = (500, 2) if args.quick else (2000, 5)

    print(f"python {platform.python_version()} on {platform.machine()}, one core, {n} completions")
    cd = countdown_completions(n)
    gs = gsm8k_completions(n)
    cd_edges = [(c, nums, t) for c, nums, t, *_ in _edge_table("countdown")]
    gs_edges = [(c, g) for c, g, *_ in _edge_table("gsm8k")]

    ok = True
    for name, fn, items, edges in [
        ("countdown", countdown.score, cd, cd_edges),
        ("gsm8k", gsm8k.score, gs, gs_edges),
    ]:
        per_s = rate(fn, items, repeats)
        worst, raw, label = worst_call(fn, edges, repeats)
        hit = per_s >= TARGETS[name] and worst <= WORST_MS
        ok &= hit
        print(
            f"{name:9s} {per_s:10,.0f} scores/s (target >= {TARGETS[name]:,})   "
            f"worst edge case {worst:.3f} ms (raw max {raw:.3f} ms; target <= {WORST_MS} ms) "
            f"[{len(edges)} cases; slowest: {label[:40]}]   {'ok' if hit else 'MISSED'}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
