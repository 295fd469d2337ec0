"""Exact EMD on a grid and NEMD: hand values, agreement with dense POT, the approximation bound, solver errors."""

import math

import numpy as np
import ot
import pytest

from appshot_model.evaluation import emd as emd_module
from appshot_model.evaluation.emd import EMDSolverError, emd_grid, emd_to_uniform, nemd
from tests.appshot_model.evaluation.maps import blobs


def _dense_emd(a: np.ndarray, b: np.ndarray) -> float:
    yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
    cells = np.stack([yy.ravel(), xx.ravel()], 1).astype(float)
    return float(ot.emd2(a.ravel() / a.sum(), b.ravel() / b.sum(), ot.dist(cells, cells, metric="euclidean"),
                         numItermax=10 ** 8))


# ---- EMD / NEMD


def test_emd_two_cell_hand_values():
    assert emd_grid(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(1.0)
    assert emd_grid(np.array([[3.0, 1.0]]), np.array([[1.0, 3.0]])) == pytest.approx(0.5)  # move 0.5 by 1 cell
    diagonal = emd_grid(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 1.0]]))
    assert diagonal == pytest.approx(math.sqrt(2))
    assert emd_to_uniform(np.array([[1.0, 0.0]])) == pytest.approx(0.5)
    # scale does not matter: maps are unit-mass distributions
    assert emd_grid(np.array([[10.0, 0.0]]), np.array([[0.0, 0.1]])) == pytest.approx(1.0)


def test_nemd_of_map_with_itself_is_0_and_with_uniform_is_1():
    m = blobs(3, 20, 24)
    assert nemd(m, m) == 0.0
    assert nemd(m, 5 * m) == pytest.approx(0.0, abs=1e-12)  # float rounding of the unit-mass scaling
    assert nemd(m, np.ones_like(m)) == pytest.approx(1.0)
    assert math.isnan(nemd(np.ones((4, 4)), blobs(1, 4, 4)))  # real map uniform: undefined


@pytest.mark.parametrize("shape", [(17, 23), (45, 50)])  # single level, and multiscale column generation
def test_exact_emd_matches_dense_network_simplex(shape):
    a, b = blobs(10, *shape), blobs(11, *shape)
    b[b < np.quantile(b, 0.3)] = 0.0  # zeros on one side
    info = {}
    assert emd_grid(a, b, info=info) == pytest.approx(_dense_emd(a, b), rel=1e-10, abs=1e-10)
    assert info["levels"][-1]["block"] == 1 and info["levels"][-1]["min_reduced_cost"] >= -emd_module.EMD_TOLERANCE
    if shape == (45, 50):
        assert len(info["levels"]) >= 2


def test_coarse_emd_is_approximate_within_its_bound():
    a, b = blobs(20, 45, 50), blobs(21, 45, 50)
    exact = emd_grid(a, b)
    for block in (2, 4):
        approx = emd_grid(a, b, method="coarse", block=block)
        assert abs(approx - exact) <= math.sqrt(2) * (block - 1)
    assert emd_grid(a, b, method="coarse", block=1) == pytest.approx(exact, rel=1e-12)


def test_solver_non_convergence_raises_instead_of_returning_a_number():
    a, b = blobs(30, 20, 20), blobs(31, 20, 20)
    with pytest.raises(EMDSolverError, match="did not converge"):
        emd_grid(a, b, num_itermax=1, max_retries=0)
    with pytest.raises(EMDSolverError):
        nemd(a, b, num_itermax=2, max_retries=1)
    assert emd_grid(a, b, num_itermax=10, max_retries=4) == pytest.approx(_dense_emd(a, b), rel=1e-10)


# ---- SSIM / PSNR


