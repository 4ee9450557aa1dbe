"""The one codec grammar: NAME[@WEIGHTS][:N][,key=value], a directory, and the teacher's SOURCE:LAYER."""

from __future__ import annotations

import pytest

from codeclab.catalog.ref import CodecRef, split_ref
from codeclab.teachers import split_spec


@pytest.mark.parametrize(
    "text, name, weights, n_q, random_init, seed, options",
    [
        ("codeclab-16k-speech", "codeclab-16k-speech", None, None, False, 0, {}),
        ("codeclab-16k-speech:4", "codeclab-16k-speech", None, [4], False, 0, {}),
        ("codeclab-16k-speech@runs/a/codec", "codeclab-16k-speech", "runs/a/codec", None, False, 0, {}),
        ("codeclab-16k-speech@runs/a/codec:2+8", "codeclab-16k-speech", "runs/a/codec", [2, 8], False, 0, {}),
        ("codeclab-tiny:random_init=true,seed=3", "codeclab-tiny", None, None, True, 3, {}),
        ("codeclab-tiny:4,random_init=yes", "codeclab-tiny", None, [4], True, 0, {}),
        ("codeclab-tiny:n_q=1+2,weights=w", "codeclab-tiny", "w", [1, 2], False, 0, {}),
        ("opus:bitrate=6000", "opus", None, None, False, 0, {"bitrate": 6000}),
        ("codec2:mode=1200,device=cpu", "codec2", None, None, False, 0, {"mode": 1200, "device": "cpu"}),
    ],
)
def test_the_grammar(text, name, weights, n_q, random_init, seed, options):
    ref = CodecRef.parse(text)
    assert (ref.name, ref.weights, ref.n_q, ref.random_init, ref.seed, ref.options) == (
        name,
        weights,
        n_q,
        random_init,
        seed,
        options,
    )
    assert ref.text == text


def test_an_existing_directory_is_taken_whole_even_with_colons_and_ats(tmp_path):
    odd = tmp_path / "run@2:final"
    odd.mkdir()
    assert split_ref(str(odd)) == (str(odd), None, "")
    assert CodecRef.parse(f"{odd}:4").n_q == [4]  # the longest existing path before a colon
    assert CodecRef.parse(f"{odd}:4").name == str(odd)


@pytest.mark.parametrize(
    "text, message",
    [
        ("codeclab-tiny:0", "positive"),
        ("codeclab-tiny:four", "integer"),
        ("codeclab-tiny:4,5", "twice"),
        ("codeclab-tiny@w:weights=v", "twice"),
        ("codeclab-tiny:random_init=maybe", "true or false"),
        ("codeclab-tiny:colour=red", "unknown codec option 'colour'"),
        ("@w", "both parts"),
        ("", "non-empty"),
    ],
)
def test_bad_references_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        CodecRef.parse(text)


def test_random_init_default_applies_only_without_weights():
    assert CodecRef.parse("codeclab-tiny", random_init_default=True).random_init
    assert not CodecRef.parse("codeclab-tiny@w", random_init_default=True).random_init
    assert not CodecRef.parse("codeclab-tiny:random_init=false", random_init_default=True).random_init


def test_command_flags_fold_in_and_contradictions_are_refused():
    ref = CodecRef.parse("codeclab-tiny:4").with_flags(random_init=True, seed=2)
    assert (ref.random_init, ref.seed, ref.single_n_q()) == (True, 2, 4)
    assert CodecRef.parse("codeclab-tiny").with_flags(n_q=2).single_n_q() == 2
    with pytest.raises(ValueError, match="--n-q 2 contradicts"):
        CodecRef.parse("codeclab-tiny:4").with_flags(n_q=2)
    with pytest.raises(ValueError, match="--weights b contradicts"):
        CodecRef.parse("codeclab-tiny@a").with_flags(weights="b")
    with pytest.raises(ValueError, match="one n_q"):
        CodecRef.parse("codeclab-tiny:1+2").single_n_q()


def test_a_reference_loads_and_records_its_codec():
    ref = CodecRef.parse("codeclab-tiny:2,random_init=true,seed=1")
    codec = ref.load()
    assert codec.name == "codeclab-tiny" and codec.random_init
    spec = ref.spec()
    assert (spec.name, spec.random_init, spec.seed) == ("codeclab-tiny", True, 1)
    assert ref.series() == "codeclab-tiny"


def test_the_teacher_spec_is_split_by_the_same_parser():
    assert split_spec("facebook/hubert-base-ls960:9") == ("facebook/hubert-base-ls960", "9")
    assert split_spec("dir:avg") == ("dir", "avg")
    assert split_spec("runs/teacher") == ("runs/teacher", None)
    with pytest.raises(ValueError, match="no @WEIGHTS"):
        split_spec("hubert@w:9")
