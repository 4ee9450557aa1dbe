import pytest
import torch

from codeclab.quantizers import ResidualVQ, RVQConfig


@pytest.mark.parametrize(
    "cfg",
    [
        RVQConfig(dim=16, codebook_size=33, num_quantizers=5),
        RVQConfig(dim=16, codebook_size=33, num_quantizers=5, codebook_dim=4, l2norm=True, ema=False),
    ],
)
def test_decode_encode_equals_eval_forward(cfg):
    rvq = ResidualVQ(cfg).eval()
    z = torch.randn(2, 16, 57)
    for n_q in (1, 3, 5):
        out = rvq(z, n_q=n_q)
        codes = rvq.encode(z, n_q=n_q)
        assert codes.shape == (2, n_q, 57)
        assert torch.equal(out.codes, codes)
        assert torch.equal(rvq.decode(codes), out.quantized)


def test_fewer_stages_are_a_prefix():
    rvq = ResidualVQ(RVQConfig(dim=8, codebook_size=16, num_quantizers=6)).eval()
    z = torch.randn(3, 8, 20)
    full = rvq.encode(z)
    assert torch.equal(rvq.encode(z, n_q=2), full[:, :2])


def test_more_stages_lower_the_error():
    torch.manual_seed(1)
    rvq = ResidualVQ(RVQConfig(dim=8, codebook_size=64, num_quantizers=6)).train()
    data = torch.randn(1, 8, 4000)
    rvq(data)  # k-means init of every stage on its residual
    rvq.eval()
    errors = [float((rvq.decode(rvq.encode(data, n_q=n)) - data).pow(2).mean()) for n in range(1, 7)]
    assert all(b < a for a, b in zip(errors, errors[1:])), errors


def test_codes_agree_with_vector_quantize_pytorch():
    from vector_quantize_pytorch import ResidualVQ as ReferenceRVQ

    torch.manual_seed(2)
    dim, k, q = 32, 256, 8
    ours = ResidualVQ(RVQConfig(dim=dim, codebook_size=k, num_quantizers=q)).eval()
    ref = ReferenceRVQ(dim=dim, num_quantizers=q, codebook_size=k).eval()
    for layer, theirs in zip(ours.layers, ref.layers):
        theirs._codebook.embed.data.copy_(layer.codebook[None])
        theirs._codebook.initted.data.fill_(True)
    z = torch.randn(8, 1000, dim)
    with torch.no_grad():
        _, ref_codes, _ = ref(z)
    our_codes = ours.encode(z.transpose(1, 2)).transpose(1, 2)
    agreement = (our_codes == ref_codes).float().mean().item()
    assert agreement >= 0.9999, agreement


def test_quantizer_dropout_only_in_training():
    rvq = ResidualVQ(
        RVQConfig(dim=8, codebook_size=16, num_quantizers=6, quantizer_dropout=1.0, kmeans_init=False)
    )
    z = torch.randn(64, 8, 5)
    rvq.train()
    out = rvq(z)
    active = (out.codes >= 0).all(dim=2).sum(dim=1)  # stages used per item
    assert active.min() >= 1 and active.unique().numel() > 2, "dropout should vary the number of stages"
    # dropped stages do not contribute: an item's output equals the sum of its active stages only
    assert float(out.metrics["active_stages"]) < 6
    rvq.eval()
    out = rvq(z)
    assert bool((out.codes >= 0).all())


def test_gradients_reach_the_encoder_side():
    rvq = ResidualVQ(RVQConfig(dim=8, codebook_size=16, num_quantizers=3)).train()
    z = torch.randn(2, 8, 30, requires_grad=True)
    out = rvq(z)
    (out.quantized.pow(2).sum() + out.loss).backward()
    assert float(z.grad.abs().sum()) > 0


def test_n_q_out_of_range():
    rvq = ResidualVQ(RVQConfig(dim=8, codebook_size=16, num_quantizers=3))
    for bad in (0, 4, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_q"):
            rvq.encode(torch.randn(1, 8, 4), n_q=bad)


def test_quantizers_give_the_same_codes_on_every_backend(monkeypatch):
    from codeclab import cuda_ext

    rvq = ResidualVQ(RVQConfig(dim=24, codebook_size=200, num_quantizers=4))
    rvq.train()
    rvq(torch.randn(4, 24, 300))  # k-means init and one EMA step through assign_stats
    rvq.eval()
    z = torch.randn(3, 24, 111)
    auto = rvq.encode(z)
    monkeypatch.setenv("CODECLAB_RVQ_BACKEND", "torch")
    assert cuda_ext.backend("cpu") == "torch"
    assert torch.equal(rvq.encode(z), auto)
