import json

import pytest
import torch

import codeclab
from codeclab.catalog.loading import load_pretrained, save_pretrained
from codeclab.codecs.pretrained import FORMAT_VERSION, PEER_FORMAT_VERSION


def test_save_load_round_trip_gives_identical_codes(tmp_path, speech_codec):
    save_pretrained(speech_codec, tmp_path / "codec")
    meta = json.loads((tmp_path / "codec" / "config.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and len(meta["weights_sha256"]) == 64
    loaded = codeclab.load_codec(tmp_path / "codec")
    wav = torch.randn(2, 1, 7777) * 0.2
    assert torch.equal(loaded.encode(wav).codes, speech_codec.encode(wav).codes)
    assert loaded.weights_sha256 == meta["weights_sha256"]
    assert torch.equal(loaded.decode(loaded.encode(wav)), speech_codec.decode(speech_codec.encode(wav)))


def test_trained_state_survives(tmp_path, tiny_codec):
    from codeclab.codecs import NeuralCodec

    codec = NeuralCodec.from_config(tiny_codec.config).train()
    for _ in range(8):  # k-means init (once 2 x K rows have arrived) changes codebooks and buffers
        codec(torch.randn(2, 1, 4000) * 0.2)
    codec.eval()
    save_pretrained(codec, tmp_path)
    loaded = load_pretrained(tmp_path)
    assert bool(loaded.quantizer.layers[0].initted)
    wav = torch.randn(1, 1, 3000) * 0.2
    assert torch.equal(loaded.encode(wav).codes, codec.encode(wav).codes)


def test_sha256_mismatch_is_a_clear_error(tmp_path, tiny_codec):
    save_pretrained(tiny_codec, tmp_path)
    weights = tmp_path / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        load_pretrained(tmp_path)


def test_newer_format_and_missing_files(tmp_path, tiny_codec):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_pretrained(tmp_path)
    save_pretrained(tiny_codec, tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["format_version"] = PEER_FORMAT_VERSION + 1  # the newest format this codeclab reads, plus one
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="newer"):
        load_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_pretrained(tmp_path)


def test_preset_weights_must_match_the_preset(tmp_path, tiny_codec):
    save_pretrained(tiny_codec, tmp_path)
    loaded = codeclab.load_codec("codeclab-tiny", weights=tmp_path)
    assert loaded.name == "codeclab-tiny"
    with pytest.raises(ValueError, match="not the codeclab-16k-speech preset"):
        codeclab.load_codec("codeclab-16k-speech", weights=tmp_path)


def test_fp16_storage_halves_the_file_and_loads_into_fp32(tmp_path, tiny_codec):
    save_pretrained(tiny_codec, tmp_path / "fp32")
    save_pretrained(tiny_codec, tmp_path / "fp16", storage_dtype=torch.float16)
    size32 = (tmp_path / "fp32" / "model.safetensors").stat().st_size
    size16 = (tmp_path / "fp16" / "model.safetensors").stat().st_size
    assert size16 < 0.6 * size32
    loaded = load_pretrained(tmp_path / "fp16")
    assert json.loads((tmp_path / "fp16" / "config.json").read_text())["storage_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert bool(loaded.quantizer.layers[0].initted)  # non-float buffers keep their type


def test_missing_weights_file_is_named(tmp_path, tiny_codec):
    save_pretrained(tiny_codec, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_pretrained(tmp_path)


def test_weights_of_another_preset_version_are_refused(tmp_path):
    from codeclab.catalog.presets import preset_version, speech_16k, speech_16k_v3
    from codeclab.codecs.neural import NeuralCodec

    current = speech_16k()  # version 3 had an inverse-STFT head and no F0 where version 4 has both
    save_pretrained(
        NeuralCodec.from_config(speech_16k_v3()),
        tmp_path,
        extra={"preset": "codeclab-16k-speech", "preset_version": 3},
    )
    with pytest.raises(
        ValueError,
        match=f"version 3 of the codeclab-16k-speech preset.*version {preset_version('codeclab-16k-speech')}",
    ):
        codeclab.load_codec("codeclab-16k-speech", weights=tmp_path)
    # the same architecture under another recorded version loads: the architecture decides
    codec = codeclab.load_codec("codeclab-16k-speech", random_init=True)
    save_pretrained(codec, tmp_path, extra={"preset": "codeclab-16k-speech", "preset_version": 1})
    assert codeclab.load_codec("codeclab-16k-speech", weights=tmp_path).config == current


def test_weights_written_before_rvq_centring_still_load_and_code_the_same(tmp_path, tiny_codec):
    import copy

    from safetensors.torch import load_file, save_file

    from codeclab._files import sha256_file

    old = copy.deepcopy(tiny_codec)  # a codec as it ran before centring: no offset
    old.quantizer.latent_mean.zero_()
    save_pretrained(old, tmp_path)
    weights = tmp_path / "model.safetensors"
    state = {k: v for k, v in load_file(weights).items() if not k.endswith(("latent_mean", "mean_initted"))}
    save_file(state, weights, metadata={"format": "codeclab-codec", "format_version": "1"})
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["weights_sha256"] = sha256_file(weights)
    meta["config"]["quantizer"]["params"].pop("center")  # a config from before the field existed
    meta["config"]["quantizer"]["params"].pop("center_decay")
    (tmp_path / "config.json").write_text(json.dumps(meta))
    loaded = load_pretrained(tmp_path)
    assert float(loaded.quantizer.latent_mean.abs().sum()) == 0.0
    wav = torch.randn(1, 1, 4000) * 0.2
    assert torch.equal(loaded.encode(wav).codes, old.encode(wav).codes)
    assert torch.equal(loaded.decode(loaded.encode(wav)), old.decode(old.encode(wav)))
