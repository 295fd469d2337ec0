import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.usecases.slicing import efficiency_png, efficiency_table, slicing_efficiency

# [time, service, cell]: two services (a, b), two cells, 8 hours = two 4-hour periods.
A0, B0 = [1, 2, 3, 4, 4, 4, 4, 4], [4, 3, 2, 1, 0, 0, 0, 0]
A1, B1 = [2, 2, 2, 2, 1, 1, 1, 1], [0, 0, 0, 8, 1, 2, 3, 4]
DEMAND = np.array([[A0, A1], [B0, B1]], dtype=float).transpose(2, 0, 1)


@pytest.mark.parametrize("p, period, expected", [
    # p = 1: per-period maxima. Slices: (4 + 4) + (2 + 8) + (4 + 0) + (1 + 4) = 27; summed demand:
    # cell 0 [5,5,5,5] -> 5 then [4,4,4,4] -> 4, cell 1 [2,2,2,10] -> 10 then [2,3,4,5] -> 5 = 24.
    (1.0, 4, 24 / 27),
    # p = 0.75: the 3rd smallest of 4 hours. Slices 3+3, 2+0, 4+0, 1+3 = 16; summed 5, 2, 4, 4 = 15.
    (0.75, 4, 15 / 16),
    # one 8-hour period, p = 1: slices 4+4, 2+8 = 18; summed 5, 10 = 15.
    (1.0, 8, 15 / 18),
    # 3-hour periods: two whole windows (hours 0-5), the last 2 hours left out. p = 1:
    # cell 0 a 3,4 b 4,1 / sums [5,5,5] 5, [5,4,4] 5; cell 1 a 2,2 b 0,8 / sums 2, 10 -> 22 / 24.
    (1.0, 3, 22 / 24),
])
def test_efficiency_hand_cases(p, period, expected):
    assert slicing_efficiency(DEMAND, p, period) == pytest.approx(expected)


def test_table_and_errors():
    table = efficiency_table(DEMAND, DEMAND * 2.0, coverages=(0.75, 1.0), periods_h=(2, 4))
    assert list(table.columns) == ["p", "period_h", "e_real", "e_generated", "rel_error"]
    assert len(table) == 4 and np.allclose(table.rel_error, 0.0)  # E is scale-free
    other = efficiency_table(DEMAND, np.roll(DEMAND, 2, axis=0), coverages=(1.0,), periods_h=(4,))
    assert other.rel_error.iloc[0] > 0
    assert efficiency_png(table)[:4] == b"\x89PNG"
    with pytest.raises(AppshotInputError, match="no whole period"):
        slicing_efficiency(DEMAND, 0.95, 36)
    with pytest.raises(AppshotInputError, match=">= 0"):
        slicing_efficiency(-DEMAND, 0.95, 4)
