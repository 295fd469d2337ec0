import numpy as np
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.model.patches import (check_map_size, context_padding, map_to_patches, pad_context, patch_grid,
                                         patch_origins, stitch)


def test_twenty_by_twenty_gives_121_overlapping_and_4_disjoint_patches():
    rows, cols = patch_grid(20, 20, 10, 1)
    assert len(rows) == 121
    assert rows.min() == 0 and rows.max() == 10 and cols.max() == 10
    rows, cols = patch_grid(20, 20, 10, 10)
    assert len(rows) == 4


def test_no_overlap_shifts_last_patch_to_the_edge():
    assert patch_origins(23, 10, 10).tolist() == [0, 10, 13]
    assert patch_origins(20, 10, 10).tolist() == [0, 10]


def test_stitching_constant_patches_returns_the_constant():
    rows, cols = patch_grid(17, 23, 10, 1)
    patches = np.full((len(rows), 2, 10, 10), 3.5, dtype=np.float32)
    out = stitch(patches, rows, cols, 17, 23)
    assert out.shape == (2, 17, 23)
    np.testing.assert_allclose(out, 3.5, rtol=1e-6)


@pytest.mark.parametrize("stride", [1, 10])
def test_stitching_the_patches_of_a_map_returns_the_map(stride):
    rng = np.random.default_rng(1)
    traffic = rng.random((3, 2, 21, 14)).astype(np.float32)
    context = rng.random((5, 21, 14)).astype(np.float32)
    tp, cp, rows, cols = map_to_patches(traffic, context, 10, 3, stride)
    assert tp.shape == (len(rows), 3, 2, 10, 10) and cp.shape == (len(rows), 5, 12, 12)
    out = stitch(tp[:, 0], rows, cols, 21, 14)
    np.testing.assert_allclose(out, traffic[0], rtol=1e-6)


def test_context_patch_is_centred_on_traffic_patch_with_edge_replication():
    context = np.arange(400, dtype=np.float32).reshape(1, 20, 20)
    padded = pad_context(context, 3)
    assert padded.shape == (1, 22, 22)
    assert padded[0, 0, 0] == context[0, 0, 0] and padded[0, 5, 0] == context[0, 4, 0]
    traffic = context[None]
    tp, cp, rows, cols = map_to_patches(traffic, context, 10, 3, 1)
    i = 37
    np.testing.assert_array_equal(cp[i, 0, 1:11, 1:11], tp[i, 0, 0])
    assert context_padding(3) == (1, 1) and context_padding(4) == (1, 2)
    assert pad_context(context, 4).shape == (1, 23, 23)


def test_map_smaller_than_a_patch_is_a_clear_error():
    with pytest.raises(AppshotInputError, match=r"9 x 30.*10 x 10 traffic.*12 x 12 context"):
        check_map_size(9, 30, 10, 3)
    with pytest.raises(AppshotInputError, match="smaller than one patch"):
        patch_grid(5, 5)
