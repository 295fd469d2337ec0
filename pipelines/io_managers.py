"""File-based IO managers: every asset is a file under a configurable base path.

Paths: ``{base_path}/{asset}/{partition}`` with multi-partition keys as ``city/hour``.
Cubes are NetCDF (.nc), tables/settings JSON (.json), grids GeoParquet (.parquet), models a
directory. Writes are atomic (temp path, then rename).
"""

from __future__ import annotations

import json
from typing import Any

from dagster import ConfigurableIOManagerFactory, InputContext, OutputContext, UPathIOManager
from upath import UPath

from appshot_model.core.cube import read_cube, write_cube
from appshot_model.core.io import atomic_path

DEFAULT_BASE_PATH = "data/assets"


class _FileIO(UPathIOManager):
    """UPathIOManager that always hands a dict to inputs declared with metadata ``as_dict``."""

    def load_partitions(self, context: InputContext) -> Any:
        result = super().load_partitions(context)
        wants_dict = (context.definition_metadata or {}).get("as_dict", False)
        if wants_dict and len(context.asset_partition_keys) == 1:
            return {context.asset_partition_keys[0]: result}
        return result


class _CubeIO(_FileIO):
    extension = ".nc"

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        write_cube(obj, path.path)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        if not path.exists():
            raise FileNotFoundError(path.path)
        return read_cube(path.path)


class _JsonIO(_FileIO):
    extension = ".json"

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        with atomic_path(path.path) as tmp:
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        if not path.exists():
            raise FileNotFoundError(path.path)
        return json.loads(path.read_text())


class _GeoParquetIO(_FileIO):
    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        with atomic_path(path.path) as tmp:
            obj.to_parquet(tmp)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        import geopandas as gpd

        if not path.exists():
            raise FileNotFoundError(path.path)
        return gpd.read_parquet(path.path)


class _ModelIO(_FileIO):
    extension = ""

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        obj.save(path.path)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        from appshot_model.model.artefact import ModelArtefact

        if not path.exists():
            raise FileNotFoundError(path.path)
        return ModelArtefact.load(path.path)


class CubeIOManager(ConfigurableIOManagerFactory):
    """Context, traffic and generated cubes as NetCDF files."""

    base_path: str = DEFAULT_BASE_PATH

    def create_io_manager(self, context) -> _CubeIO:
        return _CubeIO(base_path=UPath(self.base_path))


class JsonIOManager(ConfigurableIOManagerFactory):
    """JSON-serialisable results (attribute selection, normalisation constants)."""

    base_path: str = DEFAULT_BASE_PATH

    def create_io_manager(self, context) -> _JsonIO:
        return _JsonIO(base_path=UPath(self.base_path))


class GeoParquetIOManager(ConfigurableIOManagerFactory):
    """Grids as GeoParquet (one row per cell)."""

    base_path: str = DEFAULT_BASE_PATH

    def create_io_manager(self, context) -> _GeoParquetIO:
        return _GeoParquetIO(base_path=UPath(self.base_path))


class ModelIOManager(ConfigurableIOManagerFactory):
    """Trained model artefacts, one directory each (loadable without Dagster)."""

    base_path: str = DEFAULT_BASE_PATH

    def create_io_manager(self, context) -> _ModelIO:
        return _ModelIO(base_path=UPath(self.base_path))


def io_managers(base_path: str) -> dict[str, ConfigurableIOManagerFactory]:
    """All IO managers of the code location, rooted at ``base_path``."""
    return {
        "io_manager": JsonIOManager(base_path=base_path),
        "cube_io_manager": CubeIOManager(base_path=base_path),
        "geoparquet_io_manager": GeoParquetIOManager(base_path=base_path),
        "model_io_manager": ModelIOManager(base_path=base_path),
    }
