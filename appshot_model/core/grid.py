"""The regular, north-up grid of cells that every raster of a region lives on.

Cells are square (``cell_size_m``) unless ``cell_height_m`` is given: a source lattice of
rectangular cells kept as it is (the SpectraGAN release's 255.92 m x 324.43 m UTM cells).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS

from appshot_model.core.errors import AppshotInputError

DEFAULT_CELL_SIZE_M = 250.0


@dataclass(frozen=True)
class Grid:
    """``height`` x ``width`` cells of ``cell_size_m`` metres (west-east) in a projected ``crs``.

    Row 0 is the northernmost row; ``(left, top)`` is the outer north-west corner (metres).
    Cells are square unless ``cell_height_m`` (north-south extent, metres) is given.
    """

    crs: str
    left: float
    top: float
    height: int
    width: int
    cell_size_m: float = DEFAULT_CELL_SIZE_M
    cell_height_m: float | None = None

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise AppshotInputError(f"grid must have at least one row and column, got {self.height} x {self.width}")
        if not self.cell_size_m > 0:
            raise AppshotInputError(f"cell size must be positive metres, got {self.cell_size_m}")
        if self.cell_height_m is not None and not self.cell_height_m > 0:
            raise AppshotInputError(f"cell height must be positive metres, got {self.cell_height_m}")
        try:
            crs = CRS.from_user_input(self.crs)
        except Exception as exc:  # pyproj raises its own CRSError
            raise AppshotInputError(f"unknown CRS {self.crs!r}: {exc}") from exc
        if not crs.is_projected:
            raise AppshotInputError(f"grid CRS {self.crs!r} is not projected; a metric working CRS (e.g. UTM) is needed")

    @classmethod
    def covering(cls, crs: str, left: float, bottom: float, right: float, top: float,
                 cell_size_m: float = DEFAULT_CELL_SIZE_M) -> "Grid":
        """Smallest grid of whole cells, anchored at ``(left, top)``, that covers the bounds."""
        if not (right > left and top > bottom):
            raise AppshotInputError(f"empty bounds: left={left}, bottom={bottom}, right={right}, top={top}")
        width = max(1, math.ceil((right - left) / cell_size_m - 1e-9))
        height = max(1, math.ceil((top - bottom) / cell_size_m - 1e-9))
        return cls(crs=crs, left=float(left), top=float(top), height=height, width=width, cell_size_m=cell_size_m)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def cell_height(self) -> float:
        """North-south extent of a cell (metres): ``cell_height_m``, else ``cell_size_m``."""
        return self.cell_size_m if self.cell_height_m is None else self.cell_height_m

    @property
    def is_square(self) -> bool:
        return self.cell_height == self.cell_size_m

    @property
    def transform(self) -> Affine:
        """Affine transform from (col, row) to (x, y) of the cell's north-west corner."""
        return Affine(self.cell_size_m, 0.0, self.left, 0.0, -self.cell_height, self.top)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in metres."""
        return (self.left, self.top - self.height * self.cell_height,
                self.left + self.width * self.cell_size_m, self.top)

    def x_centres(self) -> np.ndarray:
        """Cell-centre eastings (metres), west to east."""
        return self.left + (np.arange(self.width) + 0.5) * self.cell_size_m

    def y_centres(self) -> np.ndarray:
        """Cell-centre northings (metres), north to south."""
        return self.top - (np.arange(self.height) + 0.5) * self.cell_height

    def window(self, row: int, col: int, height: int, width: int) -> "Grid":
        """The sub-grid of ``height`` x ``width`` cells whose north-west cell is (``row``, ``col``)."""
        if row < 0 or col < 0 or height < 1 or width < 1 or row + height > self.height or col + width > self.width:
            raise AppshotInputError(f"window rows {row}..{row + height - 1}, cols {col}..{col + width - 1} "
                                    f"is not inside the {self.height} x {self.width} grid")
        return Grid(self.crs, self.left + col * self.cell_size_m, self.top - row * self.cell_height,
                    int(height), int(width), self.cell_size_m, self.cell_height_m)

    def to_geodataframe(self):
        """One row per cell: ``row``, ``col``, cell polygon ``geometry``."""
        import geopandas as gpd
        import shapely

        rows, cols = np.meshgrid(np.arange(self.height), np.arange(self.width), indexing="ij")
        rows, cols = rows.ravel(), cols.ravel()
        x0 = self.left + cols * self.cell_size_m
        y1 = self.top - rows * self.cell_height
        boxes = shapely.box(x0, y1 - self.cell_height, x0 + self.cell_size_m, y1)
        return gpd.GeoDataFrame({"row": rows.astype("int32"), "col": cols.astype("int32")},
                                geometry=boxes, crs=self.crs)

    def to_dict(self) -> dict:
        out = {"crs": self.crs, "left": self.left, "top": self.top, "height": self.height,
               "width": self.width, "cell_size_m": self.cell_size_m}
        if self.cell_height_m is not None:
            out["cell_height_m"] = self.cell_height_m
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Grid":
        return cls(**data)

    @classmethod
    def from_coords(cls, crs: str, x: np.ndarray, y: np.ndarray) -> "Grid":
        """Grid from cell-centre coordinates (x west->east, y north->south, evenly spaced); cells
        are rectangular when the x and y spacings differ (a single row or column is square)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.size < 1 or y.size < 1:
            raise AppshotInputError("grid coordinates are empty")
        cell = float(x[1] - x[0]) if x.size > 1 else float(y[0] - y[1]) if y.size > 1 else DEFAULT_CELL_SIZE_M
        cell_h = float(y[0] - y[1]) if y.size > 1 else cell
        if y.size > 1 and not np.all(np.diff(y) < 0):
            raise AppshotInputError("y coordinates must decrease (north-up, row 0 northernmost)")
        if not np.allclose(np.diff(x), cell) or (y.size > 1 and not np.allclose(-np.diff(y), cell_h)):
            raise AppshotInputError("grid coordinates are not evenly spaced cells")
        height_m = None if np.isclose(cell_h, cell, rtol=1e-9, atol=1e-6) else cell_h
        return cls(crs=crs, left=float(x[0] - cell / 2), top=float(y[0] + cell_h / 2),
                   height=int(y.size), width=int(x.size), cell_size_m=cell, cell_height_m=height_m)
