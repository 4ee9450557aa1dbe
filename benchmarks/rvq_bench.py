"""Residual quantization speed and memory: codeclab's backends against vector-quantize-pytorch and plain torch.

    python benchmarks/rvq_bench.py                    # CPU: 8,000 frames, D=128, K=1024, 8 stages (and D=8, 12 stages)
    python benchmarks/rvq_bench.py --device cuda      # GPU: 262,144 frames, same codebooks
    python benchmarks/rvq_bench.py --memory           # peak memory of training assignment at K=65,536

Methods (eval-mode encoding of all stages):
  codeclab-<backend>   codeclab.cuda_ext.rvq_encode (fused kernel; exact argmin)
  codeclab-reference   the pure-torch reference (exact argmin; screen + fp64 re-rank of near-ties)
  vqp-ResidualVQ       vector_quantize_pytorch.ResidualVQ eval forward with the same codebooks
  plain-torch          per stage: addmm distances + argmin (materialises N x K)
  plain-torch-compile  torch.compile of the same function
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

from codeclab import cuda_ext
from codeclab.cuda_ext import reference
from codeclab.eval.machine import describe_machine


def plain_rvq(x: torch.Tensor, codebooks: torch.Tensor) -> torch.Tensor:
    residual = x.clone()
    codes = []
    for q in range(codebooks.shape[0]):
        cb = codebooks[q]
        dist = torch.addmm(cb.pow(2).sum(1), residual, cb.t(), alpha=-2.0)
        idx = dist.argmin(1)
        residual = residual - cb[idx]
        codes.append(idx)
    return torch.stack(codes, 1)


def interleaved_medians(fns: dict, device: str, reps: int) -> dict[str, float]:
    """Median ms per call of each function; methods alternate within every rep, so drift in the machine's
    speed (turbo, other load) affects them alike."""
    import statistics

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    for fn in fns.values():  # warm-up (and torch.compile)
        fn()
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def methods(x: torch.Tensor, cbs: torch.Tensor, device: str) -> dict:
    from vector_quantize_pytorch import ResidualVQ

    q, k, d = cbs.shape
    vqp = ResidualVQ(dim=d, num_quantizers=q, codebook_size=k).to(device).eval()
    for layer, cb in zip(vqp.layers, cbs):
        layer._codebook.embed.data.copy_(cb[None])
        layer._codebook.initted.data.fill_(True)
    compiled = torch.compile(plain_rvq)
    kind = "cuda" if device == "cuda" else "cpp"
    out = {}
    if cuda_ext.load_kernel(kind) is not None:
        out[f"codeclab-{kind}"] = lambda: cuda_ext.rvq_encode(x, cbs)
    out["codeclab-reference"] = lambda: reference.rvq_encode(x, cbs)

    def run_vqp():
        with torch.no_grad():
            return vqp(x[None])[1]

    out["vqp-ResidualVQ"] = run_vqp
    out["plain-torch"] = lambda: plain_rvq(x, cbs)
    out["plain-torch-compile"] = lambda: compiled(x, cbs)
    return out


def speed(args) -> None:
    device = args.device
    n = args.frames or (262_144 if device == "cuda" else 8_000)
    configs = [(128, 1024, 8), (8, 1024, 12)]
    print(
        f"machine: {describe_machine()}\nframes N = {n}; times are ms per full encode (all stages), "
        f"median of {args.reps} interleaved runs after 2 warm-ups\n"
    )
    print("| D | K | stages | " + " | ".join(["method", "ms", "vs plain torch", "codes == exact"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for d, k, q in configs:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n, d, generator=gen).to(device)
        cbs = torch.randn(q, k, d, generator=gen).to(device)
        exact = reference.rvq_encode(x, cbs)
        fns = methods(x, cbs, device)
        medians = interleaved_medians(fns, device, args.reps)
        results = {}
        for name, fn in fns.items():
            same = float((fn().reshape(exact.shape) == exact).float().mean())
            results[name] = (medians[name], same)
        base = results["plain-torch"][0]
        for name, (ms, same) in results.items():
            print(f"| {d} | {k} | {q} | {name} | {ms:.1f} | {base / ms:.2f}x | {same:.4%} |")


def memory_child(method: str, device: str, n: int, d: int, k: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=gen).to(device)
    cb = torch.randn(k, d, generator=gen).to(device)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if method == "codeclab":
        cuda_ext.vq_assign_stats(x, cb)
    else:  # plain torch: distances, argmin, bincount, index_add
        dist = torch.addmm(cb.pow(2).sum(1), x, cb.t(), alpha=-2.0)
        codes = dist.argmin(1)
        torch.bincount(codes, minlength=k)
        torch.zeros(k, d, device=device).index_add_(0, codes, x)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    print(json.dumps({"peak_bytes": peak}))


def memory(args) -> None:
    n, d, k = args.frames or 8_000, 128, 65_536
    if cuda_ext.load_kernel("cuda" if args.device == "cuda" else "cpp") is None:
        print("kernel unavailable; the codeclab row would measure the reference")
    print(
        f"machine: {describe_machine()}\ntraining assignment (codes + counts + sums), N={n}, D={d}, K={k}; "
        f"inputs {n * d * 4 / 2**20:.1f} MiB + codebook {k * d * 4 / 2**20:.1f} MiB; N x K fp32 = {n * k * 4 / 2**20:.0f} MiB\n"
    )
    print("| method | peak extra memory |")
    print("|---|---|")
    for method in ("codeclab", "plain-torch"):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", method, "--device", args.device, "--frames", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak = json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"]
        print(f"| {method} | {peak / 2**20:.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--memory-child", default=None)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.device, args.frames, 128, 65_536)
    elif args.memory:
        memory(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
