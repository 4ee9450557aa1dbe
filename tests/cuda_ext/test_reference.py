import pytest
import torch

from codeclab.cuda_ext import reference


def test_nearest_code_matches_fp64_argmin():
    x = torch.randn(500, 24)
    cb = torch.randn(97, 24)
    codes = reference.nearest_code(x, cb)
    exact = torch.cdist(x.double(), cb.double()).argmin(1)
    assert (codes == exact).float().mean() >= 0.999


def test_ties_go_to_lowest_index():
    cb = torch.randn(10, 4)
    cb[7] = cb[3]  # duplicate code: a tie for every row nearest to it
    x = cb[3].repeat(5, 1) + 1e-3
    assert bool((reference.nearest_code(x, cb) == 3).all())


def test_row_invariance():
    x = torch.randn(300, 64)
    cb = torch.randn(1000, 64)
    full = reference.nearest_code(x, cb)
    for n in (1, 2, 3, 7, 16, 31, 33, 100):
        assert torch.equal(reference.nearest_code(x[:n], cb), full[:n])


def test_rvq_encode_decode_is_the_residual_sum():
    cbs = torch.randn(4, 50, 8)
    x = torch.randn(200, 8)
    codes = reference.rvq_encode(x, cbs)
    manual = sum(cbs[q][codes[:, q]] for q in range(4))
    assert torch.equal(reference.rvq_decode(codes, cbs), manual)


def test_assign_stats():
    x = torch.randn(100, 5)
    cb = torch.randn(9, 5)
    codes, counts, sums = reference.vq_assign_stats(x, cb)
    assert float(counts.sum()) == 100
    for k in range(9):
        assert torch.allclose(sums[k], x[codes == k].sum(0), atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="dimension mismatch"):
        reference.nearest_code(torch.randn(3, 4), torch.randn(5, 6))
    with pytest.raises(ValueError, match="NaN"):
        reference.nearest_code(torch.tensor([[float("nan"), 0.0]]), torch.randn(3, 2))
    with pytest.raises(ValueError, match="empty"):
        reference.nearest_code(torch.randn(3, 2), torch.randn(0, 2))
    assert reference.nearest_code(torch.randn(0, 2), torch.randn(3, 2)).shape == (0,)
