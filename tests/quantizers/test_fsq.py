import math

import pytest
import torch

from codeclab.quantizers import FSQ, FSQConfig, ResidualFSQ, ResidualFSQConfig


def test_fsq_codes_inside_levels_and_round_trip():
    levels = [7, 5, 5, 3]
    fsq = FSQ(FSQConfig(dim=12, levels=levels)).eval()
    z = torch.randn(3, 12, 40) * 4
    out = fsq(z)
    assert out.codes.shape == (3, 1, 40)
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < math.prod(levels)
    digits = fsq.fsq.indices_to_level_indices(out.codes[:, 0])
    assert bool((digits >= 0).all()) and bool((digits < torch.tensor(levels)).all())
    assert torch.equal(fsq.decode(fsq.encode(z)), out.quantized)


def test_residual_fsq_round_trip_and_prefix():
    rfsq = ResidualFSQ(ResidualFSQConfig(dim=12, levels=[8, 5, 5, 5], num_quantizers=4)).eval()
    z = torch.randn(2, 12, 33)
    out = rfsq(z)
    codes = rfsq.encode(z)
    assert torch.equal(codes, out.codes)
    assert int(codes.max()) < 1000
    assert torch.allclose(rfsq.decode(codes), out.quantized, atol=1e-6)
    assert torch.equal(rfsq.encode(z, n_q=2), codes[:, :2])
    out2 = rfsq(z, n_q=2)
    assert torch.equal(out2.quantized, rfsq.decode(codes[:, :2]))


def test_gradients_reach_the_encoder_side():
    for q in (
        FSQ(FSQConfig(dim=6, levels=[5, 5, 5])),
        ResidualFSQ(ResidualFSQConfig(dim=6, levels=[5, 5, 5], num_quantizers=2)),
    ):
        q.train()
        z = torch.randn(2, 6, 10, requires_grad=True)
        q(z).quantized.sum().backward()
        assert float(z.grad.abs().sum()) > 0


def test_bad_levels():
    with pytest.raises(ValueError, match="levels"):
        FSQConfig(dim=4, levels=[2, 5])


def test_initialize_spreads_codes():
    fsq = FSQ(FSQConfig(dim=16, levels=[5, 5, 5])).eval()
    z = torch.randn(1, 16, 400) * 0.01  # tiny latents: all in the centre bin before initialisation
    assert fsq.encode(z).unique().numel() <= 3
    fsq.initialize(z)
    assert fsq.encode(z).unique().numel() > 50


def test_without_vector_quantize_pytorch_fsq_says_what_to_install(monkeypatch):
    import sys

    from codeclab.quantizers.fsq import FSQ

    monkeypatch.setitem(sys.modules, "vector_quantize_pytorch", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install -e '\.\[fsq\]'"):
        FSQ(levels=(8, 5, 5), dim=16)
