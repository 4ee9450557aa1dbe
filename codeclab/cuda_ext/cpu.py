"""ctypes bindings of the C++ CPU kernel (csrc/rvq_cpu.cpp)."""

from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from codeclab.cuda_ext.build import build_cpu

_I64 = ctypes.c_int64
_PTR = ctypes.c_void_p


class CpuKernel:
    """The loaded library; inputs are made contiguous fp32 on the CPU, outputs allocated here."""

    def __init__(self) -> None:
        lib = build_cpu()
        lib.cc_abi_version.restype = ctypes.c_int
        if lib.cc_abi_version() != 1:
            raise RuntimeError("the CPU kernel's ABI version does not match this codeclab")
        lib.cc_rvq_encode.argtypes = [_PTR, _I64, _I64, _PTR, _I64, _I64, _I64, _PTR, ctypes.c_int32]
        lib.cc_vq_assign_stats.argtypes = [_PTR, _I64, _I64, _PTR, _I64, _PTR, _PTR, _PTR, ctypes.c_int32]
        lib.cc_rvq_decode.argtypes = [_PTR, _I64, _I64, _PTR, _I64, _I64, _I64, _PTR, ctypes.c_int32]
        for fn in (lib.cc_rvq_encode, lib.cc_vq_assign_stats, lib.cc_rvq_decode):
            fn.restype = ctypes.c_int
        self.lib = lib

    @staticmethod
    def _check(rc: int, op: str) -> None:
        if rc != 0:
            reason = {-2: "out of memory", -3: "invalid sizes", -4: "codes out of range"}.get(
                rc, f"error {rc}"
            )
            raise RuntimeError(f"CPU kernel {op} failed: {reason}")

    def rvq_encode(self, x: Tensor, codebooks: Tensor, n_q: int) -> Tensor:
        x = x.detach().to("cpu", torch.float32).contiguous()
        cbs = codebooks.detach().to("cpu", torch.float32).contiguous()
        n, d = x.shape
        q, k, _ = cbs.shape
        codes = torch.empty(n, n_q, dtype=torch.int64)
        rc = self.lib.cc_rvq_encode(
            x.data_ptr(), n, d, cbs.data_ptr(), q, k, n_q, codes.data_ptr(), torch.get_num_threads()
        )
        self._check(rc, "rvq_encode")
        return codes

    def vq_assign_stats(self, x: Tensor, codebook: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = x.detach().to("cpu", torch.float32).contiguous()
        cb = codebook.detach().to("cpu", torch.float32).contiguous()
        n, d = x.shape
        k = cb.shape[0]
        codes = torch.empty(n, dtype=torch.int64)
        counts = torch.empty(k, dtype=torch.float32)
        sums = torch.empty(k, d, dtype=torch.float32)
        rc = self.lib.cc_vq_assign_stats(
            x.data_ptr(),
            n,
            d,
            cb.data_ptr(),
            k,
            codes.data_ptr(),
            counts.data_ptr(),
            sums.data_ptr(),
            torch.get_num_threads(),
        )
        self._check(rc, "vq_assign_stats")
        return codes, counts, sums

    def rvq_decode(self, codes: Tensor, codebooks: Tensor) -> Tensor:
        codes = codes.detach().to("cpu", torch.int64).contiguous()
        cbs = codebooks.detach().to("cpu", torch.float32).contiguous()
        n, n_q = codes.shape
        q, k, d = cbs.shape
        out = torch.empty(n, d, dtype=torch.float32)
        rc = self.lib.cc_rvq_decode(
            codes.data_ptr(), n, n_q, cbs.data_ptr(), q, k, d, out.data_ptr(), torch.get_num_threads()
        )
        self._check(rc, "rvq_decode")
        return out
