"""Interactive HTML map of a release: one image overlay per service, reprojected to EPSG:4326."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import rasterio
from matplotlib import colormaps
from rasterio.warp import Resampling, calculate_default_transform, reproject

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.release import layout


def _pick_part(root: Path, city: str | None, hour: str | None) -> tuple[str, str]:
    card_file = root / layout.CARD_JSON
    if not card_file.is_file():
        raise AppshotInputError(f"{root} holds no {layout.CARD_JSON}; is it an appshot release folder?")
    parts = [(p["city"], p["peak_hour"]) for p in json.loads(card_file.read_text())["parts"]]
    chosen = [p for p in parts if (city is None or p[0] == city) and (hour is None or p[1] == hour)]
    if not chosen:
        raise AppshotInputError(f"no part city={city!r} hour={hour!r} in {root}; it holds {parts}")
    return chosen[0]


def to_wgs84(path: str | os.PathLike) -> tuple[list[str], np.ndarray, tuple[float, float, float, float]]:
    """Bands of a GeoTIFF reprojected to EPSG:4326: (names, values [band, row, col] with NaN
    outside, (west, south, east, north))."""
    with rasterio.open(path) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height,
                                                               *src.bounds)
        out = np.full((src.count, height, width), np.nan, dtype="float32")
        for band in range(src.count):
            reproject(rasterio.band(src, band + 1), out[band], dst_transform=transform, dst_crs="EPSG:4326",
                      resampling=Resampling.nearest, dst_nodata=np.nan)
        names = [d or f"band {i + 1}" for i, d in enumerate(src.descriptions)]
    west, north = transform * (0, 0)
    east, south = transform * (width, height)
    return names, out, (west, south, east, north)


def _rgba(values: np.ndarray, cmap: str = "magma") -> np.ndarray:
    finite = np.isfinite(values)
    vmax = float(np.nanpercentile(values, 99)) if finite.any() else 1.0
    scaled = np.clip(np.where(finite, values, 0) / (vmax or 1.0), 0, 1)
    rgba = (colormaps[cmap](scaled) * 255).astype("uint8")
    rgba[..., 3] = np.where(finite, 200, 0)
    return rgba


def write_map_html(release_dir: str | os.PathLike, out_html: str | os.PathLike, *, city: str | None = None,
                   hour: str | None = None, sample: int = 0, tiles: str | None = None) -> Path:
    """Write a folium map of one sample of one city x hour; one toggleable layer per service.

    ``tiles`` is a tile URL template only referenced in the HTML (nothing is downloaded); by
    default the map has no base layer."""
    import folium

    root = Path(release_dir)
    city, hour = _pick_part(root, city, hour)
    tif = root / layout.part_dir(city, hour) / layout.COG_DIR / layout.cog_name(sample)
    if not tif.is_file():
        raise AppshotInputError(f"sample {sample} of {city}/{hour} is absent: no {tif}")
    names, values, (west, south, east, north) = to_wgs84(tif)
    fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=12,
                      tiles=tiles, attr="base map" if tiles else None)
    for index, name in enumerate(names):
        folium.raster_layers.ImageOverlay(
            image=_rgba(values[index]), bounds=[[south, west], [north, east]], name=name,
            opacity=0.8, show=index == 0, mercator_project=True).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    title = f"SYNTHETIC traffic - {city}, {hour} peak, sample {sample} ({root.name})"
    fmap.get_root().html.add_child(folium.Element(f"<h4 style='position:absolute;z-index:1000;left:60px'>{title}</h4>"))
    out_html = Path(out_html)
    with atomic_path(out_html) as tmp:
        fmap.save(str(tmp))
    return out_html
