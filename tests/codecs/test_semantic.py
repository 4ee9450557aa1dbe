import pytest
import torch

from codeclab.codecs.modules.seanet import SEANetConfig
from codeclab.codecs.neural import CodecConfig, NeuralCodec
from codeclab.codecs.semantic import LOSSES, SemanticConfig, semantic_loss
from codeclab.quantizers import RVQConfig


@pytest.mark.parametrize("kind", LOSSES)
def test_each_loss_is_zero_for_identical_features_and_grows_with_perturbation(kind):
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(2, 30, 8, generator=gen)
    noise = torch.randn(2, 30, 8, generator=gen)
    assert semantic_loss(kind, target, target).abs() < 1e-6
    values = [float(semantic_loss(kind, target + scale * noise, target)) for scale in (0.1, 0.5, 2.0)]
    assert 0 < values[0] < values[1] < values[2], values


@pytest.mark.parametrize("kind", LOSSES)
def test_masked_frames_do_not_count(kind):
    gen = torch.Generator().manual_seed(1)
    target = torch.randn(2, 20, 6, generator=gen)
    pred = target.clone()
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[:, 15:] = False
    pred[:, 15:] += 5 * torch.randn(2, 5, 6, generator=gen)  # garbage past the valid frames
    assert semantic_loss(kind, pred, target, mask).abs() < 1e-6
    assert semantic_loss(kind, pred, target) > 1e-3


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="teacher features"):
        semantic_loss("mse", torch.zeros(1, 5, 4), torch.zeros(1, 6, 4))


def config(loss="cosine", codebooks=1, codebook_dim=None, ema=True) -> CodecConfig:
    ratios = [2, 4, 5, 8]
    base = CodecConfig(
        16000,
        SEANetConfig(dimension=16, n_filters=4, ratios=ratios, causal=True),
        SEANetConfig(dimension=16, n_filters=4, ratios=ratios, causal=True),
        RVQConfig(dim=16, codebook_size=32, num_quantizers=3, codebook_dim=codebook_dim, ema=ema),
    )
    return base.with_semantic(SemanticConfig("teacher", teacher_dim=7, codebooks=codebooks, loss=loss))


def grads_after_semantic_backward(codec: NeuralCodec) -> dict[str, float]:
    torch.manual_seed(0)
    codec.train()
    out = codec(0.1 * torch.randn(2, 1, 6400))
    semantic_loss(codec.config.semantic.loss, out.semantic, torch.randn_like(out.semantic)).backward()
    return {n: (0.0 if p.grad is None else float(p.grad.abs().sum())) for n, p in codec.named_parameters()}


def test_semantic_gradient_reaches_encoder_and_head_but_not_decoder_or_later_codebooks():
    torch.manual_seed(0)
    codec = NeuralCodec.from_config(config(codebook_dim=4, ema=False))
    grads = grads_after_semantic_backward(codec)
    assert sum(v for n, v in grads.items() if n.startswith("encoder.")) > 0
    assert sum(v for n, v in grads.items() if n.startswith("semantic_head.")) > 0
    assert all(v == 0 for n, v in grads.items() if n.startswith("decoder."))
    # stage 1's projection carries the head's input; stages 2 and 3 take no part in it
    assert grads["quantizer.layers.0.in_proj.weight"] > 0
    assert all(
        v == 0 for n, v in grads.items() if n.startswith(("quantizer.layers.1.", "quantizer.layers.2."))
    )
    # codebooks learn from their codebook loss only (straight-through): the head does not move them
    assert grads["quantizer.layers.0.codebook"] == 0


def test_two_codebook_head_reaches_the_second_stage():
    torch.manual_seed(0)
    grads = grads_after_semantic_backward(
        NeuralCodec.from_config(config(codebooks=2, codebook_dim=4, ema=False))
    )
    assert grads["quantizer.layers.1.in_proj.weight"] > 0
    assert all(v == 0 for n, v in grads.items() if n.startswith("quantizer.layers.2."))


def test_split_recipe_sends_the_semantic_gradient_through_the_semantic_branch_only():
    torch.manual_seed(0)
    codec = NeuralCodec.from_config(config(loss="split", codebook_dim=4, ema=False))
    assert type(codec.quantizer).__name__ == "SplitRVQ" and codec.num_codebooks == 3
    grads = grads_after_semantic_backward(codec)
    assert grads["quantizer.semantic.in_proj.weight"] > 0
    assert all(v == 0 for n, v in grads.items() if n.startswith("quantizer.acoustic."))
    assert sum(v for n, v in grads.items() if n.startswith("encoder.")) > 0


def test_encode_and_decode_ignore_the_head_and_the_config_records_the_recipe(tmp_path):
    from codeclab import load_codec
    from codeclab.catalog.loading import save_pretrained

    torch.manual_seed(0)
    distilled = NeuralCodec.from_config(config()).eval()
    plain = NeuralCodec.from_config(config().with_semantic(None)).eval()
    state = {k: v for k, v in distilled.state_dict().items() if not k.startswith("semantic_head.")}
    plain.load_state_dict(state)
    wav = 0.1 * torch.randn(2, 1, 5000)
    assert torch.equal(distilled.encode(wav).codes, plain.encode(wav).codes)
    torch.testing.assert_close(distilled.decode(distilled.encode(wav)), plain.decode(plain.encode(wav)))
    save_pretrained(distilled, tmp_path / "c")
    loaded = load_codec(str(tmp_path / "c"))
    assert loaded.config.semantic == distilled.config.semantic
    assert loaded.describe()["semantic"]["loss"] == "cosine"
    assert torch.equal(loaded.encode(wav).codes, distilled.encode(wav).codes)


def test_invalid_recipes_are_clear_errors():
    with pytest.raises(ValueError, match="semantic loss must be one of"):
        SemanticConfig("t", 4, loss="kl")
    with pytest.raises(ValueError, match="reads 4 codebooks"):
        config(codebooks=4)
    from codeclab.quantizers import FSQConfig

    with pytest.raises(ValueError, match="vq, rvq or split"):
        CodecConfig(
            16000,
            SEANetConfig(dimension=6, n_filters=4, ratios=[2, 4, 5, 8]),
            SEANetConfig(dimension=6, n_filters=4, ratios=[2, 4, 5, 8]),
            FSQConfig(dim=6, levels=[5, 5, 5]),
            SemanticConfig("t", 4),
        )
