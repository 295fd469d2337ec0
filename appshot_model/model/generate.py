"""Generation of synthetic snapshots for a city from its context alone (AppShot §V-B1, §V-C1).

``noise_scope="snapshot"`` (default): one noise vector ``z`` per snapshot. Every stride-1 patch covering a
cell then gives it the same value, so the stitched map equals one fully convolutional pass of the
generator over the edge-padded context (:func:`generate_map`). The map is computed on a fixed lattice of
``MAP_TILE x MAP_TILE`` tiles anchored at the region's top-left cell (each with its context halo, the last ones
padded by edge replication), every tile with the same tensor shapes, so a cell's value does not depend on the
map's size or on how it is cut. The noise is keyed to position (``appshot_model.model.noise``): ``z`` by
(seed, sample), the spatial field by (seed, sample, lattice block), so the same snapshot comes out of this
in-memory path and of the chunked Dask path (``appshot_model.model.chunked``), byte for byte.

``noise_scope="patch"`` (the first implementation, and the no-overlap ablation): a fresh ``z`` per patch,
patches on the model's stride grid stitched by averaging overlaps.

Fast path for per-patch noise: in eval mode the first convolution + BN + ReLU is the same for every patch covering
a cell, so it is computed once on the edge-padded full map (``[H, W, 8F]``). Every patch then
only needs its FiLM affine transform and the 1x1 stack, which are applied to the ``Nx x Nx``
windows of that map as plain matrix products with BN folded into the weights. The result equals
running the generator patch by patch (:func:`generate_naive`, kept as the reference).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from appshot_model.core.cube import check_context, grid_of
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.threads import torch_threads
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.networks import Generator
from appshot_model.model.noise import draw_noise, keyed_noise_field, snapshot_z
from appshot_model.model.patches import (check_map_size, context_padding, coverage, extract_patches, pad_context,
                                         patch_origins, stitch)

#: Patches per block in the fast path (bounds memory to ~ block * Nx^2 * 8F floats).
BLOCK_PATCHES = 128
#: Side (cells) of the fixed tiles of :func:`generate_map`.
MAP_TILE = 64
#: torch intra-op threads while generating: one, so that the bytes do not depend on the machine's cores
#: (parallelism comes from Dask threads over chunks: ``appshot_model.model.chunked``).
GENERATION_THREADS = 1


def prepare_context(artefact: ModelArtefact, context_cube: xr.DataArray) -> np.ndarray:
    """The cube's attributes in the artefact's order, normalised: ``[K, H, W]`` float32."""
    selected = select_attributes(artefact, context_cube)
    check_context(selected)
    return artefact.normalisation.normalise_context(selected.values)


def select_attributes(artefact: ModelArtefact, context_cube: xr.DataArray) -> xr.DataArray:
    """The cube's attributes in the artefact's order ``(attribute, y, x)``, not loaded; clear errors for
    missing attributes and a map smaller than one traffic patch."""
    if "attribute" not in context_cube.dims:
        raise AppshotInputError(f"context cube has dims {context_cube.dims}, expected (attribute, y, x)")
    present = {str(a) for a in context_cube.attribute.values}
    missing = [a for a in artefact.attributes if a not in present]
    if missing:
        raise AppshotInputError(f"context cube lacks attributes {missing} that the model (peak hour "
                                f"{artefact.peak_hour}) was trained on; it needs all of {artefact.attributes}")
    selected = context_cube.sel(attribute=list(artefact.attributes)).transpose("attribute", "y", "x")
    check_map_size(selected.sizes["y"], selected.sizes["x"], artefact.model_cfg.traffic_patch,
                   artefact.model_cfg.first_kernel, what="context cube")
    return selected


def _folded_layers(gen: Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(W^T, b)`` of the 1x1 stack with eval-mode BN folded in; the last one is the output conv."""
    layers = []
    for conv, bn in zip(gen.hidden, gen.hidden_bn, strict=True):
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        weight = conv.weight[:, :, 0, 0] * scale[:, None]
        layers.append((weight.t().contiguous(), (bn.bias - bn.running_mean * scale).contiguous()))
    layers.append((gen.out.weight[:, :, 0, 0].t().contiguous(), gen.out.bias.contiguous()))
    return layers


def _row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, BLOCK_PATCHES // n_cols)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _index(index: np.ndarray) -> slice | torch.Tensor:
    """A slice when ``index`` is a run of consecutive integers (stride 1: views, no copies)."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return torch.from_numpy(index)


def _as_tensor(index: slice | torch.Tensor) -> torch.Tensor:
    return torch.arange(index.start, index.stop) if isinstance(index, slice) else index


def _take(array: torch.Tensor, rows: slice | torch.Tensor, cols: slice | torch.Tensor) -> torch.Tensor:
    """``array[rows, cols]`` of ``[H, W, C]`` as ``[len(rows), len(cols), C]`` (a view for two slices)."""
    if isinstance(rows, slice) and isinstance(cols, slice):
        return array[rows, cols]
    return array[_as_tensor(rows)[:, None], _as_tensor(cols)[None, :]]


def _add_at(total: torch.Tensor, rows: slice | torch.Tensor, cols: slice | torch.Tensor,
            values: torch.Tensor) -> None:
    """``total[rows, cols] += values`` (the cells addressed are distinct)."""
    if isinstance(rows, slice) and isinstance(cols, slice):
        total[rows, cols] += values
    else:
        total[_as_tensor(rows)[:, None], _as_tensor(cols)[None, :]] += values


def generate_fast(gen: Generator, context: np.ndarray, z: torch.Tensor, rows: np.ndarray, cols: np.ndarray,
                  size: int, kernel: int) -> np.ndarray:
    """Stitched normalised output ``[S, H, W]`` for patch-grid origins ``rows x cols`` and noise
    ``z [len(rows) * len(cols), Nz]`` (row-major), without running the generator per patch."""
    gen.eval()
    height, width = context.shape[1:]
    n_rows, n_cols = len(rows), len(cols)
    with torch.inference_mode():
        feats = gen.features(torch.from_numpy(pad_context(context, kernel))[None])[0]
        feats = feats.permute(1, 2, 0).contiguous()                                 # [H, W, 8F]
        layers = _folded_layers(gen)
        if gen.noise_mode == "film":
            sigma, mu = gen.film(z)
            scale, shift = sigma.view(n_rows, n_cols, -1), mu.view(n_rows, n_cols, -1)
        else:  # first 1x1 layer splits into a per-pixel term (computed once) and a per-patch term
            w1, b1 = layers.pop(0)
            split = feats.shape[-1]
            shift = (z @ w1[split:] + b1).view(n_rows, n_cols, -1)
            feats = feats @ w1[:split]
        channels, n_out = feats.shape[-1], layers[-1][1].shape[0]
        col_index = [_index(cols + dj) for dj in range(size)]
        total = torch.zeros(height, width, n_out)
        for block in _row_blocks(n_rows, n_cols):
            row_index = [_index(rows[block] + di) for di in range(size)]
            nr = block.stop - block.start
            h = torch.empty(size, size, nr, n_cols, channels)
            for di in range(size):
                for dj in range(size):
                    window = _take(feats, row_index[di], col_index[dj])              # [nr, nc, C]
                    if gen.noise_mode == "film":
                        torch.addcmul(shift[block], window, scale[block], out=h[di, dj])
                    else:
                        torch.add(window, shift[block], out=h[di, dj]).relu_()
            h = h.view(-1, channels)
            for weight, bias in layers[:-1]:
                h = torch.addmm(bias, h, weight).relu_()
            weight, bias = layers[-1]
            out = torch.addmm(bias, h, weight).sigmoid_().view(size, size, nr, n_cols, n_out)
            for di in range(size):
                for dj in range(size):
                    _add_at(total, row_index[di], col_index[dj], out[di, dj])
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        count = torch.from_numpy(coverage(rr.ravel(), cc.ravel(), size, height, width).astype(np.float32))
        return (total / count[:, :, None]).permute(2, 0, 1).numpy().copy()


def generate_naive(gen: Generator, context: np.ndarray, z: torch.Tensor, rows: np.ndarray, cols: np.ndarray,
                   size: int, kernel: int, batch: int = 512) -> np.ndarray:
    """Reference path: run the generator on every context patch, then stitch (same inputs as
    :func:`generate_fast`)."""
    gen.eval()
    height, width = context.shape[1:]
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    patches = extract_patches(pad_context(context, kernel), rr, cc, size + kernel - 1)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(rr), batch):
            outputs.append(gen(torch.from_numpy(np.ascontiguousarray(patches[start:start + batch])),
                               z[start:start + batch]).numpy())
    return stitch(np.concatenate(outputs), rr, cc, height, width)


#: ``(row, col) -> noise field [C, tile, tile]`` of the tile whose top-left cell is ``(row, col)`` of the region.
FieldAt = Callable[[int, int], torch.Tensor]


def snapshot_field(artefact: ModelArtefact, seed: int, sample: int) -> FieldAt | None:
    """The position-keyed noise field of snapshot ``sample`` tile by tile (``None``: the model has none)."""
    cfg = artefact.model_cfg
    if not cfg.field_channels:
        return None
    return functools.partial(keyed_noise_field, seed, sample, cfg.field_channels, cfg.noise_correlation_cells,
                             height=MAP_TILE, width=MAP_TILE)


def generate_tiles(gen: Generator, source: np.ndarray, z: torch.Tensor, kernel: int, tile: int = MAP_TILE,
                   field_at: FieldAt | None = None, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Normalised output ``[S, R * tile, C * tile]`` of the ``R x C`` whole tiles whose context with its
    first-kernel halo is ``source [K, R * tile + kernel - 1, C * tile + kernel - 1]``; ``origin``: the region
    cell (row, col) of the first tile, where ``field_at`` looks up each tile's noise field."""
    rows, cols = (source.shape[1] - kernel + 1) // tile, (source.shape[2] - kernel + 1) // tile
    source = torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32))
    out = None
    with torch.inference_mode():
        for r in range(rows):
            for c in range(cols):
                block = source[None, :, r * tile:(r + 1) * tile + kernel - 1, c * tile:(c + 1) * tile + kernel - 1]
                field = None if field_at is None else field_at(origin[0] + r * tile, origin[1] + c * tile)[None]
                values = gen(block, z[None], field)[0]
                if out is None:
                    out = torch.empty(values.shape[0], rows * tile, cols * tile)
                out[:, r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = values
    return out.numpy()


def generate_map(gen: Generator, context: np.ndarray, z: torch.Tensor, kernel: int, tile: int = MAP_TILE,
                 field_at: FieldAt | None = None) -> np.ndarray:
    """Normalised output ``[S, H, W]`` of one snapshot with noise ``z [Nz]`` shared by every patch (and the
    spatial noise field of each tile from ``field_at`` when the model has one): the generator run fully
    convolutionally over ``context [K, H, W]`` (edge-padded for the first kernel), tile by tile on a fixed
    ``tile`` lattice anchored at the top-left cell, with identical shapes for every tile."""
    gen.eval()
    height, width = context.shape[1:]
    rows, cols = -(-height // tile), -(-width // tile)
    before, after = context_padding(kernel)
    # halo for the first kernel, then edge replication up to whole tiles
    padded = np.pad(context, [(0, 0), (before, after + rows * tile - height), (before, after + cols * tile - width)],
                    mode="edge")
    return generate_tiles(gen, padded, z, kernel, tile, field_at)[:, :height, :width].copy()


def generate_snapshots(artefact: ModelArtefact, context_cube: xr.DataArray, n_samples: int, seed: int,
                       progress: bool = False) -> xr.DataArray:
    """``n_samples`` synthetic snapshots ``[sample, service, y, x]`` in the artefact's traffic units,
    on the context cube's grid, computed in memory with one torch thread; the same ``seed`` gives
    byte-identical arrays whatever the number of cores."""
    if n_samples < 1:
        raise AppshotInputError(f"n_samples must be >= 1, got {n_samples}")
    context = prepare_context(artefact, context_cube)
    cfg = artefact.model_cfg
    height, width = context.shape[1:]
    rows = patch_origins(height, cfg.traffic_patch, cfg.stride)
    cols = patch_origins(width, cfg.traffic_patch, cfg.stride)
    gen = artefact.generator.cpu()
    noise = torch.Generator().manual_seed(int(seed))
    values = np.empty((n_samples, len(artefact.services), height, width), dtype=np.float32)
    with torch_threads(GENERATION_THREADS):
        for i in tqdm(range(n_samples), desc=f"generating ({height}x{width})", disable=not progress):
            if cfg.noise_scope == "snapshot":
                normalised = generate_map(gen, context, snapshot_z(seed, i, cfg), cfg.first_kernel,
                                          field_at=snapshot_field(artefact, seed, i))
            else:
                z, _ = draw_noise(noise, cfg, len(rows) * len(cols), 0, 0)
                normalised = generate_fast(gen, context, z, rows, cols, cfg.traffic_patch, cfg.first_kernel)
            values[i] = artefact.normalisation.denormalise_traffic(normalised)
    return snapshot_result(artefact, context_cube, values, seed)


def snapshot_result(artefact: ModelArtefact, context_cube: xr.DataArray, values: np.ndarray, seed: int
                    ) -> xr.DataArray:
    """Generated ``values [sample, service, y, x]`` (NumPy or Dask) as a labelled, georeferenced DataArray on
    the context cube's grid."""
    grid = grid_of(context_cube)
    result = xr.DataArray(
        values, dims=("sample", "service", "y", "x"),
        coords={"sample": np.arange(values.shape[0]), "service": list(artefact.services),
                "y": context_cube.y.values, "x": context_cube.x.values},
        name="traffic",
        attrs={"label": "synthetic", "seed": int(seed), "model_hash": artefact.model_hash,
               "peak_hour": artefact.peak_hour, "units": artefact.units, "attributes": list(artefact.attributes)})
    for coord in ("x", "y"):
        result[coord].attrs.update(context_cube[coord].attrs)
    return result.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
