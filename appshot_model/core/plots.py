"""Figures (PNG bytes) for maps, tables and training curves; matplotlib without a screen."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402


def png_bytes(fig) -> bytes:
    """PNG bytes of a matplotlib figure (closed afterwards)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def map_grid_png(rows: Mapping[str, Sequence[np.ndarray]], columns: Sequence[str], title: str = "",
                 shared_scale_per_column: bool = True) -> bytes:
    """PNG of :func:`map_grid_figure`."""
    return png_bytes(map_grid_figure(rows, columns, title, shared_scale_per_column))


def map_grid_figure(rows: Mapping[str, Sequence[np.ndarray]], columns: Sequence[str], title: str = "",
                    shared_scale_per_column: bool = True):
    """A grid of north-up maps: one row per entry of ``rows`` (e.g. real, generated), one column per name
    in ``columns`` (e.g. services). Columns share a colour scale when asked; each column's colour bar
    (compact engineering labels: 12k, 1.2M) sits in its own space (constrained layout), clear of the
    next column."""
    n_rows, n_cols = len(rows), len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.9 * n_cols, 2.4 * n_rows), squeeze=False, layout="constrained")
    for c in range(n_cols):
        column_maps = [np.asarray(maps[c]) for maps in rows.values()]
        vmax = max(float(np.nanmax(m)) for m in column_maps) if shared_scale_per_column else None
        for r, (row_name, maps) in enumerate(rows.items()):
            ax = axes[r][c]
            image = ax.imshow(maps[c], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(row_name, fontsize=9)
        bar = fig.colorbar(image, ax=[axes[r][c] for r in range(n_rows)], shrink=0.8, pad=0.02,
                           format=EngFormatter(sep=""))
        bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def single_map_png(values: np.ndarray, title: str, unit: str = "") -> bytes:
    """One north-up map with a colour bar."""
    fig, ax = plt.subplots(figsize=(4, 4))
    image = ax.imshow(values, cmap="viridis", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(image, ax=ax, shrink=0.8, label=unit)
    return png_bytes(fig)


def curves_png(curves: Mapping[str, Sequence[float]], title: str, xlabel: str = "step") -> bytes:
    """Line plot of named curves (e.g. training losses)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, values in curves.items():
        ax.plot(np.asarray(values), label=name, linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return png_bytes(fig)


def bar_png(values: Mapping[str, float], title: str, ylabel: str = "") -> bytes:
    """Horizontal bar chart (e.g. average Spearman correlation per attribute)."""
    names = list(values)
    fig, ax = plt.subplots(figsize=(6, 0.22 * len(names) + 1))
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    return png_bytes(fig)


def sample_rows(snapshots, services: Sequence[str], n: int = 2, label: str = "sample") -> dict[str, list[np.ndarray]]:
    """``{"<label> i": [map of each service]}`` for the first ``n`` samples of an xarray cube
    ``[sample, service, y, x]``: rows for :func:`map_grid_png`."""
    return {f"{label} {i}": [snapshots.isel(sample=i).sel(service=s).values for s in services]
            for i in range(min(n, snapshots.sizes["sample"]))}


#: Services shown in map figures when a cube has them.
PREVIEW_SERVICES = ("youtube", "instagram", "netflix", "facebook")


def shown_services(snapshots, preferred: Sequence[str] = PREVIEW_SERVICES, n: int = 4) -> list[str]:
    """The ``preferred`` services the cube has, else its first ``n`` services."""
    have = [str(s) for s in snapshots.service.values]
    return [s for s in preferred if s in have] or have[:n]
