"""Independent per-service models, CartaGenie-style (paper §VI-B, Table III).

The paper runs one CartaGenie model per service. Table III names the two CartaGenie design choices
that separate it from AppShot: an L1-only loss and non-overlapping patches. This baseline keeps
everything else of AppShot (generator with FiLM noise, 10 x 10 / 12 x 12 patches, normalisation)
and trains ``S`` single-channel models, one per service, each with ``use_d1 = use_d2 = False``
(L1 only) and ``overlap = False``; the services are then generated independently, so no
inter-service structure can be learnt. It is an approximation of CartaGenie, not a re-implementation
(CartaGenie's own network differs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from appshot_model.core.seeds import derive_seed
from appshot_model.evaluation.baselines.common import restrict_services
from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.fit import train_peak_hour_model
from appshot_model.model.generate import generate_snapshots
from appshot_model.model.normalise import Normalisation

MODEL_OVERRIDES = {"overlap": False, "noise_scope": "patch", "use_d1": False, "use_d2": False}


@dataclass
class IndependentModels:
    """One single-service AppShot-architecture artefact per service, in service order."""

    services: list[str]
    artefacts: list[ModelArtefact]


def train_independent(contexts: Mapping[str, xr.DataArray], traffic: Mapping[str, xr.DataArray],
                      attributes: Sequence[str], normalisation: Mapping | Normalisation, hour: str, steps: int,
                      batch_size: int, features: int, seed: int, progress: bool = False,
                      log: Callable[[str], None] | None = None) -> IndependentModels:
    """Train one L1-only, non-overlapping model per service (``steps`` each)."""
    norm = normalisation if isinstance(normalisation, Normalisation) else Normalisation.from_dict(normalisation)
    artefacts = []
    for service in norm.services:
        if log is not None:
            log(f"independent model for service {service}")
        model_cfg = ModelConfig(features=features, **MODEL_OVERRIDES)
        train_cfg = TrainConfig(steps=steps, batch_size=batch_size, seed=derive_seed(seed, "independent", service))
        artefacts.append(train_peak_hour_model(
            contexts, {c: t.sel(service=[service]) for c, t in traffic.items()}, list(attributes),
            restrict_services(norm, [service]).to_dict(), model_cfg, train_cfg, hour=hour, progress=progress,
            log=log))
    return IndependentModels(list(norm.services), artefacts)


def generate_independent(models: IndependentModels, context_cube: xr.DataArray, n_samples: int,
                         seed: int) -> np.ndarray:
    """``[n, S, H, W]`` in traffic units, each service from its own model and noise."""
    parts = [generate_snapshots(artefact, context_cube, n_samples, seed=derive_seed(seed, "independent", service))
             .values[:, 0] for service, artefact in zip(models.services, models.artefacts, strict=True)]
    return np.stack(parts, axis=1).astype(np.float32)
