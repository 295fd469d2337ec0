import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid


def test_covering_grid_is_north_up_and_covers_bounds():
    grid = Grid.covering("EPSG:32632", 500_010.0, 5_600_000.0, 505_000.0, 5_602_600.0)
    assert grid.shape == (11, 20)  # 2600 m -> 11 rows, 4990 m -> 20 cols
    left, bottom, right, top = grid.bounds
    assert left == 500_010.0 and top == 5_602_600.0
    assert right >= 505_000.0 and bottom <= 5_600_000.0
    assert grid.transform.e < 0 and grid.transform.a == 250.0
    assert np.all(np.diff(grid.y_centres()) < 0)
    assert grid.y_centres()[0] == pytest.approx(top - 125.0)


def test_geodataframe_cells_match_transform():
    grid = Grid("EPSG:32633", 400_000.0, 6_000_000.0, 3, 4)
    cells = grid.to_geodataframe()
    assert len(cells) == 12 and cells.crs.to_epsg() == 32633
    cell = cells[(cells.row == 2) & (cells.col == 1)].geometry.iloc[0]
    assert cell.bounds == (400_250.0, 5_999_250.0, 400_500.0, 5_999_500.0)
    assert grid.transform @ (1, 2) == (400_250.0, 5_999_500.0)


def test_round_trip_from_coords():
    grid = Grid("EPSG:32631", 600_000.0, 5_500_000.0, 5, 7, 250.0)
    assert Grid.from_coords(grid.crs, grid.x_centres(), grid.y_centres()) == grid
    with pytest.raises(AppshotInputError, match="north-up"):
        Grid.from_coords(grid.crs, grid.x_centres(), grid.y_centres()[::-1])


@pytest.mark.parametrize("kwargs, message", [
    ({"crs": "EPSG:4326"}, "not projected"),
    ({"crs": "EPSG:999999"}, "unknown CRS"),
    ({"height": 0}, "at least one row"),
    ({"cell_size_m": -5.0}, "cell size"),
])
def test_invalid_grids_are_clear_errors(kwargs, message):
    base = {"crs": "EPSG:32632", "left": 0.0, "top": 0.0, "height": 2, "width": 2}
    with pytest.raises(AppshotInputError, match=message):
        Grid(**{**base, **kwargs})
