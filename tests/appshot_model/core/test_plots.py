"""Figures: map grids keep each colour bar clear of the maps next to it."""

import matplotlib.pyplot as plt
import numpy as np

from appshot_model.core.plots import map_grid_figure, map_grid_png


def test_colour_bars_do_not_overlap_the_next_column():
    rng = np.random.default_rng(0)
    scales = [1.3e4, 1.3e5, 1.3e6, 1.3e7]  # traffic in bit/s: long tick labels
    rows = {name: [rng.random((40, 50)) * s for s in scales] for name in ("real", "generated 0")}
    fig = map_grid_figure(rows, ["a", "b", "c", "d"], title="t")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    maps = [ax for ax in fig.axes if ax.images]
    bars = [ax for ax in fig.axes if not ax.images]
    assert len(maps) == 8 and len(bars) == 4
    for bar in bars:
        box = bar.get_tightbbox(renderer)  # bar plus its tick labels
        for ax in maps:
            assert not box.overlaps(ax.get_window_extent(renderer)), "a colour bar overlaps a map"
    plt.close(fig)
    assert map_grid_png(rows, ["a", "b", "c", "d"]).startswith(b"\x89PNG")
