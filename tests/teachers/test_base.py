import torch

from codeclab.teachers import codec_frame_times, features_at, split_spec


def test_interpolation_is_exact_on_a_linear_ramp():
    rate = 100.0
    frames = torch.arange(50, dtype=torch.float32)[:, None] * torch.tensor([[1.0, -2.0]])
    # frame i is centred at (i + 0.5) / rate: the ramp's value at time t is (t * rate - 0.5) * slope
    times = torch.tensor([0.005, 0.0123, 0.2, 0.4449])
    got = features_at(frames, rate, times)
    expected = (times.double() * rate - 0.5).float()[:, None] * torch.tensor([[1.0, -2.0]])
    torch.testing.assert_close(got, expected)


def test_times_outside_take_the_nearest_frame():
    frames = torch.tensor([[1.0], [2.0], [3.0]])
    got = features_at(frames, 10.0, torch.tensor([-1.0, 0.0, 10.0]))
    assert got[:, 0].tolist() == [1.0, 1.0, 3.0]


def test_codec_frame_times_are_centres_after_the_offset():
    times = codec_frame_times(3, 50.0, offset=1.0)
    torch.testing.assert_close(times, torch.tensor([1.01, 1.03, 1.05], dtype=torch.float64))


def test_spec_parsing():
    assert split_spec("runs/teacher") == ("runs/teacher", None)
    assert split_spec("facebook/hubert-base-ls960:9") == ("facebook/hubert-base-ls960", "9")
    assert split_spec("dir:avg") == ("dir", "avg")
    assert split_spec("C:/odd/path") == ("C:/odd/path", None)
