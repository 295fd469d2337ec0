"""The demo cities: their grids and simulation parameters, and the random helpers keyed to a city."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import Grid
from appshot_model.core.seeds import derive_seed

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_COASTS = ("north", "south", "east", "west")


@dataclass(frozen=True)
class DemoCity:
    """A simulated city: name (a Dagster partition key), its grid and its context parameters.

    Everything here shapes the CONTEXT; traffic follows from the context alone (cities differ
    several-fold in volume because their population, density and PoIs differ, AppShot Fig. 5).
    ``n_centres`` population centres; ``coast`` puts sea on one side of the grid
    (``sea_fraction`` of its width or height); ``mountains`` puts uninhabited mountain land (bare
    rock and scree between forest) on one side (``mountain_fraction`` of the grid); ``n_lakes``
    inland water bodies in the countryside; ``has_tram`` adds tram stops; ``peak_density`` is
    the inhabitants per km2 of continuous urban fabric; ``urban_reach`` scales the radius of the
    built-up area around the centres (beyond it: farmland, forest and villages).
    """

    name: str
    grid: Grid
    seed_offset: int = 0
    n_centres: int = 3
    coast: str | None = None
    sea_fraction: float = 0.0
    mountains: str | None = None
    mountain_fraction: float = 0.0
    n_lakes: int = 1
    has_tram: bool = True
    peak_density: float = 16000.0
    urban_reach: float = 0.85

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise AppshotInputError(
                f"demo city name {self.name!r} must be lowercase ascii letters, digits or '_' (a partition key)")
        if self.n_centres < 1:
            raise AppshotInputError(f"city {self.name}: n_centres must be >= 1, got {self.n_centres}")
        if self.coast is not None and self.coast not in _COASTS:
            raise AppshotInputError(f"city {self.name}: coast {self.coast!r} is not one of {_COASTS} or None")
        if not 0.0 <= self.sea_fraction <= 0.5:
            raise AppshotInputError(f"city {self.name}: sea_fraction must lie in [0, 0.5], got {self.sea_fraction}")
        if self.mountains is not None and self.mountains not in _COASTS:
            raise AppshotInputError(
                f"city {self.name}: mountains {self.mountains!r} is not one of {_COASTS} or None")
        if not 0.0 <= self.mountain_fraction <= 0.5:
            raise AppshotInputError(
                f"city {self.name}: mountain_fraction must lie in [0, 0.5], got {self.mountain_fraction}")
        if self.n_lakes < 0:
            raise AppshotInputError(f"city {self.name}: n_lakes must be >= 0, got {self.n_lakes}")
        if not self.urban_reach > 0:
            raise AppshotInputError(f"city {self.name}: urban_reach must be > 0, got {self.urban_reach}")
        if not self.peak_density > 0:
            raise AppshotInputError(f"city {self.name}: peak_density must be > 0, got {self.peak_density}")

    @property
    def cells(self) -> int:
        return self.grid.height * self.grid.width


def _city(name: str, epsg: int, left: float, top: float, height: int, width: int, seed_offset: int,
          **params) -> DemoCity:
    return DemoCity(name, Grid(f"EPSG:{epsg}", left, top, height, width), seed_offset, **params)


#: The six demo cities: grids centred on real cities in their UTM zone (WGS 84 / UTM north),
#: north-west corners on a 250 m lattice. 30,684 cells in all, from 33 x 33 to 97 x 123 (the
#: range of AppShot's ten cities). Only the placement is real; all content is simulated.
DEMO_CITIES: tuple[DemoCity, ...] = (
    _city("milano", 32632, 499500, 5046750, 97, 123, 0, n_centres=6, peak_density=18000, n_lakes=2,
          urban_reach=1.0),
    _city("lyon", 32631, 631500, 5079500, 80, 90, 1, n_centres=5, mountains="west", mountain_fraction=0.25),
    _city("munich", 32632, 682500, 5342750, 64, 72, 2, n_centres=4, mountains="south", mountain_fraction=0.3,
          n_lakes=3),
    _city("porto", 32629, 523500, 4563250, 56, 60, 3, n_centres=3, coast="west", sea_fraction=0.22,
          mountains="east", mountain_fraction=0.2, has_tram=False, peak_density=12000),
    _city("valencia", 32630, 719250, 4378250, 48, 52, 4, n_centres=3, coast="east", sea_fraction=0.14,
          mountains="west", mountain_fraction=0.25, peak_density=20000),
    _city("liege", 32631, 678250, 5616250, 33, 33, 5, n_centres=2, has_tram=False, peak_density=11000,
          mountains="south", mountain_fraction=0.3, urban_reach=0.7, n_lakes=0),
)


def small_demo_city(name: str, height: int, width: int, seed_offset: int = 0, **params) -> DemoCity:
    """A small simulated city for tests and examples (UTM 32N near Milan; extra ``params`` go to
    :class:`DemoCity`, e.g. ``mountains``)."""
    params.setdefault("n_centres", max(1, min(4, round(math.sqrt(height * width) / 15))))
    grid = Grid("EPSG:32632", 500000.0 + 25000.0 * seed_offset, 5050000.0, int(height), int(width))
    return DemoCity(name, grid, int(seed_offset), **params)


def city_rng(seed: int, city: DemoCity, *names: str | int) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, "demo", city.name, city.seed_offset, *names))


def random_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit std (correlation length ~sigma cells)."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    std = field.std()
    return (field - field.mean()) / (std if std > 0 else 1.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


