import codeclab
from codeclab.eval.speed import measure_speed


def test_speed_measures_positive_rates():
    codec = codeclab.load_codec("codeclab-tiny", random_init=True)
    result = measure_speed(codec, seconds=1.0, batch=2, reps=1)
    assert result.encode_xrt > 0 and result.decode_xrt > 0
    assert abs(result.frames_per_second - result.encode_xrt * 50.0) < 1e-6 * result.frames_per_second
    assert result.random_init is True and result.device == "cpu"
