"""The shared argument checks (codeclab/_checks.py): one codes range check for numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codeclab._checks import check_codes, codes_out_of_range


@pytest.mark.parametrize("make", [np.asarray, torch.as_tensor])
def test_the_codes_range_check_is_the_same_for_numpy_and_torch(make):
    assert codes_out_of_range(make([[0, 3], [2, 1]]), 4) is None
    assert codes_out_of_range(make(np.zeros((2, 0), np.int64)), 4) is None  # no codes: nothing outside
    assert codes_out_of_range(make([[0, 4]]), 4) == (0, 4)
    assert codes_out_of_range(make([[-1, 2]]), 4) == (-1, 2)


def test_check_codes_names_the_shape_and_the_values_outside():
    with pytest.raises(ValueError, match=r"lie in \[0, 4\), got values from 0 to 9"):
        check_codes([[0, 9]], 4)
    with pytest.raises(ValueError, match=r"shape \[2, frames\]"):
        check_codes([[0, 1]], 4, n_q=2)
    assert check_codes([[0, 1]], 4).shape == (1, 2)
