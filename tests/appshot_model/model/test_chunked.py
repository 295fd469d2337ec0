"""Chunked generation on Dask equals in-memory generation byte for byte, on any lattice chunking and on a
real dask.distributed cluster; its Zarr output is written atomically."""

import dask
import numpy as np
import pytest
import torch
import xarray as xr
from distributed import Client, LocalCluster

from appshot_model.core.errors import AppshotInputError
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.chunked import generate_lazy, generate_region, write_snapshots_zarr
from appshot_model.model.config import ModelConfig
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.networks import Generator

from .test_generate import _randomise_bn, make_artefact, make_context

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("noise", ["film", "concat"])
def test_chunked_equals_in_memory_for_every_lattice_chunking(noise):
    artefact = make_artefact(noise)
    context = make_context(150, 133)  # not a multiple of the 64-cell tile: partial last chunks
    reference = generate_snapshots(artefact, context, 2, seed=7)
    with dask.config.set(scheduler="synchronous"):
        for chunk in (64, 128, 192):
            chunked = generate_lazy(artefact, context, 2, seed=7, chunk_cells=chunk)
            assert chunked.chunks[2] == tuple(min(chunk, 150 - y) for y in range(0, 150, chunk))
            computed = chunked.compute()
            assert computed.values.tobytes() == reference.values.tobytes(), f"chunks of {chunk} cells differ"
            assert computed.attrs == reference.attrs and computed.rio.transform() == reference.rio.transform()
    assert not np.array_equal(reference.values[0], reference.values[1])


def test_a_lazily_read_context_stays_lazy_and_gives_the_same_bytes():
    artefact = make_artefact()
    context = make_context(70, 90)
    lazy_context = context.chunk({"y": 64, "x": 64})
    with dask.config.set(scheduler="synchronous"):
        chunked = generate_lazy(artefact, lazy_context, 1, seed=3, chunk_cells=64)
        assert isinstance(chunked.data, dask.array.Array)
        assert chunked.values.tobytes() == generate_snapshots(artefact, context, 1, seed=3).values.tobytes()


def test_a_cluster_at_an_address_generates_and_zarr_is_written_atomically(tmp_path):
    artefact = make_artefact()
    context = make_context(90, 70)
    reference = generate_snapshots(artefact, context, 2, seed=5)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        on_cluster = generate_region(artefact, context, 2, seed=5, dask_address=cluster.scheduler_address,
                                     chunk_cells=64)
        assert on_cluster.values.tobytes() == reference.values.tobytes()
        with Client(cluster):
            store = write_snapshots_zarr(generate_lazy(artefact, context, 2, seed=5, chunk_cells=64),
                                         tmp_path / "traffic.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traffic.zarr"]  # no temporary left
    with xr.open_zarr(store) as back:
        assert back["traffic"].values.tobytes() == reference.values.tobytes()
        assert back.attrs["label"] == "synthetic" and back.attrs["seed"] == 5


def test_small_regions_generate_in_memory_and_bad_settings_are_refused():
    artefact = make_artefact()
    context = make_context(30, 30)
    # below large_cells and without an address: no cluster is started, same bytes
    assert generate_region(artefact, context, 1, seed=2).values.tobytes() == \
        generate_snapshots(artefact, context, 1, seed=2).values.tobytes()
    with pytest.raises(AppshotInputError, match="multiple of the generation tile"):
        generate_lazy(artefact, context, 1, seed=2, chunk_cells=100)
    with pytest.raises(AppshotInputError, match="noise_scope='patch'"):
        generate_lazy(make_artefact(noise_scope="patch", noise_channels=0), context, 1, seed=2)


def test_bytes_do_not_depend_on_the_callers_torch_threads():
    """At the default width torch's kernels sum differently with 1 and 2 threads; generation pins one."""
    small = make_artefact()
    torch.manual_seed(3)
    generator = Generator(3, 2, ModelConfig())
    _randomise_bn(generator)
    artefact = ModelArtefact(generator.eval(), ModelConfig(), small.train_cfg, small.attributes, small.services,
                             small.normalisation, "morning", "bit/s", "0" * 64)
    context = make_context(64, 64)
    torch.set_num_threads(2)
    with_two = generate_snapshots(artefact, context, 1, seed=0).values
    assert torch.get_num_threads() == 2  # restored
    torch.set_num_threads(1)
    assert generate_snapshots(artefact, context, 1, seed=0).values.tobytes() == with_two.tobytes()
    torch.set_num_threads(2)
    assert generate_region(artefact, context, 1, seed=0).values.tobytes() == with_two.tobytes()
