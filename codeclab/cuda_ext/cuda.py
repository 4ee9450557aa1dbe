"""ctypes bindings of the CUDA kernel (csrc/rvq_cuda.cu), with a self-check before first use.

The kernel is validated once against the torch reference on this GPU (random odd sizes, duplicate codes,
exact ties). If any code differs, loading fails, which `codeclab.cuda_ext` logs before it falls back to
the reference, so a kernel that misbehaves on some GPU or driver can never produce wrong codes silently.
"""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from codeclab.cuda_ext import reference
from codeclab.cuda_ext.build import build_cuda


class CudaKernel:
    def __init__(self) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError("no CUDA device")
        major, minor = torch.cuda.get_device_capability()
        if major < 8:
            raise RuntimeError(f"the CUDA kernel needs sm_80 or newer, this GPU is sm_{major}{minor}")
        lib = build_cuda()
        lib.cc_cuda_abi_version.restype = ctypes.c_int
        if lib.cc_cuda_abi_version() != 1:
            raise RuntimeError("the CUDA kernel's ABI version does not match this codeclab")
        p, i, d = ctypes.c_void_p, ctypes.c_int, ctypes.c_double
        lib.cc_rvq_stage.argtypes = [p, i, i, p, p, p, p, p, i, d, d, p, p, p, p, i, i, i, p]
        lib.cc_rvq_stage.restype = ctypes.c_int
        self.lib = lib
        self._self_check()

    def _stage(
        self, residual: Tensor, codebook: Tensor, codes: Tensor, q: int, update: bool, scratch
    ) -> None:
        n, dim = residual.shape
        k = codebook.shape[0]
        mean = codebook.double().mean(0).float()
        centred = (codebook - mean).contiguous()
        c_sq = centred.pow(2).sum(1).contiguous()
        _, first = reference.duplicate_groups(codebook)
        first = first.to(torch.uint8).contiguous()
        gamma = reference.bound_gamma(dim)
        best1, idx1, best2 = scratch
        stream = torch.cuda.current_stream(residual.device).cuda_stream
        rc = self.lib.cc_rvq_stage(
            residual.data_ptr(),
            n,
            dim,
            mean.data_ptr(),
            centred.data_ptr(),
            codebook.data_ptr(),
            c_sq.data_ptr(),
            first.data_ptr(),
            k,
            gamma,
            float(c_sq.double().max()),
            best1.data_ptr(),
            idx1.data_ptr(),
            best2.data_ptr(),
            codes.data_ptr(),
            q,
            codes.shape[1],
            int(update),
            ctypes.c_void_p(stream),
        )
        if rc != 0:
            raise RuntimeError(
                f"CUDA kernel failed: {torch.cuda.get_device_name(residual.device)} error {rc}"
            )

    def rvq_encode(self, x: Tensor, codebooks: Tensor, n_q: int) -> Tensor:
        device = x.device
        with torch.cuda.device(device):
            residual = x.detach().to(device, torch.float32).contiguous().clone()
            cbs = codebooks.detach().to(device, torch.float32).contiguous()
            n = residual.shape[0]
            codes = torch.empty(n, n_q, dtype=torch.int64, device=device)
            scratch = (
                torch.empty(n, dtype=torch.float32, device=device),
                torch.empty(n, dtype=torch.int32, device=device),
                torch.empty(n, dtype=torch.float32, device=device),
            )
            for q in range(n_q):
                self._stage(residual, cbs[q].contiguous(), codes, q, q + 1 < n_q, scratch)
            return codes

    def vq_assign_stats(self, x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        codes = self.rvq_encode(x, codebook[None], 1)[:, 0]
        k, d = codebook.shape
        counts = torch.bincount(codes, minlength=k).float()
        sums = torch.zeros(k, d, dtype=torch.float32, device=x.device)
        sums.index_add_(0, codes, x.float())  # fp32 atomics: summation order varies between runs
        return codes, counts, sums

    def rvq_decode(self, codes: Tensor, codebooks: Tensor) -> Tensor:
        return reference.rvq_decode(codes, codebooks)  # a gather and a sum: memory-bound, torch does it well

    def _self_check(self) -> None:
        gen = torch.Generator(device="cpu").manual_seed(1234)
        for n, dim, k, q in (
            (1000, 128, 1024, 3),
            (777, 13, 333, 2),
            (5, 2, 7, 2),
            (130, 257, 65, 2),
            (64, 8, 4096, 2),
        ):
            x = torch.randn(n, dim, generator=gen)
            cbs = torch.randn(q, k, dim, generator=gen)
            cbs[:, min(5, k - 1)] = cbs[:, min(2, k - 1)]  # duplicate codes
            x[: min(n, 3)] = cbs[0, min(2, k - 1)]  # exact ties
            x, cbs = x.cuda(), cbs.cuda()
            ours = self.rvq_encode(x, cbs, q)
            ref = reference.rvq_encode(x, cbs, q)
            if not torch.equal(ours, ref):
                bad = int((ours != ref).sum())
                raise RuntimeError(
                    f"CUDA kernel self-check failed: {bad} codes differ from the reference at N={n} D={dim} K={k}"
                )
