"""Where everything lives inside a release directory, and what goes into one.

```
<releases>/<release_id>/
  manifest.json                  SHA-256 and size of every other file; creation time
  card.md, card.json             dataset card (Markdown for people, JSON for programs)
  catalog.json                   STAC catalog root
  models/<hour>/...              copy of the model artefact that generated the hour
  context/<city>.nc              context cube the model was applied to
  <city>/<hour>/item.json        STAC item of one city x peak hour
  <city>/<hour>/snapshots.nc     CF NetCDF of all samples [sample, service, y, x]
  <city>/<hour>/grid.parquet     GeoParquet grid, per-cell mean/std per service
  <city>/<hour>/cog/sample_NNN.tif   one Cloud-Optimised GeoTIFF per sample, band = service
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr

from appshot_model.core.errors import AppshotInputError

MANIFEST = "manifest.json"
CARD_MD = "card.md"
CARD_JSON = "card.json"
CATALOG = "catalog.json"
ITEM = "item.json"
NETCDF = "snapshots.nc"
GRID = "grid.parquet"
COG_DIR = "cog"
SERIES_DIR = "series"
MODELS_DIR = "models"
CONTEXT_DIR = "context"
STAGING_PREFIX = ".staging-"

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_part_name(value: str, what: str) -> str:
    """Return ``value`` when usable as a directory name, else raise naming it."""
    if not SAFE_NAME.match(value or ""):
        raise AppshotInputError(
            f"{what} {value!r} cannot name a release folder; use letters, digits, '_', '-', '.'")
    return value


def cog_name(sample: int) -> str:
    return f"sample_{sample:03d}.tif"


def part_dir(city: str, hour: str) -> Path:
    """Relative folder of one city x peak hour."""
    return Path(city) / hour


def model_dir(hour: str) -> Path:
    return Path(MODELS_DIR) / hour


def context_path(city: str) -> Path:
    return Path(CONTEXT_DIR) / f"{city}.nc"


def check_releasable(cube: xr.DataArray, dims: tuple[str, ...], what: str) -> None:
    """A cube a release may hold: dims ``dims`` and label ``synthetic`` (``what`` names it in the error)."""
    if tuple(cube.dims) != dims:
        raise AppshotInputError(f"{what} have dims {cube.dims}, expected {dims}")
    label = cube.attrs.get("label")
    if label != "synthetic":
        raise AppshotInputError(f"{what} carry label={label!r}; only model output labelled 'synthetic' can be "
                                "released")


@dataclass
class ReleasePart:
    """One city x peak hour of a release: the generated cube and where it came from.

    ``snapshots`` is ``[sample, service, y, x]`` with attrs ``seed``, ``model_hash``, ``units``,
    ``label="synthetic"``. ``context`` (the context cube the model was applied to) and
    ``model_dir`` (the model artefact folder) make the release re-generable by ``verify``;
    ``privacy`` holds the privacy gate's figures when the part was audited.
    """

    city: str
    hour: str
    snapshots: xr.DataArray
    context: xr.DataArray | None = None
    model_dir: Path | None = None
    context_sources: list[dict] = field(default_factory=list)
    training_label: str = ""
    context_description: str = ""
    #: Privacy-gate figures of this city x hour (DCR ratio, attack AUC, ...), shown in the card.
    privacy: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_part_name(self.city, "city")
        check_part_name(self.hour, "peak hour")
        check_releasable(self.snapshots, ("sample", "service", "y", "x"),
                         f"generated snapshots of {self.city}/{self.hour}")
        for key in ("seed", "model_hash", "units"):
            if key not in self.snapshots.attrs:
                raise AppshotInputError(
                    f"generated snapshots of {self.city}/{self.hour} lack the attribute {key!r}")
        if self.model_dir is not None:
            self.model_dir = Path(self.model_dir)
            if not self.model_dir.is_dir():
                raise AppshotInputError(f"model directory {self.model_dir} does not exist")

    @property
    def label_statement(self) -> str:
        """``synthetic: model trained on <training data> applied to <real|simulated> context of <city>``."""
        trained_on = self.training_label or str(self.snapshots.attrs.get("training_label", "")) or "unrecorded training data"
        if self.context_description:
            applied_to = self.context_description
        else:
            kind = "simulated" if self.snapshots.attrs.get("source_context") == "simulated" else "real"
            applied_to = f"{kind} context of {self.city}"
        return f"synthetic: model trained on {trained_on} applied to {applied_to}"

    @property
    def seed(self) -> int:
        return int(self.snapshots.attrs["seed"])

    @property
    def services(self) -> list[str]:
        return [str(s) for s in self.snapshots.service.values]

    @property
    def n_samples(self) -> int:
        return int(self.snapshots.sizes["sample"])


def series_path(city: str, method: str) -> Path:
    return Path(SERIES_DIR) / city / f"{method}-hourly.nc"


#: Series methods a release takes: name in the release -> what generated them.
SERIES_METHODS = {"appshot": "AppShot hourly series (one hour-conditioned model, series calibration)",
                  "dg": "DoppelGANger-style per-cell series model"}


@dataclass
class SeriesPart:
    """One city's synthetic hourly series ``[time, service, y, x]`` (attrs ``label="synthetic"``, ``seed``;
    ``acl1_*`` scores against the city's real series when the pipeline measured them) by ``method``."""

    city: str
    method: str
    series: xr.DataArray

    def __post_init__(self) -> None:
        check_part_name(self.city, "city")
        if self.method not in SERIES_METHODS:
            raise AppshotInputError(f"series method {self.method!r} of {self.city}; expected one of "
                                    f"{list(SERIES_METHODS)}")
        check_releasable(self.series, ("time", "service", "y", "x"), f"{self.method} series of {self.city}")


def is_release_dir(path: Path) -> bool:
    """A published release: a non-hidden folder holding a manifest."""
    return path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()


def list_releases(releases_dir: str | Path) -> list[Path]:
    """Published releases under ``releases_dir`` (staging folders are never listed), by name."""
    root = Path(releases_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if is_release_dir(p))
