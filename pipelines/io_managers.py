"""File-based IO managers: every asset is a file under a configurable base path.

Paths: ``{base_path}/{asset}/{partition}`` with multi-partition keys as ``city/hour``.
Cubes are NetCDF (.nc), tables/settings JSON (.json), grids GeoParquet (.parquet), models a
directory. Writes are atomic (temp path, then rename). An input declared with metadata
``{OPTIONAL_INPUT: True}`` receives None while its upstream asset has never been materialised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from dagster import ConfigurableIOManagerFactory, InputContext, OutputContext, UPathIOManager
from upath import UPath

from appshot_model.core.cube import read_cube, write_cube
from appshot_model.core.io import atomic_path
from assets.common import OPTIONAL_INPUT

DEFAULT_BASE_PATH = "data/assets"


class _FileIO(UPathIOManager):
    """UPathIOManager that always hands a dict to inputs declared with metadata ``as_dict``; subclasses
    say how one object is written to and read from a local path."""

    def write(self, obj: Any, path: str) -> None:
        raise NotImplementedError

    def read(self, path: str) -> Any:
        raise NotImplementedError

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        self.write(obj, path.path)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        if not path.exists():
            if (context.definition_metadata or {}).get(OPTIONAL_INPUT):
                context.log.info(f"optional input {path.path} has not been materialised; passing None")
                return None
            raise FileNotFoundError(path.path)
        return self.read(path.path)

    def load_partitions(self, context: InputContext) -> Any:
        result = super().load_partitions(context)
        wants_dict = (context.definition_metadata or {}).get("as_dict", False)
        if wants_dict and len(context.asset_partition_keys) == 1:
            return {context.asset_partition_keys[0]: result}
        return result


class _CubeIO(_FileIO):
    extension = ".nc"

    def write(self, obj: Any, path: str) -> None:
        write_cube(obj, path)

    def read(self, path: str) -> Any:
        return read_cube(path)


class _JsonIO(_FileIO):
    extension = ".json"

    def write(self, obj: Any, path: str) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(obj, indent=2, sort_keys=True))

    def read(self, path: str) -> Any:
        return json.loads(Path(path).read_text())


class _GeoParquetIO(_FileIO):
    extension = ".parquet"

    def write(self, obj: Any, path: str) -> None:
        with atomic_path(path) as tmp:
            obj.to_parquet(tmp)

    def read(self, path: str) -> Any:
        import geopandas as gpd

        return gpd.read_parquet(path)


class _ModelIO(_FileIO):
    extension = ""

    def write(self, obj: Any, path: str) -> None:
        obj.save(path)

    def read(self, path: str) -> Any:
        from appshot_model.model.artefact import ModelArtefact

        return ModelArtefact.load(path)


class _SeriesModelIO(_FileIO):
    extension = ""

    def write(self, obj: Any, path: str) -> None:
        from appshot_model.series.trained import save_series_models

        save_series_models(obj, path)

    def read(self, path: str) -> Any:
        from appshot_model.series.trained import load_series_models

        return load_series_models(path)


FORMATS: dict[str, type[_FileIO]] = {"cube": _CubeIO, "json": _JsonIO, "geoparquet": _GeoParquetIO,
                                      "model": _ModelIO, "series_model": _SeriesModelIO}


class FileIOManager(ConfigurableIOManagerFactory):
    """Assets as files under ``base_path`` in one ``file_format``: ``cube`` (context, traffic and generated
    cubes as NetCDF), ``json`` (attribute selection, normalisation constants, scores), ``geoparquet``
    (grids, one row per cell), ``model`` (trained model artefacts, one directory each, loadable
    without Dagster) or ``series_model`` (the DG-style series model with its naive baseline, one directory)."""

    base_path: str = DEFAULT_BASE_PATH
    file_format: Literal["cube", "json", "geoparquet", "model", "series_model"] = "json"

    def create_io_manager(self, context) -> _FileIO:
        return FORMATS[self.file_format](base_path=UPath(self.base_path))


def io_managers(base_path: str) -> dict[str, ConfigurableIOManagerFactory]:
    """All IO managers of the code location, rooted at ``base_path``."""
    return {"io_manager": FileIOManager(base_path=base_path, file_format="json"),
            **{f"{kind}_io_manager": FileIOManager(base_path=base_path, file_format=kind)
               for kind in ("cube", "geoparquet", "model", "series_model")}}
