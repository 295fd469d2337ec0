"""Leave-one-city-out folds: what a fold fits on its training cities only (paper §VI)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import xarray as xr

from appshot_model.context.selection import cube_scc_table, select_attributes
from appshot_model.model.normalise import fit_normalisation_to_cubes


def fold_inputs(contexts: Mapping[str, xr.DataArray], snapshots: Mapping[str, xr.DataArray], train: Sequence[str],
                threshold: float) -> tuple[list[str], dict]:
    """Attributes selected by Spearman over the fold's training cities (at this hour) and normalisation
    constants fitted on those cities only."""
    attributes = [str(a) for a in next(iter(contexts.values())).attribute.values]
    selected, _ = select_attributes(cube_scc_table(contexts, snapshots, train, attributes), threshold)
    return selected, fit_normalisation_to_cubes(contexts, snapshots, train, selected).to_dict()
