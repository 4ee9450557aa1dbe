"""Every backend of codeclab.cuda_ext against the torch reference (and the reference against fp64)."""

import os
import shutil

import pytest
import torch

from codeclab import cuda_ext
from codeclab.cuda_ext import reference

HAS_CXX = shutil.which("g++") is not None or shutil.which("c++") is not None
HAS_GPU = torch.cuda.is_available()


def kernel(kind):
    k = cuda_ext.load_kernel(kind)
    if k is None:
        pytest.skip(f"{kind} kernel unavailable: {cuda_ext.kernel_failure(kind)}")
    return k


BACKENDS = [
    pytest.param("cpp", "cpu", id="cpp"),
    pytest.param(
        "cuda",
        "cuda",
        id="cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not HAS_GPU, reason="no CUDA device")],
    ),
]
# odd sizes: N, D, K, Q not multiples of anything
SHAPES = [
    (1, 2, 3, 1),
    (37, 13, 333, 3),
    (1001, 129, 1021, 4),
    (257, 7, 65, 6),
    (5, 511, 17, 2),
    (3000, 128, 1024, 2),
]


def random_case(seed, n, d, k, q, dtype=torch.float32, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen) * 3 + 1
    cbs = torch.randn(q, k, d, generator=gen) * 3 + 1
    return x.to(dtype).to(device), cbs.to(dtype).to(device)


@pytest.mark.parametrize("kind, device", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_backend_equals_reference(kind, device, shape, dtype):
    impl = kernel(kind)
    for seed in range(3):
        x, cbs = random_case(seed, *shape, dtype=dtype, device=device)
        q = shape[3]
        assert torch.equal(impl.rvq_encode(x, cbs, q).cpu(), reference.rvq_encode(x, cbs, q).cpu())


@pytest.mark.parametrize("kind, device", BACKENDS)
def test_ties_duplicates_and_degenerate_codebooks(kind, device):
    impl = kernel(kind)
    x, cbs = random_case(5, 400, 16, 300, 3, device=device)
    cbs[:, 7] = cbs[:, 3]  # duplicates: the lower index must win
    cbs[:, 100:200] = 0.0  # a hundred identical zero codes
    x[:20] = cbs[0, 3]
    x[20:40] = 0.0
    codes = impl.rvq_encode(x, cbs, 3)
    assert torch.equal(codes.cpu(), reference.rvq_encode(x, cbs, 3).cpu())
    assert bool((codes[:20, 0] == 3).all()) and bool((codes[20:40, 0] == 100).all())
    same = torch.zeros(1, 50, 4, device=device)  # every code identical
    assert bool((impl.rvq_encode(x[:, :4], same, 1) == 0).all())


@pytest.mark.parametrize("kind, device", BACKENDS)
def test_assign_stats_match(kind, device):
    impl = kernel(kind)
    x, cbs = random_case(2, 3001, 33, 257, 1, device=device)
    codes, counts, sums = impl.vq_assign_stats(x, cbs[0])
    r_codes, r_counts, r_sums = reference.vq_assign_stats(x, cbs[0])
    assert torch.equal(codes.cpu(), r_codes.cpu()) and torch.equal(counts.cpu(), r_counts.cpu())
    assert torch.allclose(sums.cpu(), r_sums.cpu(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind, device", BACKENDS)
def test_decode_of_encode_is_the_residual_sum(kind, device):
    impl = kernel(kind)
    x, cbs = random_case(3, 500, 24, 99, 5, device=device)
    codes = impl.rvq_encode(x, cbs, 5)
    manual = sum(cbs[q][codes[:, q]] for q in range(5))
    assert torch.equal(impl.rvq_decode(codes, cbs), manual.float())


@pytest.mark.parametrize("kind, device", BACKENDS)
def test_extreme_sizes(kind, device):
    impl = kernel(kind)
    x, cbs = random_case(4, 300, 2, 65536, 1, device=device)  # K = 65,536, D = 2
    assert torch.equal(impl.rvq_encode(x, cbs, 1).cpu(), reference.rvq_encode(x, cbs, 1).cpu())
    x, cbs = random_case(4, 50, 512, 40, 2, device=device)  # D = 512
    assert torch.equal(impl.rvq_encode(x, cbs, 2).cpu(), reference.rvq_encode(x, cbs, 2).cpu())


def test_exact_codes_agree_with_fp64_at_least_as_often_as_plain_fp32():
    """Plain fp32 matmul + argmin flips near-ties; the exact semantics never do."""
    agree_exact = agree_plain = 0
    total = 0
    for seed in range(4):
        x, cbs = random_case(seed, 4000, 64, 512, 1)
        x = x * 1e-2 + 50.0  # clustered far from the origin: fp32 cancellation makes near-ties
        cb = cbs[0] * 1e-2 + 50.0
        truth = ((x.double()[:, None] - cb.double()[None]) ** 2).sum(-1).argmin(1)
        plain = torch.addmm(cb.pow(2).sum(1), x, cb.t(), alpha=-2.0).argmin(1)
        ours = cuda_ext.nearest_code(x, cb)
        agree_exact += int((ours == truth).sum())
        agree_plain += int((plain == truth).sum())
        total += x.shape[0]
    assert agree_exact == total
    assert agree_exact >= agree_plain
    assert agree_plain < total  # the data really does defeat plain fp32


def test_public_ops_validate_inputs():
    cb = torch.randn(10, 4)
    with pytest.raises(ValueError, match="dimension mismatch"):
        cuda_ext.nearest_code(torch.randn(3, 5), cb)
    with pytest.raises(ValueError, match="NaN or inf"):
        cuda_ext.nearest_code(torch.tensor([[float("nan")] * 4]), cb)
    with pytest.raises(ValueError, match="NaN or inf"):
        cuda_ext.rvq_encode(torch.randn(3, 4), torch.full((2, 10, 4), float("inf")))
    with pytest.raises(ValueError, match="empty"):
        cuda_ext.nearest_code(torch.randn(3, 4), torch.randn(0, 4))
    with pytest.raises(ValueError, match="n_q"):
        cuda_ext.rvq_encode(torch.randn(3, 4), torch.randn(2, 10, 4), n_q=3)
    with pytest.raises(ValueError, match="codes must lie"):
        cuda_ext.rvq_decode(torch.tensor([[10]]), torch.randn(1, 10, 4))
    assert cuda_ext.rvq_encode(torch.randn(0, 4), torch.randn(2, 10, 4)).shape == (0, 2)


def test_non_contiguous_inputs_give_correct_results():
    x = torch.randn(64, 200)[:, ::2]  # strided
    cbs = torch.randn(30, 3, 100).transpose(0, 1)  # [3, 30, 100], non-contiguous
    assert not x.is_contiguous() and not cbs.is_contiguous()
    assert torch.equal(cuda_ext.rvq_encode(x, cbs), reference.rvq_encode(x.contiguous(), cbs.contiguous()))


def test_backend_selection(monkeypatch):
    monkeypatch.setenv("CODECLAB_RVQ_BACKEND", "torch")
    assert cuda_ext.backend("cpu") == "torch"
    monkeypatch.setenv("CODECLAB_RVQ_BACKEND", "bogus")
    with pytest.raises(ValueError, match="CODECLAB_RVQ_BACKEND"):
        cuda_ext.backend("cpu")
    monkeypatch.delenv("CODECLAB_RVQ_BACKEND")
    expected = "cpp" if cuda_ext.load_kernel("cpp") is not None else "torch"
    assert cuda_ext.backend("cpu") == expected


@pytest.mark.skipif(not HAS_CXX, reason="no C++ compiler on this machine")
def test_cpu_kernel_builds_where_a_compiler_exists():
    assert cuda_ext.load_kernel("cpp") is not None, cuda_ext.kernel_failure("cpp")
    assert cuda_ext.backend("cpu") == "cpp" or os.environ.get("CODECLAB_RVQ_BACKEND") == "torch"


def test_a_failed_build_falls_back_to_the_reference(tmp_path, monkeypatch):
    from codeclab.cuda_ext.build import BuildError, build_cpu

    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("CODECLAB_EXT_DIR", str(tmp_path))
    with pytest.raises(BuildError, match="cannot run"):
        build_cpu()


def test_import_does_not_build_anything():
    import subprocess
    import sys

    code = "import codeclab, codeclab.quantizers, sys; from codeclab import cuda_ext; print(len(cuda_ext._kernels))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"
