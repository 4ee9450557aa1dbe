"""Peers whose published architecture takes 15-20 s to build at random (X-Codec 2 and NeuCodec carry a
600M-parameter w2v-BERT 2.0), built here with the same classes, rates, hop and codebook but small widths
and depths, so the default suite runs their adapters in seconds. Slow tests build the published ones."""

from __future__ import annotations

import torch

SMALL_W2V_BERT = dict(
    model_type="wav2vec2-bert",
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    output_hidden_size=64,
    conv_depthwise_kernel_size=5,
)
SMALL_BACKBONE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=32,
    encoder_hidden_size=8,
    quantization_dim=128,  # hidden_size + the semantic model's
    semantic_model_config=SMALL_W2V_BERT,
)
SMALL = {"xcodec2": "Xcodec2", "neucodec": "NeuCodec"}


def small_peer(name: str, seed: int = 0):
    """The `name` adapter (xcodec2 or neucodec) around a small random-init model."""
    import transformers

    from codeclab.catalog.peers.w2v_bert_codecs import NeuCodecCodec, Xcodec2Codec

    prefix = SMALL[name]
    config = getattr(transformers, f"{prefix}Config")(**SMALL_BACKBONE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = getattr(transformers, f"{prefix}Model")(config)
    cls = Xcodec2Codec if name == "xcodec2" else NeuCodecCodec
    return cls(model, name, random_init=True, weights=None)
