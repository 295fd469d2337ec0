"""The SpectraGAN world on the real release (skipped, naming the folder, when ../shared/data is absent)."""

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.cube import grid_of, read_cube, write_cube
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.names import ATTRIBUTES
from appshot_model.traffic.peaks import peak_snapshots
from appshot_model.traffic.spectragan import (FIRST_STEP, MARGIN_CELLS, context_cube, day_of_week_totals,
                                              hour_of_day_profile, joint_alignment_scores, read_traffic,
                                              spectragan_grid, traffic_window)


@pytest.fixture
def root(shared_data):
    return shared_data / "spectragan"


def test_lattice_and_window(root):
    for city, full, window in [("aachen", (22, 28), (11, 17)), ("bonn", (36, 39), (25, 28))]:
        grid = spectragan_grid(root / "context" / city)
        assert grid.shape == full and grid.crs == "EPSG:32632"
        assert grid.cell_size_m == pytest.approx(255.92, abs=0.01) and grid.cell_height == pytest.approx(324.43, abs=0.01)
        win = traffic_window(grid)
        assert win.shape == window
        assert win.top == pytest.approx(grid.top - MARGIN_CELLS["north"] * grid.cell_height)


def test_alignment_is_the_best_placement_with_a_margin(root):
    """One placement for both cities: no mirroring, 4 rows from the south, 5 columns from the west.
    It wins the joint cross-validated R2 of log mean traffic on the context; every mirrored
    placement is at least 0.1 worse (the offset itself is only sure to about one cell)."""
    scores = joint_alignment_scores(root)
    best = scores.iloc[0]
    assert (bool(best.flip_rows), bool(best.flip_cols), int(best.south), int(best.west)) == (False, False, 4, 5)
    assert MARGIN_CELLS["south"] == 4 and MARGIN_CELLS["west"] == 5
    mirrored = scores[scores.flip_rows | scores.flip_cols]
    assert best.r2 - mirrored.r2.max() > 0.1
    assert best.r2 > 0.6 and min(best.spearman_aachen, best.spearman_bonn) > 0.7


def test_traffic_cube_time_axis_and_orientation(root, tmp_path):
    cube = read_traffic(root, "bonn")
    assert cube.dims == ("time", "service", "y", "x") and cube.shape == (504, 1, 25, 28)
    assert cube.attrs["label"] == "synthetic" and cube.attrs["units"] == "normalised"
    times = pd.DatetimeIndex(cube.time.values)
    assert times[0] == FIRST_STEP and times[0].day_of_week == 2 and times[0].hour == 3
    assert (np.diff(times) == np.timedelta64(1, "h")).all()
    raw = np.load(root / "synthetic-traffic" / "tmap_model-bonn.npy")
    np.testing.assert_allclose(cube.values[7, 0, -1], raw[7, 0], rtol=1e-6)  # north-up: last row = raw row 0
    back = read_cube(write_cube(cube, tmp_path / "bonn.nc"))
    assert grid_of(back).shape == (25, 28) and grid_of(back).cell_height == pytest.approx(324.43, abs=0.01)
    assert len(peak_snapshots(cube, "morning").time) == 15  # 3 weeks x 5 weekdays


def test_time_axis_evidence(root):
    """The nominal clock puts the daily minimum at 02-04 h and the day-time plateau inside
    08-22 h, and makes Saturday + Sunday the two lowest consecutive days in both cities."""
    for city in ("aachen", "bonn"):
        cube = read_traffic(root, city)
        profile = hour_of_day_profile(cube)
        assert profile.idxmin() in (2, 3, 4)
        assert profile.loc[9:21].min() > 0.7 > profile.loc[[1, 2, 3, 4, 5]].max()
        days = day_of_week_totals(cube)
        pairs = {d: days[d] + days[(d + 1) % 7] for d in range(7)}
        assert min(pairs, key=pairs.get) == 5  # Saturday (5) + Sunday (6)


def test_context_cubes(root):
    cropped, full = context_cube(root, "aachen"), context_cube(root, "aachen", crop=False)
    assert list(cropped.attribute.values) == list(ATTRIBUTES) and cropped.shape == (27, 11, 17)
    assert full.shape == (27, 22, 28)
    m = MARGIN_CELLS
    np.testing.assert_array_equal(cropped.values, full.values[:, m["north"]:-m["south"], m["west"]:-m["east"]])
    traffic = read_traffic(root, "aachen")
    np.testing.assert_allclose(cropped.x.values, traffic.x.values)
    np.testing.assert_allclose(cropped.y.values, traffic.y.values)
    assert (full.sel(attribute="population").values >= 0).all()
    assert full.sel(attribute="poi_tram_stops").sum() == 0  # Aachen has no tram
    with pytest.raises(AppshotInputError, match="no SpectraGAN traffic"):
        read_traffic(root, "dresden")
