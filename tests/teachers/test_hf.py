import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the transformers teachers need transformers")

from codeclab.teachers import load_teacher  # noqa: E402
from codeclab.teachers.hf import HFTeacher  # noqa: E402

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def small_conv(config_cls, **kw):
    return config_cls(
        **SMALL,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        **kw,
    )


@pytest.fixture(scope="module")
def hubert():
    return HFTeacher.from_config(small_conv(transformers.HubertConfig), layer=1)


def test_random_hubert_runs_at_fifty_frames_per_second(hubert):
    assert hubert.sample_rate == 16000 and hubert.frame_rate == 50.0 and hubert.dim == 32
    feats = hubert.features(0.1 * torch.randn(1, 1, 16000))
    # the conv front end: 400-sample receptive field, stride 320
    assert feats.shape == (1, (16000 - 400) // 320 + 1, 32)


def test_layers_are_hidden_states_and_avg_is_their_mean(hubert):
    wav = 0.1 * torch.randn(8000)
    with torch.no_grad():
        hidden = hubert.model(input_values=wav[None], output_hidden_states=True).hidden_states
    torch.testing.assert_close(hubert.item_features(wav), hidden[1][0])
    avg = HFTeacher(hubert.model, None, "avg", name="avg")
    torch.testing.assert_close(avg.item_features(wav), torch.stack(hidden[1:]).mean(0)[0])
    with pytest.raises(ValueError, match="layer must lie in"):
        HFTeacher(hubert.model, None, 7)


def test_batched_equals_single(hubert):
    wav = 0.1 * torch.randn(2, 1, 9600)
    batch = hubert.features(wav, torch.tensor([9600, 5000]))
    single = hubert.item_features(wav[1, 0, :5000])
    torch.testing.assert_close(batch[1, : single.shape[0]], single)
    assert bool((batch[1, single.shape[0] :] == 0).all())


@pytest.mark.parametrize("name", ["WavLMConfig", "Wav2Vec2Config", "Data2VecAudioConfig"])
def test_other_ssl_families_run(name):
    teacher = HFTeacher.from_config(small_conv(getattr(transformers, name)), layer="avg")
    assert teacher.frame_rate == 50.0
    assert teacher.item_features(0.1 * torch.randn(16000)).shape == (49, 32)


def test_w2v_bert_runs_on_filterbank_frames():
    config = transformers.Wav2Vec2BertConfig(**SMALL, output_hidden_size=32)
    teacher = HFTeacher.from_config(config, layer=2)
    assert teacher.frame_rate == 50.0
    feats = teacher.item_features(0.1 * torch.randn(16000))
    assert feats.shape[1] == 32 and abs(feats.shape[0] - 50) <= 2


def test_a_saved_model_directory_loads_with_a_layer(hubert, tmp_path):
    hubert.model.save_pretrained(tmp_path / "hubert")
    teacher = load_teacher(f"{tmp_path / 'hubert'}:1")
    assert isinstance(teacher, HFTeacher) and teacher.layer == 1
    wav = 0.1 * torch.randn(6400)
    torch.testing.assert_close(teacher.item_features(wav), hubert.item_features(wav))
    assert teacher.fingerprint() == hubert.fingerprint()


def test_unreachable_hub_ids_and_foreign_models_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="cannot load teacher"):
        HFTeacher.from_pretrained(str(tmp_path / "missing-dir"))
    bert = transformers.BertConfig(**SMALL)
    bert.save_pretrained(tmp_path / "bert")
    with pytest.raises(ValueError, match="not a supported teacher"):
        HFTeacher.from_pretrained(str(tmp_path / "bert"))
