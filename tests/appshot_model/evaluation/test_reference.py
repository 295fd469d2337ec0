"""The Data reference (split halves) and per-city records."""

import numpy as np
import pytest

from appshot_model.evaluation.metrics import score
from appshot_model.evaluation.reference import data_reference, split_snapshots
from tests.appshot_model.evaluation.maps import days


def test_split_snapshots():
    real = np.arange(7)[:, None, None, None] * np.ones((7, 1, 2, 2))
    first, second = split_snapshots(real)
    assert first[:, 0, 0, 0].tolist() == [0, 1, 2] and second[:, 0, 0, 0].tolist() == [3, 4, 5]
    first, second = split_snapshots(real, "alternate")
    assert first[:, 0, 0, 0].tolist() == [0, 2, 4] and second[:, 0, 0, 0].tolist() == [1, 3, 5]
    with pytest.raises(ValueError, match=">= 2 snapshots"):
        split_snapshots(real[:1])
    with pytest.raises(ValueError, match="split"):
        split_snapshots(real, "random")


def test_data_reference_is_score_of_the_two_halves():
    real = days(0)
    ref = data_reference(real)
    assert ref == score(real[:3], real[3:])
    assert 0 < ref["nemd"] < 0.5 and 0.0 <= ref["werr"] < 0.2 and ref["ssim"] > 0.5
    same = np.concatenate([real[:3], real[:3]])
    ideal = data_reference(same)
    assert ideal["werr"] == 0.0 and ideal["nemd"] == pytest.approx(0.0, abs=1e-12) and ideal["hemd"] == 0.0
