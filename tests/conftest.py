import pytest
import torch

from tests.aligned import aligned_corpus, phone_teacher  # noqa: F401 (shared fixtures)
from tests.corpus_files import good_corpus, mixed_corpus  # noqa: F401 (shared fixtures)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_codec():
    import codeclab

    return codeclab.load_codec("codeclab-tiny", random_init=True)


@pytest.fixture(scope="session")
def speech_codec():
    import codeclab

    return codeclab.load_codec("codeclab-16k-speech", random_init=True)
