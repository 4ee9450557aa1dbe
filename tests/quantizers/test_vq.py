import pytest
import torch

from codeclab.quantizers import VectorQuantizer, VQConfig


def gaussian_mixture(n: int, dim: int, centers: torch.Tensor, scale: float = 0.05) -> torch.Tensor:
    pick = torch.randint(0, centers.shape[0], (n,))
    return centers[pick] + scale * torch.randn(n, dim)


@pytest.mark.parametrize(
    "cfg",
    [
        VQConfig(dim=12, codebook_size=37),
        VQConfig(dim=12, codebook_size=37, codebook_dim=5, l2norm=True, ema=False),
        VQConfig(dim=12, codebook_size=37, codebook_dim=5),
    ],
)
def test_decode_encode_equals_eval_forward(cfg):
    vq = VectorQuantizer(cfg).eval()
    z = torch.randn(3, 12, 41)
    out = vq(z)
    codes = vq.encode(z)
    assert codes.shape == (3, 1, 41) and codes.dtype == torch.int64
    assert torch.equal(out.codes, codes)
    assert torch.equal(vq.decode(codes), out.quantized)


def test_codes_are_nearest_in_fp64():
    vq = VectorQuantizer(VQConfig(dim=8, codebook_size=50)).eval()
    z = torch.randn(2, 8, 30)
    codes = vq.encode(z)[:, 0].reshape(-1)
    rows = z.permute(0, 2, 1).reshape(-1, 8).double()
    dist = torch.cdist(rows, vq.codebook.double())
    assert (codes == dist.argmin(1)).float().mean() == 1.0


def test_kmeans_init_on_first_training_batch():
    centers = torch.randn(16, 6) * 3
    vq = VectorQuantizer(VQConfig(dim=6, codebook_size=16, kmeans_iters=20))
    assert not bool(vq.initted)
    x = gaussian_mixture(4000, 6, centers)
    vq.train()
    vq(x.T[None])
    assert bool(vq.initted)
    # every centroid ends near a true centre (k-means found the mixture)
    dist = torch.cdist(vq.codebook, centers).min(1).values
    assert float(dist.median()) < 0.5


def test_ema_and_dead_codes_lower_error_and_use_codes():
    torch.manual_seed(3)
    dim, k = 16, 128
    centers = torch.randn(512, dim)
    # no k-means: the codebook starts far from the data, so only EMA and dead-code replacement can fix it
    cfg = VQConfig(dim=dim, codebook_size=k, kmeans_init=False, decay=0.9, dead_code_ratio=0.5)
    vq = VectorQuantizer(cfg)
    with torch.no_grad():
        vq.codebook.mul_(0.01).add_(10.0)
        vq.embed_sum.copy_(vq.codebook)
    test = gaussian_mixture(8192, dim, centers)

    def error() -> float:
        vq.eval()
        q = vq.decode(vq.encode(test.T[None]))[0].T
        vq.train()
        return float((q - test).pow(2).sum(1).mean())

    errors = [error()]
    for step in range(60):
        vq(gaussian_mixture(2048, dim, centers).T[None])
        if step % 20 == 19:
            errors.append(error())
    assert errors[-1] < 0.5 * errors[0]
    assert all(b <= a * 1.05 for a, b in zip(errors, errors[1:]))
    vq.eval()
    used = vq.encode(test.T[None]).unique().numel() / k
    assert used >= 0.9, f"only {used:.0%} of codes used"


def test_gradients_reach_input_and_projections():
    vq = VectorQuantizer(VQConfig(dim=10, codebook_size=20, codebook_dim=4, l2norm=True, ema=False)).train()
    z = torch.randn(2, 10, 15, requires_grad=True)
    out = vq(z)
    (out.quantized.square().sum() + out.loss).backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0
    assert float(vq.in_proj.weight.grad.abs().sum()) > 0
    assert float(vq.codebook.grad.abs().sum()) > 0  # learned by the codebook loss
    assert set(out.losses) == {"commitment", "codebook"}


def test_metrics_report_usage_and_perplexity():
    vq = VectorQuantizer(VQConfig(dim=4, codebook_size=8, kmeans_init=False)).eval()
    with torch.no_grad():
        vq.codebook.copy_(torch.eye(8, 4) * 5)
    z = torch.zeros(1, 4, 10)  # every frame picks the same code
    out = vq(z)
    assert float(out.metrics["usage"][0]) == pytest.approx(1 / 8)
    assert float(out.metrics["perplexity"][0]) == pytest.approx(1.0)


def test_mask_limits_statistics():
    vq = VectorQuantizer(
        VQConfig(dim=4, codebook_size=8, kmeans_init=False, decay=0.0, dead_code_ratio=0, dead_code_rows=0)
    ).train()
    z = torch.randn(1, 4, 10)
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, :3] = True
    vq(z, mask=mask)
    assert float(vq.cluster_size.sum()) == pytest.approx(3.0)


def test_bad_arguments():
    vq = VectorQuantizer(VQConfig(dim=4, codebook_size=8))
    with pytest.raises(ValueError, match="n_q"):
        vq.encode(torch.randn(1, 4, 3), n_q=2)
    with pytest.raises(ValueError, match="latent"):
        vq.encode(torch.randn(1, 5, 3))
    with pytest.raises(ValueError, match="codes must lie"):
        vq.decode(torch.full((1, 1, 3), 8))
    with pytest.raises(ValueError):
        VQConfig(dim=4, codebook_size=1)


def test_dead_code_replacement_never_hands_a_batch_its_own_rows():
    """Replacing dead codes with rows of the current batch before looking that batch up makes those rows
    find themselves: zero residual, and later RVQ stages learn codebooks of zeros. Replacements must come
    from rows the current lookup never sees."""
    torch.manual_seed(0)
    vq = VectorQuantizer(VQConfig(dim=8, codebook_size=64, kmeans_init=False)).train()
    vq(torch.randn(1, 8, 200))  # an earlier batch fills the replacement buffer
    with torch.no_grad():
        vq.cluster_size.zero_()
        vq.cluster_size[0] = 1.0  # every code but one is dead
    x = torch.randn(1, 8, 300)
    out = vq(x)
    residual = (x - out.quantized).detach().abs().sum(1)
    assert bool((residual > 1e-6).all()), "some rows were quantized to themselves"


def test_dead_codes_are_a_share_of_use_not_a_batch_size_count():
    """The same use shares give the same dead codes whatever the batch size."""
    small = VectorQuantizer(VQConfig(dim=4, codebook_size=100, dead_code_ratio=0.1, dead_code_rows=0))
    large = VectorQuantizer(VQConfig(dim=4, codebook_size=100, dead_code_ratio=0.1, dead_code_rows=0))
    shares = torch.rand(100) ** 4
    small.cluster_size.copy_(shares * 4)  # about 400 rows per step
    large.cluster_size.copy_(shares * 48)  # about 4,800 rows per step
    assert int(small.dead_codes().sum()) > 0
    assert torch.equal(small.dead_codes(), large.dead_codes())


def test_kmeans_waits_for_enough_rows():
    """A first batch smaller than the codebook does not fix k-means: init completes once
    kmeans_rows x codebook_size rows have been seen, over several steps."""
    vq = VectorQuantizer(VQConfig(dim=6, codebook_size=64, kmeans_rows=2)).train()
    vq(torch.randn(1, 6, 50))
    assert not bool(vq.initted)
    vq(torch.randn(1, 6, 50))
    assert not bool(vq.initted)
    vq(torch.randn(1, 6, 50))
    assert bool(vq.initted)  # 150 >= 128 rows
    # the codebook was fitted on the buffered rows: codes are spread over the codebook
    assert vq.encode(torch.randn(1, 6, 500)).unique().numel() > 32


def test_codes_unused_for_a_number_of_rows_are_dead_whatever_the_batch():
    """Counted in rows: 2 steps of 64 rows and 16 steps of 8 rows retire the same unused codes."""
    for batch, steps in ((64, 2), (8, 16)):
        vq = VectorQuantizer(
            VQConfig(dim=4, codebook_size=16, kmeans_init=False, dead_code_ratio=0, dead_code_rows=8)
        )
        with torch.no_grad():
            vq.codebook.copy_(torch.randn(16, 4))
            vq.codebook[5] = 1e3  # far from the data: never chosen
        vq.train()
        for step in range(steps):
            if step == steps - 1:
                assert bool(vq.dead_codes()[5]) is False
                before = vq.codebook[5].clone()
            vq(torch.randn(1, 4, batch))
        assert not torch.equal(vq.codebook[5], before), f"batch {batch}: unused code 5 was not replaced"
