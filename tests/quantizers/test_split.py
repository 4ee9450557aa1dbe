import pytest
import torch

from codeclab.quantizers import SplitConfig, SplitRVQ, build_quantizer


def make(**kw) -> SplitRVQ:
    torch.manual_seed(0)
    q = build_quantizer("split", dict(dim=12, codebook_size=16, num_quantizers=4, **kw))
    q.initialize(torch.randn(3, 12, 40))
    return q


def test_codes_lead_with_the_semantic_codebook_and_decode_is_the_sum():
    q = make().eval()
    z = torch.randn(2, 12, 33)
    codes = q.encode(z)
    assert codes.shape == (2, 4, 33)
    assert torch.equal(codes[:, 0], q.semantic.encode(z)[:, 0])
    assert torch.equal(codes[:, 1:], q.acoustic.encode(z))  # the acoustic stack sees z, not a residual
    expected = q.semantic.decode(codes[:, :1]) + q.acoustic.decode(codes[:, 1:])
    torch.testing.assert_close(q.decode(codes), expected)


def test_n_q_keeps_a_prefix_and_forward_matches_encode_in_eval():
    q = make().eval()
    z = torch.randn(2, 12, 21)
    full = q.encode(z)
    for n_q in (1, 2, 4):
        assert torch.equal(q.encode(z, n_q), full[:, :n_q])
        out = q(z, n_q=n_q)
        assert torch.equal(out.codes, full[:, :n_q])
        torch.testing.assert_close(out.quantized, q.decode(full[:, :n_q]))


def test_prefix_output_is_the_first_stages_alone():
    q = make().eval()
    z = torch.randn(1, 12, 10)
    codes = q.encode(z)
    torch.testing.assert_close(q(z, prefix=1).prefix, q.decode(codes[:, :1]))
    torch.testing.assert_close(q(z, prefix=3).prefix, q.decode(codes[:, :3]))
    with pytest.raises(ValueError, match="prefix"):
        q(z, n_q=2, prefix=3)


def test_dropout_never_drops_the_semantic_code():
    q = make(quantizer_dropout=1.0).train()
    out = q(torch.randn(8, 12, 5))
    assert bool((out.codes[:, 0] >= 0).all())
    assert bool((out.codes[:, 1:] < 0).any())  # some acoustic stages dropped


def test_needs_two_codebooks():
    with pytest.raises(ValueError, match="num_quantizers >= 2"):
        SplitConfig(dim=4, codebook_size=8, num_quantizers=1)
