"""Chunked generation of large regions with Dask arrays, on a ``dask.distributed`` cluster.

The context cube becomes a Dask array chunked on multiples of the generation lattice (``MAP_TILE`` cells),
anchored at the region's top-left cell. ``map_overlap`` hands every chunk its first-kernel halo (edge
replication at the region's border, as the in-memory path pads) and the chunk generates its whole tiles with
the position-keyed noise of :mod:`appshot_model.model.noise`. A chunk thus computes exactly the tiles, inputs
and tensor shapes that :func:`~appshot_model.model.generate.generate_snapshots` computes for those cells, so
the snapshots are byte-identical to the in-memory ones whatever the chunking.

Torch runs with one intra-op thread while generating (``GENERATION_THREADS``; its kernels may sum in another
order with another thread count), so the bytes do not depend on the cores of the machines; parallelism comes
from the Dask threads, one chunk each. :func:`dask_client` and :func:`generate_region` set it; compute a
:func:`generate_lazy` result under them (or with torch at one thread) to get the in-memory bytes.

The result is a lazy ``[sample, service, y, x]`` DataArray; :func:`write_snapshots_zarr` writes it chunk by
chunk to a Zarr store (atomically), so peak memory is a few chunks per worker thread, not the region.
Only ``noise_scope="snapshot"`` models (the default) generate chunked; the per-patch noise ablation draws its
noise in row-major order and generates in memory only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr

from appshot_model.core.cube import check_context
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.core.threads import available_cores, torch_threads
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.generate import (GENERATION_THREADS, MAP_TILE, generate_snapshots, generate_tiles,
                                          select_attributes, snapshot_field, snapshot_result)
from appshot_model.model.noise import snapshot_z
from appshot_model.model.patches import context_padding

#: Default chunk side in cells (8 x 8 generation tiles): a 2000 x 2000 region is 16 chunks.
CHUNK_CELLS = 8 * MAP_TILE
#: Regions of at least this many cells generate on a Dask LocalCluster (smaller ones on local Dask threads).
LARGE_REGION_CELLS = 500 * 500


def check_chunk_cells(chunk_cells: int) -> int:
    """``chunk_cells`` when it is a positive multiple of ``MAP_TILE``, else an :class:`AppshotInputError`."""
    if chunk_cells < MAP_TILE or chunk_cells % MAP_TILE:
        raise AppshotInputError(f"chunk side {chunk_cells} cells: expected a positive multiple of the generation "
                                f"tile ({MAP_TILE} cells)")
    return chunk_cells


def lazy_context(artefact: ModelArtefact, context_cube: xr.DataArray, chunk_cells: int = CHUNK_CELLS) -> da.Array:
    """The cube's attributes in the artefact's order, normalised chunk by chunk: ``[K, H, W]`` float32 Dask
    array chunked ``chunk_cells`` on both spatial axes (a lazily read cube stays lazy)."""
    selected = select_attributes(artefact, context_cube)
    chunk_cells = check_chunk_cells(chunk_cells)
    data = selected.data if isinstance(selected.data, da.Array) else da.from_array(selected.values)
    data = data.rechunk((-1, chunk_cells, chunk_cells))

    def normalise(block: np.ndarray) -> np.ndarray:
        check_context(xr.DataArray(block, dims=("attribute", "y", "x"), coords={"attribute": artefact.attributes}))
        return artefact.normalisation.normalise_context(block)

    return data.map_blocks(normalise, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32))


def _chunk_origins(chunks: tuple[int, ...]) -> list[int]:
    return [0, *np.cumsum(chunks[:-1]).tolist()]


def lazy_sample(artefact: ModelArtefact, context: da.Array, seed: int, sample: int) -> da.Array:
    """Normalised-then-denormalised snapshot ``sample`` ``[S, H, W]`` of the lazy ``context`` (from
    :func:`lazy_context`), one Dask task per chunk."""
    cfg = artefact.model_cfg
    gen = artefact.generator.cpu().eval()
    kernel, services = cfg.first_kernel, len(artefact.services)
    before, after = context_padding(kernel)
    depth = max(before, after)
    row_origins, col_origins = _chunk_origins(context.chunks[1]), _chunk_origins(context.chunks[2])
    z = snapshot_z(seed, sample, cfg)
    field_at = snapshot_field(artefact, seed, sample)

    def chunk(block: np.ndarray, block_id: tuple[int, int, int]) -> np.ndarray:
        height, width = block.shape[1] - 2 * depth, block.shape[2] - 2 * depth
        rows, cols = -(-height // MAP_TILE), -(-width // MAP_TILE)
        # map_overlap gave `depth` cells of halo; keep the kernel's own halo, edge-pad up to whole tiles
        block = block[:, depth - before:block.shape[1] - depth + after, depth - before:block.shape[2] - depth + after]
        block = np.pad(block, [(0, 0), (0, rows * MAP_TILE - height), (0, cols * MAP_TILE - width)], mode="edge")
        origin = (row_origins[block_id[1]], col_origins[block_id[2]])
        normalised = generate_tiles(gen, block, z, kernel, MAP_TILE, field_at, origin)[:, :height, :width]
        return artefact.normalisation.denormalise_traffic(normalised)

    name = f"appshot-generate-{artefact.model_hash[:16]}-{seed}-{sample}-{dask.base.tokenize(context)}"
    return da.map_overlap(chunk, context, depth={0: 0, 1: depth, 2: depth},
                          boundary={0: "none", 1: "nearest", 2: "nearest"}, trim=False, dtype=np.float32,
                          chunks=((services,), context.chunks[1], context.chunks[2]), name=name,
                          meta=np.empty((0, 0, 0), np.float32))


def generate_lazy(artefact: ModelArtefact, context_cube: xr.DataArray, n_samples: int, seed: int,
                  chunk_cells: int = CHUNK_CELLS) -> xr.DataArray:
    """``n_samples`` synthetic snapshots ``[sample, service, y, x]`` as a lazy Dask-backed DataArray with the
    attributes and georeference of :func:`~appshot_model.model.generate.generate_snapshots`, whose values it
    equals byte for byte; computing it runs one task per chunk on the active Dask scheduler."""
    if n_samples < 1:
        raise AppshotInputError(f"n_samples must be >= 1, got {n_samples}")
    if artefact.model_cfg.noise_scope != "snapshot":
        raise AppshotInputError("chunked generation needs a model with noise_scope='snapshot'; per-patch noise "
                                "(noise_scope='patch') generates in memory only (generate_snapshots)")
    context = lazy_context(artefact, context_cube, chunk_cells)
    values = da.stack([lazy_sample(artefact, context, seed, i) for i in range(n_samples)])
    return snapshot_result(artefact, context_cube, values, seed)


def write_snapshots_zarr(snapshots: xr.DataArray, path: str | os.PathLike) -> Path:
    """Write (computing chunk by chunk when lazy) ``snapshots`` as a Zarr store at ``path``, atomically:
    into a temporary folder beside it, renamed into place when complete."""
    path = Path(path)
    with atomic_path(path) as tmp:
        snapshots.to_dataset(promote_attrs=True).to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
    return path


@contextlib.contextmanager
def dask_client(address: str | None = None, threads: int | None = None) -> Iterator[object]:
    """A ``dask.distributed`` client: of the cluster at ``address`` when given (its workers' torch is set to one
    intra-op thread), else of a new in-process ``LocalCluster`` (one worker, ``threads`` threads; default the
    cores available; torch at one thread meanwhile) closed at the end. Threads share the loaded model (no copy
    per worker process; torch releases the GIL in its kernels)."""
    from distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            client.run(torch.set_num_threads, GENERATION_THREADS)
            yield client
        return
    threads = threads or len(available_cores())
    with torch_threads(GENERATION_THREADS), LocalCluster(n_workers=1, threads_per_worker=threads, processes=False,
                                                         dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def generate_region(artefact: ModelArtefact, context_cube: xr.DataArray, n_samples: int, seed: int, *,
                    progress: bool = False, dask_address: str | None = None,
                    large_cells: int = LARGE_REGION_CELLS, chunk_cells: int = CHUNK_CELLS) -> xr.DataArray:
    """Snapshots in memory, the bytes of :func:`~appshot_model.model.generate.generate_snapshots` however
    computed: on the Dask cluster at ``dask_address``, or on a LocalCluster when the region has at least
    ``large_cells`` cells, else on Dask's local thread pool in one-tile chunks (no cluster to start). Models with
    per-patch noise generate with ``generate_snapshots`` (``progress``: its tqdm bar; unused on Dask)."""
    if artefact.model_cfg.noise_scope != "snapshot":
        return generate_snapshots(artefact, context_cube, n_samples, seed, progress=progress)
    cells = context_cube.sizes["y"] * context_cube.sizes["x"]
    if cells < large_cells and not dask_address:
        lazy = generate_lazy(artefact, context_cube, n_samples, seed, MAP_TILE)
        with torch_threads(GENERATION_THREADS), dask.config.set(scheduler="threads",
                                                                num_workers=len(available_cores())):
            return lazy.compute()
    lazy = generate_lazy(artefact, context_cube, n_samples, seed, chunk_cells)
    with dask_client(dask_address):
        return lazy.compute()
