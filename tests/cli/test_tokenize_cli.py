import io

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from codeclab.cli.app import app
from codeclab.tokens.clab import read_clab
from codeclab.tokens.store import TokenStore
from tests.corpus_files import BAD, GOOD, write_bad, write_good

runner = CliRunner()
TINY = ["--codec", "codeclab-tiny", "--random-init"]


def test_tokenize_exit_codes_and_detokenize(tmp_path):
    corpus = tmp_path / "c"
    write_good(corpus)
    result = runner.invoke(
        app, ["tokenize", str(corpus), "--out", str(tmp_path / "s"), "--workers", "0", *TINY]
    )
    assert result.exit_code == 0, result.output
    assert f"{len(GOOD)} tokenized" in result.output
    write_bad(corpus)
    result = runner.invoke(
        app, ["tokenize", str(corpus), "--out", str(tmp_path / "s"), "--workers", "0", "--resume", *TINY]
    )
    assert result.exit_code == 1 and "errors.jsonl" in result.output  # some files failed
    assert len(TokenStore(tmp_path / "s").errors()) == len(BAD)

    result = runner.invoke(
        app, ["detokenize", str(tmp_path / "s"), "--out", str(tmp_path / "wav"), "--ids", "a/clip1.flac"]
    )
    assert result.exit_code == 0, result.output
    audio, sr = sf.read(tmp_path / "wav" / "a" / "clip1.wav")
    assert sr == 16000 and abs(len(audio) - 0.9 * 16000) <= 2


def test_shards_and_merge_command(tmp_path):
    corpus = tmp_path / "c"
    write_good(corpus)
    out = str(tmp_path / "s")
    for shard in ("0/2", "1/2"):
        result = runner.invoke(
            app, ["tokenize", str(corpus), "--out", out, "--shard", shard, "--workers", "0", *TINY]
        )
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["tokenize", "--merge", "--out", out])
    assert result.exit_code == 0 and f"{len(GOOD)} items" in result.output
    bad = runner.invoke(app, ["tokenize", str(corpus), "--out", out, "--shard", "2/2", *TINY])
    assert bad.exit_code == 2


def test_usage_errors_are_clear(tmp_path):
    result = runner.invoke(app, ["tokenize", str(tmp_path / "missing"), "--out", str(tmp_path / "s"), *TINY])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(
        app, ["tokenize", str(tmp_path), "--out", str(tmp_path / "s"), "--codec", "codeclab-tiny"]
    )
    assert result.exit_code == 2 and "--random-init" in result.output


def test_encode_decode_clab(tmp_path):
    x = np.sin(np.arange(16000 * 2) / 16000 * 2 * np.pi * 220).astype(np.float32) * 0.5
    sf.write(tmp_path / "in.wav", x, 16000)
    result = runner.invoke(
        app, ["encode", str(tmp_path / "in.wav"), str(tmp_path / "x.clab"), *TINY, "--n-q", "3"]
    )
    assert result.exit_code == 0, result.output
    clab = read_clab(tmp_path / "x.clab")
    assert clab.codes.shape == (3, 100) and clab.audio_length == 32000
    result = runner.invoke(app, ["decode", str(tmp_path / "x.clab"), str(tmp_path / "out.wav")])
    assert result.exit_code == 0, result.output
    assert sf.info(tmp_path / "out.wav").frames == 32000
    result = runner.invoke(app, ["decode", str(tmp_path / "in.wav"), str(tmp_path / "o2.wav")])
    assert result.exit_code == 2 and "not a .clab file" in result.output
    blob = bytearray((tmp_path / "x.clab").read_bytes())
    (tmp_path / "cut.clab").write_bytes(bytes(blob[:-10]))  # into the end packet
    result = runner.invoke(app, ["decode", str(tmp_path / "cut.clab"), str(tmp_path / "o3.wav")])
    assert result.exit_code == 0 and "end packet is missing" in result.stderr  # the header gave the length
    assert sf.info(tmp_path / "o3.wav").frames == 32000
    result = runner.invoke(app, ["decode", str(tmp_path / "cut.clab"), str(tmp_path / "o4.wav"), "--strict"])
    assert result.exit_code == 2 and "truncated packet" in result.output


def test_decode_with_the_wrong_codec_is_refused(tmp_path):
    sf.write(tmp_path / "in.wav", np.zeros(8000, dtype=np.float32), 16000)
    runner.invoke(app, ["encode", str(tmp_path / "in.wav"), str(tmp_path / "x.clab"), *TINY])
    result = runner.invoke(
        app, ["decode", str(tmp_path / "x.clab"), str(tmp_path / "o.wav"), *TINY[:2], "--random-init"]
    )
    assert result.exit_code == 0, result.output  # the same codec, named explicitly
    clab_other = ["--codec", "codeclab-tiny", "--random-init"]
    runner.invoke(
        app, ["encode", str(tmp_path / "in.wav"), str(tmp_path / "y.clab"), *clab_other, "--seed", "3"]
    )
    result = runner.invoke(app, ["decode", str(tmp_path / "y.clab"), str(tmp_path / "o.wav"), *TINY])
    assert result.exit_code == 2 and "weights sha256" in result.output


def test_export_commands(tmp_path):
    import pytest

    corpus = tmp_path / "c"
    write_good(corpus)
    runner.invoke(app, ["tokenize", str(corpus), "--out", str(tmp_path / "s"), "--workers", "0", *TINY])
    args = ["export", "parquet", str(tmp_path / "s"), "--out", str(tmp_path / "pq"), "--pattern", "delay"]
    result = runner.invoke(app, args)
    assert (
        result.exit_code == 2 and "--vocab TOKENIZER_DIR" in result.output and "--audio-only" in result.output
    )
    result = runner.invoke(app, [*args, "--audio-only"])
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "pq" / "data").glob("train-*.parquet"))
    pytest.importorskip("transformers")

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(
        ["a tiny corpus"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"])
    )
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path / "base")
    result = runner.invoke(
        app,
        [
            "export",
            "hf-tokenizer",
            "--base",
            str(tmp_path / "base"),
            "--store",
            str(tmp_path / "s"),
            "--out",
            str(tmp_path / "tok"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "4 x 64 audio tokens" in result.output
    result = runner.invoke(
        app, ["export", "hf-tokenizer", "--base", str(tmp_path / "base"), "--out", str(tmp_path / "t2")]
    )
    assert result.exit_code == 2 and "--codec" in result.output


def test_train_command_runs_and_resumes(tmp_path):
    corpus = tmp_path / "c"
    write_good(corpus)
    args = [
        "train",
        "--preset",
        "codeclab-tiny",
        "--data",
        str(corpus),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--segment-seconds",
        "0.3",
        "--device",
        "cpu",
        "--set",
        "num_workers=0",
        "--set",
        "disc_width=0.05",
        "--set",
        "validate_every=1000",
    ]
    result = runner.invoke(app, args + ["--stop-after", "2"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "checkpoints" / "latest.json").is_file() and not (
        tmp_path / "run" / "codec"
    ).exists()
    result = runner.invoke(app, args + ["--resume"])
    assert result.exit_code == 0, result.output
    assert "codec saved" in result.output
    bad = runner.invoke(app, args + ["--set", "nonsense=1"])
    assert bad.exit_code == 2 and "unknown training setting" in bad.output
    peer = runner.invoke(
        app, ["train", "--preset", "mimi", "--data", str(corpus), "--out", str(tmp_path / "x")]
    )
    assert peer.exit_code == 2 and "peer codec" in peer.output


def test_bench_commands(tmp_path):
    import json

    data = tmp_path / "d"
    data.mkdir()
    sf.write(
        data / "a.wav", np.sin(np.arange(16000) / 16000 * 2 * np.pi * 180).astype(np.float32) * 0.4, 16000
    )
    result = runner.invoke(
        app,
        [
            "bench",
            "recon",
            "--codec",
            "codeclab-tiny",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "r"),
            "--metrics",
            "si_sdr,mel_distance",
            "--random-init",
            "--n-q",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["provenance"]["command"] and saved["provenance"]["machine"]
    assert [r["n_q"] for r in saved["results"] if not r.get("reference")] == [2]
    result = runner.invoke(
        app, ["bench", "recon", "--codec", "codeclab-tiny", "--data", str(data), "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "--random-init" in result.output
    result = runner.invoke(
        app,
        [
            "bench",
            "speed",
            "--codec",
            "codeclab-tiny",
            "--random-init",
            "--seconds",
            "1",
            "--batch",
            "1",
            "--reps",
            "1",
            "--out",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 0 and (tmp_path / "s" / "speed.md").is_file()


def test_tar_shards_in_and_lhotse_and_webdataset_out(tmp_path):
    """`codeclab tokenize 'shards/{0..1}.tar'` (quoted: codeclab expands the braces), then both exports."""
    wds = pytest.importorskip("webdataset")
    (tmp_path / "shards").mkdir()
    for shard in range(2):
        with wds.TarWriter(str(tmp_path / "shards" / f"{shard}.tar")) as sink:
            x = (0.1 * np.random.default_rng(shard).standard_normal(8000)).astype(np.float32)
            buffer = io.BytesIO()
            sf.write(buffer, x, 16000, format="WAV")
            sink.write(
                {"__key__": f"spk{shard}/utt", "wav": buffer.getvalue(), "json": {"speaker": str(shard)}}
            )
    out = str(tmp_path / "s")
    result = runner.invoke(app, ["tokenize", str(tmp_path / "shards" / "{0..1}.tar"), "--out", out, *TINY])
    assert result.exit_code == 0, result.output
    assert TokenStore(out)["spk1/utt"].meta == {"speaker": "1"}
    result = runner.invoke(
        app, ["export", "webdataset", out, "--out", str(tmp_path / "w"), "--shard-size", "1"]
    )
    assert result.exit_code == 0 and "shard-{000000..000001}.tar" in result.output, result.output
    result = runner.invoke(app, ["export", "lhotse", out, "--out", str(tmp_path / "l")])
    assert result.exit_code == 0 and (tmp_path / "l" / "cuts.jsonl.gz").is_file(), result.output
    result = runner.invoke(app, ["export", "lhotse", out, "--out", str(tmp_path / "l")])
    assert result.exit_code != 0 and "not an empty directory" in result.output


@pytest.mark.parametrize(
    ("value", "message"),
    [("1,two", "--bucket-seconds: expected comma-separated seconds"), ("1,-2", "--bucket-seconds")],
)
def test_bad_bucket_seconds_are_named(tmp_path, value, message):
    corpus = tmp_path / "c"
    write_good(corpus)
    args = ["tokenize", str(corpus), "--out", str(tmp_path / "s"), "--bucket-seconds", value, *TINY]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_bucket_seconds_with_a_codec_that_batches_itself_is_refused(tmp_path):
    corpus = tmp_path / "c"
    write_good(corpus)
    args = ["tokenize", str(corpus), "--out", str(tmp_path / "s"), "--workers", "0", "--bucket-seconds", "1"]
    result = runner.invoke(app, [*args, *TINY])
    assert result.exit_code != 0 and "only peers that code item by item pad to buckets" in result.output
