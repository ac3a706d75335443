"""Peak memory of sampled-token log-probs at Qwen's vocabulary size: naive vs chunked.

    python benchmarks/logprobs_memory.py [--positions 512,2048] [--hidden 64] [--chunk 256]

Both ways compute log pi(token) for N positions from (N, H) hidden states through a
(V = 151,936, H) output layer, then run backward (as training does):

- naive:   logits = head(h) -> log_softmax over V in float32 -> gather   (the textbook way)
- chunked: course_lib.rollout.sampled_token_logprobs, 256 positions at a time, recomputed in backward

What is measured, honestly:
- on CPU: the growth of the process's peak resident set size (``ru_maxrss``) during forward +
  backward, each way in a fresh subprocess so one cannot inherit the other's peak. RSS counts
  everything the process touches (allocator caches included), so it is an upper bound on
  tensor memory, not an exact tensor count.
- on CUDA (if present): ``torch.cuda.max_memory_allocated`` growth, which is exact tensor memory.
Expect the naive peak to grow with N (several (N, V) float32 tensors: logits, log-softmax,
their gradients) and the chunked peak to stay flat in N: a few (chunk, V) buffers (logits, exp,
their gradients in the recomputing backward) plus the output layer's gradient.
The hidden size is kept small by default so the output layer itself (V x H) stays small and
the difference you see is the logits; pass --hidden 896 for Qwen2.5-0.5B's real head.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

V = 151_936  # Qwen2.5 vocabulary


def measure(method: str, n: int, hidden: int, chunk: int, device: str) -> dict:
    import torch

    from course_lib.rollout import sampled_token_logprobs

    torch.manual_seed(0)
    head = torch.nn.Linear(hidden, V, bias=False).to(device)
    h = torch.randn(n, hidden, device=device, requires_grad=True)
    t = torch.randint(0, V, (n,), device=device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.max_memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if method == "naive":
        lp = torch.log_softmax(head(h).float(), dim=-1).gather(-1, t[:, None]).squeeze(-1)
    else:
        lp = sampled_token_logprobs(h, t, head, chunk_size=chunk)
    lp.sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"method": method, "peak_extra_MiB": (peak - base) / 2**20, "logprob_sum": float(lp.sum())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", default="512,2048", help="N completion tokens, comma-separated")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        print(json.dumps(measure(a.one, int(a.positions), a.hidden, a.chunk, a.device)))
        return 0
    import torch

    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    what = "CUDA max_memory_allocated" if device == "cuda" else "peak RSS growth (ru_maxrss)"
    print(f"V={V}, H={a.hidden}, chunk={a.chunk}, device={device}; forward + backward; measure: {what}")
    for n in (int(x) for x in a.positions.split(",")):
        results = []
        for method in ("naive", "chunked"):
            cmd = [sys.executable, __file__, "--one", method, "--positions", str(n),
                   "--hidden", str(a.hidden), "--chunk", str(a.chunk), "--device", device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            results.append(json.loads(out))
        naive, chunked = (r["peak_extra_MiB"] for r in results)
        diff = abs(results[0]["logprob_sum"] - results[1]["logprob_sum"]) / abs(results[0]["logprob_sum"])
        print(f"N={n:>5} (one (N, V) float32 tensor = {n * V * 4 / 2**20:6,.0f} MiB): naive {naive:7,.0f} MiB, "
              f"chunked {chunked:6,.0f} MiB ({naive / max(chunked, 1e-9):.1f}x less); "
              f"summed log-probs differ by {diff:.0e} (relative)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
