import json
import math

import numpy as np
import pytest
import soundfile as sf

from codeclab.audio.signals import synthetic_speech
from codeclab.eval.lm_bench import LMBenchConfig, run_lm_bench
from codeclab.eval.probe import run_probe
from codeclab.eval.recon import CodecChoice, run_recon
from tests.token_stores import store_meta, write_store

META = store_meta(2, 64)


def make_store(path, make_codes, items=40):
    return write_store(path, META, (make_codes(i) for i in range(items)))


def test_report_over_two_tiny_codecs_renders_table_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        sf.write(data / f"x{i}.wav", synthetic_speech(1.0, 16000, seed=i).numpy()[0], 16000)
    report = run_recon(
        ["codeclab-tiny:n_q=1+4", "codeclab-tiny:seed=1,n_q=2"],
        [str(data)],
        tmp_path / "out",
        metrics=["si_sdr", "mel_distance"],
        random_init=True,
        log=lambda *_: None,
    )
    assert report["results"][0]["label"] == "original"  # the original audio's own row comes first
    rows = report["results"][1:]
    assert [r["label"] for r in rows] == ["codeclab-tiny:1", "codeclab-tiny:4", "codeclab-tiny:2"]
    assert all(r["nominal_kbps"] > 0 and r["entropy_kbps"] <= r["nominal_kbps"] + 1e-9 for r in rows)
    assert len(rows[1]["codebooks"]) == 4 and "dead_codes" in rows[1]["codebooks"][0]
    table = (tmp_path / "out" / "results.md").read_text()
    assert "codeclab-tiny:4" in table and "mel_distance" in table and "| original |" in table
    assert (tmp_path / "out" / "plots" / "mel_distance.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    prov = saved["provenance"]
    assert (
        prov["command"] and prov["codeclab_version"] and prov["machine"] and len(prov["data"]["sha256"]) == 64
    )
    assert prov["codecs"]["codeclab-tiny:n_q=1+4"]["random_init"] is True
    assert len(prov["codecs"]["codeclab-tiny:n_q=1+4"]["weights_sha256"]) == 64
    assert saved["metric_rates"]["si_sdr"] == 16000


def test_codec_choice_parsing():
    choice = CodecChoice.parse("dac-16khz:n_q=2+4,weights=/m", random_init_default=True)
    assert choice.n_q == [2, 4] and choice.weights == "/m" and not choice.random_init
    assert CodecChoice.parse("opus:bitrate=6000").series() == "opus"
    with pytest.raises(ValueError, match="unknown codec option"):
        CodecChoice.parse("opus:colour=red")


def test_codec_choice_loads_a_codec_directory(tiny_codec, tmp_path):
    from codeclab.catalog.loading import save_pretrained

    save_pretrained(tiny_codec, tmp_path / "codec")
    choice = CodecChoice.parse(str(tmp_path / "codec"), random_init_default=True)
    assert not choice.random_init  # a directory has its weights
    loaded = choice.load(roundtrip=True)
    assert loaded.config == tiny_codec.config and loaded.weights_sha256 is not None


def test_lm_bench_random_tokens_cost_log2_k_and_constant_tokens_nothing(tmp_path):
    rng = np.random.default_rng(0)
    random_store = make_store(tmp_path / "random", lambda i: rng.integers(0, 64, size=(2, 100)))
    constant_store = make_store(tmp_path / "constant", lambda i: np.full((2, 100), 7))
    cfg = LMBenchConfig(steps=120, dim=64, context_frames=32, batch_size=8)
    report = run_lm_bench([random_store, constant_store], tmp_path / "out", config=cfg, log=lambda *_: None)
    for row in report["results"]:
        if row["store"] == random_store:
            assert abs(row["bits_per_token"] - math.log2(64)) < 0.3, row
            assert row["bits_per_second"] == pytest.approx(sum(row["per_codebook_bits"]) * 50.0)
        else:
            assert row["bits_per_token"] < 0.1, row
    assert (tmp_path / "out" / "lm.md").is_file()


def test_probe_tells_a_phonetic_codebook_from_noise(tmp_path):
    """Codebook 1 carries the phone of each frame, codebook 2 is random: the probe must see it."""
    rng = np.random.default_rng(0)
    phones = ["a", "b", "c", "d", "sil"]
    rows, items = [], []
    for i in range(30):
        frames = 100
        labels = rng.integers(0, len(phones), size=frames // 10).repeat(10)
        codes = np.stack([labels * 3 + rng.integers(0, 3, size=frames), rng.integers(0, 64, size=frames)])
        segments = [[f / 50, (f + 1) / 50, phones[labels[f]]] for f in range(frames)]
        (tmp_path / f"u{i:03d}.phones.json").write_text(
            json.dumps({"sample_rate": 16000, "phones": segments})
        )
        items.append(codes)  # named u000, u001, ... as the rows
        rows.append(
            {
                "id": f"u{i:03d}",
                "path": "x.wav",
                "phones": f"u{i:03d}.phones.json",
                "split": "validation" if i % 5 == 0 else "train",
            }
        )
    write_store(tmp_path / "store", META, items)
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = run_probe(
        [str(tmp_path / "store")],
        tmp_path / "manifest.jsonl",
        tmp_path / "out",
        steps=200,
        log=lambda *_: None,
    )
    result = report["results"][0]
    assert result["per_codebook_accuracy"][0] == 1.0
    assert result["per_codebook_accuracy"][1] < result["majority_baseline"] + 0.15
    assert result["all_codebooks_accuracy"] > 0.95
    assert result["per_codebook_gain"][0] == 1.0 and result["per_codebook_gain"][1] < 0.2
    assert result["per_codebook_information"][0] > 0.9 and result["per_codebook_information"][1] < 0.05
    assert "codebook 1" in (tmp_path / "out" / "probe.md").read_text()


def test_heldout_information_is_one_for_a_phone_code_and_about_zero_for_noise_of_any_size():
    from codeclab.eval.probe import heldout_information

    rng = np.random.default_rng(3)
    train, test = rng.integers(0, 5, size=4000), rng.integers(0, 5, size=1000)
    assert heldout_information(train * 7, train, test * 7, test, 5) > 0.95
    for k in (16, 1024):  # an in-sample mutual information would grow with k
        value = heldout_information(
            rng.integers(0, k, size=4000), train, rng.integers(0, k, size=1000), test, 5
        )
        assert abs(value) < 0.05, (k, value)


def test_probe_on_unaligned_audio_with_teacher_labels(tmp_path, aligned_corpus, phone_teacher):
    """Real speech has no alignments: a phone teacher labels each frame. Tokenize the tone corpus with a
    random codec and probe it with the teacher's labels."""
    from codeclab.catalog.ref import CodecRef
    from codeclab.pipelines.tokenize import TokenizeOptions, tokenize_corpus

    tokenize_corpus(
        TokenizeOptions(
            inputs=[str(aligned_corpus / "manifest.jsonl")],
            out=tmp_path / "tok",
            codec=CodecRef("codeclab-tiny", random_init=True),
            workers=0,
        )
    )
    teacher_dir, _ = phone_teacher
    report = run_probe(
        [str(tmp_path / "tok")],
        None,
        tmp_path / "out",
        steps=20,
        log=lambda *_: None,
        labels=f"teacher:{teacher_dir}",
    )
    result = report["results"][0]
    assert result["labels"] == f"teacher:{teacher_dir}" and result["test_frames"] > 0
    assert -1 < result["per_codebook_information"][0] <= 1
    assert "not a forced alignment" in (tmp_path / "out" / "probe.md").read_text()


def test_bitrate_flags_name_a_codec_whose_quality_stalls_with_n_q():
    from codeclab.eval.recon import bitrate_flags

    better = {"mel_distance": False, "stoi": True}
    rows = [
        {"codec": "good", "n_q": q, "mel_distance": 1.0 / q, "stoi": 0.5 + 0.05 * q} for q in (1, 2, 4, 8)
    ] + [
        {"codec": "collapsed", "n_q": q, "mel_distance": 0.6 if q > 1 else 0.7, "stoi": 0.6}
        for q in (1, 2, 4, 8)
    ]
    flags = bitrate_flags(rows, better)
    assert not any(f.startswith("good") for f in flags)
    assert any(f.startswith("collapsed: mel_distance") and "2->4" in f and "1->2" not in f for f in flags)
    assert any(f.startswith("collapsed: stoi") and "1->2" in f for f in flags)


class Broken:
    """A round-trip codec that returns the input, except silence, NaN or half the audio on some items."""

    def __init__(self, faults: dict[int, str]) -> None:
        self.faults, self.calls, self.sample_rate, self.channels, self.name = faults, 0, 16000, 1, "broken"

    def bitrate(self, n_q=None):
        return 8000.0

    def roundtrip(self, wav, lengths=None):
        import torch

        from codeclab.codecs.roundtrip import RoundTrip

        fault, self.calls = self.faults.get(self.calls), self.calls + 1
        out = wav.clone()
        if fault == "silence":
            out.zero_()
        elif fault == "nan":
            out.fill_(float("nan"))
        elif fault == "truncated":
            out = out[..., : out.shape[-1] // 2]
        seconds = wav.shape[-1] / 16000
        return RoundTrip(out, torch.tensor([1000 * 8 / seconds]), torch.tensor([1000]), torch.tensor([1100]))


def test_failed_items_are_counted_and_never_make_a_codec_look_better(tmp_path, monkeypatch):
    """Silence, NaN and a truncated output on 3 of 5 items: each item is named as failed in items.jsonl,
    counted in the summary, and every mean is worse than that of the codec that returns the input."""
    from codeclab.codecs.roundtrip import RoundTripCodec
    from codeclab.corpora.manifest import discover
    from codeclab.eval import recon

    monkeypatch.setattr(recon, "RoundTripCodec", (RoundTripCodec, Broken))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        sf.write(data / f"x{i}.wav", synthetic_speech(1.0 + 0.25 * i, 16000, seed=i).numpy()[0], 16000)
    items = discover([str(data)])
    refs = {it.id: recon.load_audio(it.path, 16000, 1)[0] for it in items}
    names = ["si_sdr", "mel_distance"]
    rows = {}
    for label, faults in (("good", {}), ("bad", {0: "silence", 2: "nan", 4: "truncated"})):
        choice = CodecChoice.parse("opus")
        measured = recon.measure(
            choice, Broken(faults), None, items, refs, {it.id: {} for it in items}, names, 16000
        )
        rows[label] = recon.aggregate(measured, len(items))
        rows[label]["_items"] = measured.items
    good, bad = rows["good"], rows["bad"]
    assert bad["si_sdr_failed"] == 2 and bad["si_sdr_scored"] == 3  # truncation is scored (and penalised)
    assert bad["si_sdr"] < good["si_sdr"] and bad["mel_distance"] > good["mel_distance"]
    assert good["si_sdr_failed"] == 0 and good["si_sdr_scored"] == 5
    failed = {row["item"]: row["failed"] for row in bad["_items"]}
    assert "silent" in failed["x0.wav"]["si_sdr"] and "NaN" in failed["x2.wav"]["mel_distance"]
    low, high = bad["si_sdr_ci95"]
    assert low <= bad["si_sdr"] <= high
    # bitrate: total payload bits over total seconds (not the mean of per-item rates)
    seconds = sum(1.0 + 0.25 * i for i in range(5))
    assert bad["bitrate_kbps"] == pytest.approx(5 * 1000 * 8 / seconds / 1000)
    assert bad["container_kbps"] == pytest.approx(5 * 1100 * 8 / seconds / 1000)


def test_lm_bench_reports_unigram_and_bigram_baselines_beside_the_transformer(tmp_path):
    """A store whose codes count up frame by frame (code_t = code_t-1 + 1 mod K from a random start):
    the unigram sees uniform codes (log2 K bits), the bigram predicts them almost exactly, and the
    transformer rows carry their difference to the better baseline (here the bigram)."""
    rng = np.random.default_rng(1)

    def counting(i):
        start = rng.integers(0, 64, size=(2, 1))
        return (start + np.arange(100)[None]) % 64

    store = make_store(tmp_path / "counting", counting, items=30)
    cfg = LMBenchConfig(steps=30, dim=32, context_frames=16, batch_size=4)
    report = run_lm_bench([store], tmp_path / "out", patterns=("flatten",), config=cfg, log=lambda *_: None)
    rows = {row["pattern"]: row for row in report["results"]}
    assert set(rows) == {"unigram", "bigram", "flatten"}
    assert rows["unigram"]["bits_per_token"] > 5.5 and rows["bigram"]["bits_per_token"] < 0.5
    assert rows["flatten"]["best_ngram"] == "bigram"
    assert rows["flatten"]["vs_ngram_bits_per_second"] == pytest.approx(
        rows["flatten"]["bits_per_second"] - rows["bigram"]["bits_per_second"]
    )
    assert rows["flatten"]["held_out_items"] == rows["bigram"]["held_out_items"] == 3  # 10 % of 30
    assert "unigram" in (tmp_path / "out" / "lm.md").read_text()


def test_ngram_bits_of_random_codes_are_log2_k():
    from codeclab.eval.ngram import ngram_baselines

    rng = np.random.default_rng(2)
    train = [rng.integers(0, 16, size=(1, 2000))]
    held = [rng.integers(0, 16, size=(1, 500))]
    result = ngram_baselines(train, held, 16)
    assert result["unigram_bits"][0] == pytest.approx(4.0, abs=0.05)
    assert 4.0 - 0.05 < result["bigram_bits"][0] < 4.0 + 0.15  # sparse pairs cost a little more
    assert result["codebooks"][0]["usage"] == 1.0 and result["codebooks"][0]["entropy_bits"] == pytest.approx(
        4.0, abs=0.02
    )


def test_plot_ticks_cover_every_decade_and_tested_bitrate(tmp_path):
    pytest.importorskip("matplotlib")
    from codeclab.eval.report import _bitrate_ticks, plot_curves

    ticks = _bitrate_ticks([0.5, 3.2, 6.1])
    assert {0.5, 1, 2, 3.2, 5, 6.1} <= set(ticks)
    rows = [
        {"series": "a", "bitrate_kbps": 1.0, "stoi": 0.6, "stoi_failed": 2},
        {"series": "a", "bitrate_kbps": 2.0, "stoi": 0.7},
        {"series": "never scored", "bitrate_kbps": 4.0, "stoi": float("nan")},
    ]
    paths = plot_curves(rows, ["stoi"], "bitrate_kbps", "series", tmp_path, {}, {"stoi": True})
    assert [p.name for p in paths] == ["stoi.png", "all.png"] and paths[0].stat().st_size > 1000


def test_lm_bench_scores_a_store_at_fewer_codebooks_and_through_its_bpe(tmp_path):
    """--n-q 1 scores codebook 1 alone; a BPE over those random codes needs fewer tokens per second but
    cannot make the audio cheaper than its information: about log2 K bits per code, i.e. 300 bits/s at
    50 Hz, whatever the tokenization (and BPE rows are scored on the codes they stand for)."""
    pytest.importorskip("tokenizers", reason="the llm extra (tokenizers) is not installed")
    from codeclab.tokens.bpe import train_bpe

    rng = np.random.default_rng(2)
    store = make_store(tmp_path / "random", lambda i: rng.integers(0, 64, size=(2, 100)))
    bpe_dir = tmp_path / "bpe"
    train_bpe(store, 5 + 64 + 150, bpe_dir, n_q=1)
    other = write_store(tmp_path / "other", store_meta(2, 64, codec="y"), [rng.integers(0, 64, (2, 100))] * 4)
    train_bpe(other, 5 + 64 + 2, tmp_path / "other-bpe", n_q=1)  # another codec's: not scored here
    cfg = LMBenchConfig(steps=150, dim=64, context_frames=32, batch_size=8)
    report = run_lm_bench(
        [store],
        tmp_path / "out",
        patterns=("flatten",),
        config=cfg,
        log=lambda *_: None,
        n_qs=[1, 2],
        bpes=[str(bpe_dir), str(tmp_path / "other-bpe")],
    )
    rows = {(row["pattern"], row["n_q"]): row for row in report["results"]}
    assert {("flatten", 1), ("flatten", 2), ("bigram", 1), ("bpe-219", 1)} <= set(rows)
    assert ("bpe-71", 1) not in rows
    codes, bpe = rows[("flatten", 1)], rows[("bpe-219", 1)]
    assert codes["tokens_per_second"] == 50.0 and rows[("flatten", 2)]["tokens_per_second"] == 100.0
    assert bpe["tokens_per_second"] < 45.0
    assert 300 * 0.97 < bpe["bits_per_second"] < 300 * 1.15, bpe
    assert abs(codes["bits_per_second"] - 300) < 300 * 0.1, codes
    assert bpe["vs_ngram_bits_per_second"] == pytest.approx(
        bpe["bits_per_second"]
        - min(rows[("unigram", 1)]["bits_per_second"], rows[("bigram", 1)]["bits_per_second"])
    )


def test_a_failed_item_never_scores_better_than_any_scored_item():
    """For every metric: WER's nominal worst (1.0) is better than a garbled 2.3, F0 RMSE's 1200 cents
    better than 1500; a failed item is floored to the worst scored value of the run."""
    from codeclab.eval import metrics as M
    from codeclab.eval.recon import Measured, floor_failed_scores

    def setting(rows):
        measured = Measured(CodecChoice.parse("opus"), None, None)
        measured.items = rows
        return measured

    scored, failed = {"failed": {}, "skipped": {}}, {"failed": {}, "skipped": {}}
    for name, spec in M.SPECS.items():
        nominal = spec.worst if spec.worst is not None else 5.0
        # a scored value beyond the nominal worst, in the bad direction
        scored[name] = nominal - 3.0 if spec.higher_is_better else nominal * 2 + 1.0
        failed[name] = nominal
        failed["failed"][name] = "the output is silent"
    settings = [setting([dict(scored)]), setting([dict(failed)])]
    floor_failed_scores(settings)
    row = settings[1].items[0]
    for name, spec in M.SPECS.items():
        worse_or_equal = row[name] <= scored[name] if spec.higher_is_better else row[name] >= scored[name]
        assert worse_or_equal, (name, row[name], scored[name])
        assert settings[1].scores[name] == [row[name]]


def test_the_original_audio_has_its_own_row_in_every_table(tmp_path):
    from codeclab.eval.recon import Measured, original_row

    measured = Measured(CodecChoice.parse("opus"), None, None)
    measured.items = [
        {"wer_reference": 0.5, "dnsmos_reference": 3.2, "failed": {}, "skipped": {}},
        {"wer_reference": 1.5, "dnsmos_reference": 3.4, "failed": {}, "skipped": {}},
    ]
    row = original_row(measured, 2)
    assert row["label"] == "original" and row["reference"] is True
    assert row["wer"] == pytest.approx(1.0) and row["dnsmos"] == pytest.approx(3.3)
    assert "mel_distance" not in row  # no distance of the original to itself
