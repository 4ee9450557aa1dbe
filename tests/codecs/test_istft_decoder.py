import pytest
import torch

from codeclab.codecs.modules.istft import ISTFTDecoder, ISTFTDecoderConfig


def small(**kw) -> ISTFTDecoder:
    torch.manual_seed(0)
    return ISTFTDecoder(ISTFTDecoderConfig(dimension=16, hop=40, width=32, blocks=2, **kw)).eval()


def test_shape_is_frames_times_hop():
    dec = small()
    assert dec(torch.randn(3, 16, 25)).shape == (3, 1, 25 * 40)


def test_unit_spectrum_overlap_add_is_a_constant():
    """Hann windows at 4x overlap sum to a constant; the scaling makes a steady unit-DC frame stream give
    1.0 once every sample is covered by all its windows."""
    dec = small()
    frames = 12
    spec = torch.zeros(1, 1, dec.bins, frames, dtype=torch.complex64)
    spec[:, :, 0] = dec.config.n_fft  # irfft of n_fft at DC = 1.0 everywhere in the frame
    wav = dec.overlap_add(spec)[0, 0]
    steady = wav[: (frames - dec.config.lookahead_frames) * dec.config.hop]
    assert torch.allclose(steady, torch.ones_like(steady), atol=1e-5)


def test_lookahead_is_bounded():
    """Changing frames >= f never changes samples before (f - lookahead) * hop."""
    dec = small()
    z = torch.randn(1, 16, 30)
    base = dec(z)
    hop, look = dec.config.hop, dec.config.lookahead_frames
    for f in (5, 17, 29):
        changed = z.clone()
        changed[..., f:] = torch.randn_like(changed[..., f:])
        out = dec(changed)
        safe = (f - look) * hop
        assert torch.equal(out[..., :safe], base[..., :safe])
        assert not torch.equal(out, base)


def test_padded_batch_equals_single_items():
    dec = small()
    lengths = [30, 7, 19]
    items = [torch.randn(1, 16, n) for n in lengths]
    batch = torch.zeros(3, 16, 30)
    for i, item in enumerate(items):
        batch[i, :, : item.shape[-1]] = item
    batch[1, :, 7:] = 5.0  # garbage past an item's length must not leak into it
    with torch.no_grad():
        out = dec(batch, torch.tensor(lengths))
    for i, item in enumerate(items):
        alone = dec(item, torch.tensor([lengths[i]]))
        n = lengths[i] * dec.config.hop
        torch.testing.assert_close(out[i, :, :n], alone[0], rtol=0, atol=1e-5)
        assert float(out[i, :, n:].abs().sum()) == 0.0


def test_bad_config():
    with pytest.raises(ValueError, match="even"):
        ISTFTDecoderConfig(hop=41)
