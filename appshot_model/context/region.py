"""Region files: one YAML per region naming its boundary, working grid and context sources.

A region file is validated with pydantic; every section forbids unknown fields, so a misspelt
field is an error naming the field, the file and the closest accepted name. Relative paths are
resolved against the folder holding the YAML file and must exist. Example::

    name: vaduz                       # partition-key safe: letters, digits, _ - . (default: file stem)
    boundary:
      bbox: [9.47, 47.10, 9.56, 47.17]  # west, south, east, north in `crs`
      crs: EPSG:4326                    # default EPSG:4326
      # or: file: vaduz.gpkg (any CRS; layer: optional), exactly one of bbox / file
    crs: EPSG:32632                   # working CRS; default: local UTM zone of the boundary centroid
    cell_size_m: 250
    sources:
      osm: {path: liechtenstein.osm.pbf}             # or {download: true} (online, opt-in)
      population: {osm_buildings: {total: 39000}}    # or {raster: ...} or {vector: ..., column: ...}
      landuse: {osm: true}                           # or {polygons: ..., code_column:, scheme:} or {raster: ...}

See docs/context.md for every field.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import shapely
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pyproj import CRS, Transformer

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.grid import DEFAULT_CELL_SIZE_M, Grid

#: Region names double as Dagster partition keys and folder names.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Refuse grids larger than this many cells (usually a bbox given in the wrong CRS).
MAX_CELLS = 4_000_000
OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.gz", ".osm.bz2")


class _Section(BaseModel):
    """Base of every section: unknown fields are errors; path fields resolved by the loader."""

    model_config = ConfigDict(extra="forbid", frozen=False)


def _exactly_one(model: BaseModel, fields: tuple[str, ...], section: str) -> None:
    given = [f for f in fields if getattr(model, f) not in (None, False)]
    if len(given) != 1:
        raise ValueError(f"{section}: give exactly one of {list(fields)} (got {given or 'none'})")


def _source_options(model: BaseModel, source: str, required: str, optional: tuple[str, ...], section: str,
                    what: str) -> None:
    """``source`` needs ``required`` (``what`` says what it is), and ``required``/``optional`` apply to it only."""
    if getattr(model, source) is not None and not getattr(model, required):
        raise ValueError(f"{section}: {source} needs `{required}` ({what})")
    if getattr(model, source) is None and any(getattr(model, f) for f in (required, *optional)):
        raise ValueError(f"{section}: {'/'.join((required, *optional))} apply to {source} only")


# ---------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------

class _Source(_Section):
    """A context source section: exactly one of its ``KINDS`` fields is given, plus a licence."""

    KINDS: ClassVar[tuple[str, ...]] = ()
    SECTION: ClassVar[str] = ""
    licence: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "_Source":
        _exactly_one(self, self.KINDS, self.SECTION)
        self.check_options()
        return self

    def check_options(self) -> None:
        """Rules between this section's fields beyond the choice of kind (none by default)."""


class Boundary(_Section):
    """A bounding box (west, south, east, north) in ``crs``, or a polygon file in any CRS."""

    bbox: tuple[float, float, float, float] | None = None
    crs: str = "EPSG:4326"
    file: Path | None = None
    layer: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "Boundary":
        _exactly_one(self, ("bbox", "file"), "boundary")
        if self.bbox is not None:
            w, s, e, n = self.bbox
            if not (e > w and n > s):
                raise ValueError(f"boundary.bbox {list(self.bbox)} must be [west, south, east, north] "
                                 f"with east > west and north > south")
            crs = _parse_crs(self.crs, "boundary.crs")
            if crs.is_geographic and not (-180 <= w and e <= 180 and -90 <= s and n <= 90):
                raise ValueError(f"boundary.bbox {list(self.bbox)} is outside longitude/latitude range "
                                 f"for the geographic CRS {self.crs} (metres given with crs: EPSG:4326?)")
        elif "crs" in self.model_fields_set:
            raise ValueError("boundary.crs applies to bbox only; a boundary file carries its own CRS")
        return self


class OsmSource(_Source):
    """Local OpenStreetMap extract (.osm.pbf, .osm, .osm.gz) or an opt-in online download."""

    KINDS, SECTION = ("path", "download"), "sources.osm"
    path: Path | None = None
    download: bool = False
    tags: Path | None = Field(default=None, description="YAML overriding sections of osm_tags.yaml")
    extent: tuple[float, float, float, float] | None = Field(
        default=None, description="west, south, east, north (EPSG:4326) where the extract is complete; "
                                  "default: the file header's bbox, else the data's bbox")

    def check_options(self) -> None:
        if self.path is not None and not str(self.path).lower().endswith(OSM_SUFFIXES):
            raise ValueError(f"sources.osm.path {self.path} must end with one of {list(OSM_SUFFIXES)}")


class OsmBuildingsEstimate(_Section):
    """Population estimated from OSM residential floor area, scaled to a user-given total."""

    total: float = Field(gt=0, description="people living inside the region boundary")
    reference: str | None = Field(default=None, description="where the total comes from (for the record)")


class PopulationSource(_Source):
    KINDS, SECTION = ("raster", "vector", "osm_buildings"), "sources.population"
    raster: Path | None = None
    band: int = 1
    method: Literal["auto", "polygons", "warp"] = "auto"
    vector: Path | None = None
    column: str | None = None
    layer: str | None = None
    mask_values: list[float] = Field(default_factory=list)
    osm_buildings: OsmBuildingsEstimate | None = None

    def check_options(self) -> None:
        _source_options(self, "vector", "column", ("layer", "mask_values"), self.SECTION, "the population column")


class LanduseSource(_Source):
    KINDS, SECTION = ("polygons", "raster", "osm"), "sources.landuse"
    polygons: Path | None = None
    code_column: str | None = None
    layer: str | None = None
    raster: Path | None = None
    band: int = 1
    scheme: str | None = None
    osm: bool = False
    mapping: Path | None = Field(default=None, description="user OSM land-use mapping YAML (osm: true only)")

    def check_options(self) -> None:
        _source_options(self, "polygons", "code_column", ("layer",), self.SECTION, "the class code column")
        if self.osm and self.scheme:
            raise ValueError("sources.landuse: scheme applies to polygons/raster; OSM uses `mapping`")
        if self.mapping is not None and not self.osm:
            raise ValueError("sources.landuse: mapping applies to osm: true; polygons/raster use `scheme`")

    def resolved_scheme(self, base: Path) -> str:
        """Built-in scheme name, or a user scheme path resolved against the region folder."""
        from appshot_model.context.landuse import scheme_names

        default = "corine" if self.raster is not None else "urban_atlas"
        scheme = self.scheme or default
        if scheme in scheme_names():
            return scheme
        return str((base / scheme).resolve()) if not Path(scheme).is_absolute() else scheme


class MilanSource(_Section):
    grid: Path
    features: Path


class PregriddedSource(_Source):
    KINDS, SECTION = ("spectragan", "milan"), "sources.pregridded"
    spectragan: Path | None = None
    milan: MilanSource | None = None
    columns: dict[str, Any] | None = Field(
        default=None, description="source column -> attribute | [attribute, sum|mean]")

    def check_options(self) -> None:
        if self.milan is not None and not self.columns:
            raise ValueError("sources.pregridded.milan needs `columns` (none of its columns is an AppShot attribute)")


class Sources(_Section):
    osm: OsmSource | None = None
    population: PopulationSource | None = None
    landuse: LanduseSource | None = None
    pregridded: PregriddedSource | None = None

    @model_validator(mode="after")
    def _check(self) -> "Sources":
        needs_osm = []
        if self.population is not None and self.population.osm_buildings is not None:
            needs_osm.append("sources.population.osm_buildings")
        if self.landuse is not None and self.landuse.osm:
            needs_osm.append("sources.landuse.osm")
        if needs_osm and self.osm is None:
            raise ValueError(f"{needs_osm} need an OSM source (sources.osm)")
        return self


# ---------------------------------------------------------------------------------------------
# the region
# ---------------------------------------------------------------------------------------------

def _parse_crs(value: str, where: str) -> CRS:
    try:
        return CRS.from_user_input(value)
    except Exception as exc:  # pyproj.exceptions.CRSError
        raise ValueError(f"{where}: unknown CRS {value!r} ({exc})") from exc


def utm_crs_for(lon: float, lat: float) -> str:
    """EPSG code of the WGS 84 UTM zone holding (lon, lat): 326xx north, 327xx south.

    Plain 6-degree zones (the Norway/Svalbard exceptions are not applied)."""
    zone = int(math.floor((lon + 180.0) / 6.0)) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


class Region(_Section):
    """A validated region file. Use :func:`load_region` to read one."""

    name: str | None = None
    description: str = ""
    boundary: Boundary
    crs: str | None = Field(default=None, description="projected working CRS; default local UTM")
    cell_size_m: float = Field(default=DEFAULT_CELL_SIZE_M, gt=0)
    sources: Sources = Field(default_factory=Sources)

    _file: Path | None = PrivateAttr(default=None)
    _base: Path | None = PrivateAttr(default=None)
    _boundary_cache: Any = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not SAFE_NAME.match(value):
            raise ValueError(f"name {value!r} must start with a letter or digit and use only letters, "
                             f"digits, '_', '-', '.' (it names partitions and folders)")
        return value

    @field_validator("crs")
    @classmethod
    def _crs(cls, value: str | None) -> str | None:
        if value is not None and not _parse_crs(value, "crs").is_projected:
            raise ValueError(f"crs {value!r} is not projected; the working CRS must be metric (e.g. UTM)")
        return value

    # -- derived ------------------------------------------------------------------------------

    @property
    def file(self) -> Path | None:
        """The YAML file the region was read from (None when built in code)."""
        return self._file

    @property
    def base_dir(self) -> Path:
        return self._base or (self._file.parent if self._file is not None else Path.cwd())

    def boundary_geometry(self) -> tuple[shapely.Geometry, str]:
        """(boundary polygon, its CRS) as given: a bbox polygon or the union of the file's polygons."""
        if self._boundary_cache is not None:
            return self._boundary_cache
        b = self.boundary
        if b.bbox is not None:
            result = (shapely.box(*b.bbox), b.crs)
        else:
            result = _read_boundary_file(b.file, b.layer)
        self._boundary_cache = result
        return result

    def boundary_in(self, crs: str, densify: bool = True) -> shapely.Geometry:
        """The boundary polygon transformed to ``crs`` (edges densified so they may curve)."""
        geom, src = self.boundary_geometry()
        if CRS.from_user_input(src) == CRS.from_user_input(crs):
            return geom
        if densify:
            xmin, ymin, xmax, ymax = geom.bounds
            geom = shapely.segmentize(geom, max(xmax - xmin, ymax - ymin) / 64.0)
        tr = Transformer.from_crs(src, crs, always_xy=True)
        return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        """Boundary bounds (west, south, east, north) in EPSG:4326."""
        return tuple(float(v) for v in self.boundary_in("EPSG:4326").bounds)

    def working_crs(self) -> str:
        """The ``crs`` field, or the UTM zone of the boundary centroid."""
        if self.crs:
            return self.crs
        centroid = self.boundary_in("EPSG:4326").centroid
        return utm_crs_for(centroid.x, centroid.y)

    def grid(self) -> Grid:
        """North-up grid of whole cells covering the boundary, corners on multiples of the cell size."""
        crs = self.working_crs()
        xmin, ymin, xmax, ymax = self.boundary_in(crs).bounds
        cs = float(self.cell_size_m)
        left, bottom = math.floor(xmin / cs) * cs, math.floor(ymin / cs) * cs
        right, top = math.ceil(xmax / cs) * cs, math.ceil(ymax / cs) * cs
        cells = round((right - left) / cs) * round((top - bottom) / cs)
        if cells > MAX_CELLS:
            raise AppshotInputError(
                f"region {self.name}: the grid would have {cells:,} cells of {cs:g} m (bounds "
                f"{(left, bottom, right, top)} in {crs}); more than {MAX_CELLS:,}. Is the boundary in the "
                f"CRS it declares?")
        return Grid.covering(crs, left, bottom, right, top, cs)

    def region_fraction(self, grid: Grid | None = None) -> np.ndarray:
        """Share (0..1) of each grid cell's area inside the boundary."""
        from appshot_model.context.regrid import coverage_from_pieces, intersect_with_grid

        grid = grid or self.grid()
        geom = self.boundary_in(grid.crs)
        _, r, c, a = intersect_with_grid(np.array([geom], dtype=object), grid)
        return coverage_from_pieces(r, c, a, grid)

    def describe(self) -> dict:
        """JSON-able summary (for metadata)."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["file"] = str(self._file) if self._file else None
        data["working_crs"] = self.working_crs()
        return data


def _read_boundary_file(path: Path, layer: str | None) -> tuple[shapely.Geometry, str]:
    import geopandas as gpd
    import pyogrio

    try:
        info = pyogrio.read_info(path, layer=layer)
        gdf = gpd.read_file(path, layer=layer)
    except Exception as exc:
        raise AppshotInputError(f"cannot read boundary file {path} (layer {layer!r}): {exc}") from exc
    if info.get("crs") is None or gdf.crs is None:
        raise AppshotInputError(f"boundary file {path} has no CRS; expected a declared coordinate reference "
                                f"system (e.g. a .prj beside a shapefile, or a GeoPackage)")
    geoms = gdf.geometry[gdf.geometry.notna()]
    geoms = geoms[geoms.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(geoms) == 0:
        raise AppshotInputError(f"boundary file {path} holds no polygons")
    geom = shapely.make_valid(shapely.union_all(geoms.values))
    if geom.is_empty or geom.area <= 0:
        raise AppshotInputError(f"boundary file {path}: the polygons have no area")
    return geom, gdf.crs.to_string()


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------

def _field_names(model: type[BaseModel], loc: tuple) -> list[str]:
    """Accepted field names of the section at ``loc`` (for 'did you mean' hints)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", None) or (ann,)
        current = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if current is None:
            return []
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _format_errors(exc: ValidationError, path: Path) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            accepted = _field_names(Region, loc)
            close = difflib.get_close_matches(str(loc[-1]), accepted, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"unknown field {where!r}{hint} (accepted here: {', '.join(accepted)})")
        elif err["type"] == "missing":
            lines.append(f"field {where!r} is required")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {msg}" if loc and not msg.startswith(where) else msg)
    return f"region file {path}: " + "; ".join(lines)


def _resolve_paths(model: BaseModel, base: Path, where: str, missing: list[str]) -> None:
    """Resolve every ``Path`` field against ``base`` in place and collect missing files."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        here = f"{where}.{name}" if where else name
        if isinstance(value, BaseModel):
            _resolve_paths(value, base, here, missing)
        elif isinstance(value, Path):
            resolved = Path(os.path.expanduser(os.path.expandvars(str(value))))
            resolved = resolved if resolved.is_absolute() else (base / resolved)
            resolved = Path(os.path.normpath(resolved))
            object.__setattr__(model, name, resolved)
            if not resolved.exists():
                missing.append(f"{here}: {resolved} does not exist")


def load_region(path: str | os.PathLike) -> Region:
    """Read and validate a region YAML file; relative paths resolve against its folder."""
    path = Path(path)
    if not path.is_file():
        raise AppshotInputError(f"region file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AppshotInputError(f"region file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise AppshotInputError(f"region file {path}: expected a mapping with name, boundary, sources; "
                                f"got {type(data).__name__}")
    try:
        region = Region.model_validate(data)
    except ValidationError as exc:
        raise AppshotInputError(_format_errors(exc, path)) from None
    if region.name is None:
        if not SAFE_NAME.match(path.stem):
            raise AppshotInputError(f"region file {path}: no `name` and the file name {path.stem!r} is not a "
                                    f"safe name (letters, digits, '_', '-', '.')")
        region.name = path.stem
    missing: list[str] = []
    _resolve_paths(region, path.resolve().parent, "", missing)
    if missing:
        raise AppshotInputError(f"region file {path}: " + "; ".join(missing))
    region._file = path.resolve()
    region._base = region._file.parent
    if region.sources.landuse is not None and region.sources.landuse.scheme:
        scheme = region.sources.landuse.resolved_scheme(region.base_dir)
        from appshot_model.context.landuse import scheme_names

        if scheme not in scheme_names() and not Path(scheme).exists():
            raise AppshotInputError(f"region file {path}: sources.landuse.scheme {region.sources.landuse.scheme!r} "
                                    f"is neither a built-in scheme {scheme_names()} nor an existing YAML file")
    try:
        region.grid()  # boundary readable, CRS known, grid size sane
    except AppshotInputError as exc:
        raise AppshotInputError(f"region file {path}: {exc}") from None
    return region


def region_from_dict(data: dict, base_dir: str | os.PathLike | None = None) -> Region:
    """Validate a region given as a dict (paths relative to ``base_dir``); for notebooks and tests."""
    try:
        region = Region.model_validate(data)
    except ValidationError as exc:
        raise AppshotInputError(_format_errors(exc, Path("<dict>"))) from None
    if region.name is None:
        raise AppshotInputError("region: field 'name' is required when not read from a file")
    missing: list[str] = []
    base = Path(base_dir or Path.cwd()).resolve()
    _resolve_paths(region, base, "", missing)
    if missing:
        raise AppshotInputError("region: " + "; ".join(missing))
    region._base = base
    return region
