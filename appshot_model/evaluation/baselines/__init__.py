"""Baselines and ablations for the evaluation (paper §VI-B, §VII), behind one API.

::

    fitted = train_method("pix2pix", contexts, traffic, attributes, normalisation, hour="morning", seed=0)
    samples = generate_method(fitted, context_cube, n_samples=10, seed=1)   # [n, s, y, x], traffic units

``contexts`` / ``traffic`` map training-city names to context cubes ``[attribute, y, x]`` and
weekday peak-hour traffic ``[time, service, y, x]`` (what ``train_peak_hour_model`` takes);
``normalisation`` is the dict of the ``normalisation`` asset. :data:`METHODS` lists every method:
``appshot``, the baselines (:data:`BASELINES`) and the ablations (:data:`ABLATIONS`). Methods with
``same_as`` set are the same model as another entry (e.g. ``appshot_l1_d1_d2`` is AppShot itself,
Table III) and need not be trained twice.

All methods are seeded and, on CPU, byte-identical for the same inputs, seed and budget.
:class:`Budget` sets optimiser steps (per model), batch size and base width; ``None`` fields take
the method's defaults (:data:`METHODS` ``default_steps``; :func:`default_batch`: 4 tiles of 32 x 32 cells
for AppShot-family models with one noise per snapshot (``TrainConfig``), 64 patches for the rest; width:
``ModelConfig``'s F (32) for AppShot-family models, 32 for the U-Nets).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.core.seeds import derive_seed
from appshot_model.evaluation.baselines.appshot_variants import generate_appshot_variant, train_appshot_variant
from appshot_model.evaluation.baselines.cnn import generate_cnn, train_cnn
from appshot_model.evaluation.baselines.common import context_array, training_data
from appshot_model.evaluation.baselines.fdas import fit_fdas, sample_fdas
from appshot_model.evaluation.baselines.independent import generate_independent, train_independent
from appshot_model.evaluation.baselines.pix2pix import generate_pix2pix, train_pix2pix
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.normalise import Normalisation


@dataclass(frozen=True)
class MethodSpec:
    """One entry of :data:`METHODS`."""

    name: str
    family: str  # "appshot", "fdas", "cnn", "pix2pix" or "independent"
    description: str
    overrides: dict = field(default_factory=dict)  # ModelConfig fields (appshot family)
    default_steps: int = 600
    default_batch: int | None = None  # None: :func:`default_batch`
    stochastic: bool = True
    same_as: str | None = None
    paper: str = ""


@dataclass(frozen=True)
class Budget:
    """Training budget: optimiser steps per model, batch size, base width (``None``: method default)."""

    steps: int | None = None
    batch_size: int | None = None
    features: int | None = None

    @classmethod
    def of(cls, budget: Budget | int | Mapping | None) -> Budget:
        """A :class:`Budget` from itself, a number of steps, a mapping of fields, or ``None``."""
        if budget is None:
            return cls()
        if isinstance(budget, Budget):
            return budget
        if isinstance(budget, int):
            return cls(steps=budget)
        if isinstance(budget, Mapping):
            unknown = set(budget) - {"steps", "batch_size", "features"}
            if unknown:
                raise AppshotInputError(f"unknown budget fields {sorted(unknown)}; valid: steps, batch_size, features")
            return cls(**budget)
        raise AppshotInputError(f"budget must be a Budget, an int (steps), a mapping or None; "
                                f"got {type(budget).__name__}")


def _appshot(name: str, description: str, overrides: dict, same_as: str | None = None, paper: str = "") -> MethodSpec:
    return MethodSpec(name, "appshot", description, overrides, default_steps=TrainConfig().steps, same_as=same_as,
                      paper=paper)


#: Every method the evaluation knows, in table order.
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in [
    _appshot("appshot", "AppShot: FiLM noise, first kernel 3, L1 + D1 + D2, overlapping patches", {},
             paper="Table II 'AppShot'"),
    MethodSpec("fdas", "fdas", "fit a (zero-inflated) log-normal per service, sample every cell i.i.d.",
               default_steps=0, paper="Table II 'FDaS'"),
    MethodSpec("cnn", "cnn", "U-Net regression, L1 loss, non-overlapping patches, deterministic",
               stochastic=False, paper="Table II 'CNN'"),
    MethodSpec("pix2pix", "pix2pix", "U-Net generator with decoder dropout + conditional PatchGAN, "
               "GAN + 100 L1, non-overlapping patches", paper="Table II 'Pix2Pix'"),
    MethodSpec("independent", "independent", "one single-service model per service (CartaGenie-style: "
               "L1 only, non-overlapping patches)", default_steps=100, paper="Table II 'CartaGenie'"),
    _appshot("appshot_features_64", "AppShot at the paper's width F = 64 (default 32: the CPU budget)",
             {"features": 64}, paper="§V-C F = 64"),
    _appshot("appshot_no_overlap", "AppShot with non-overlapping patches", {"overlap": False, "noise_scope": "patch"},
             paper="Table III 'No Overlap'"),
    _appshot("appshot_l1_only", "AppShot trained with the L1 loss only", {"use_d1": False, "use_d2": False},
             paper="Table III 'L1 Only'"),
    _appshot("appshot_l1_d1", "AppShot without the sum discriminator D2", {"use_d2": False},
             paper="Table III 'L1+D1'"),
    _appshot("appshot_l1_d1_d2", "= appshot (L1 + D1 + D2 is the AppShot design)", {}, same_as="appshot",
             paper="Table III 'L1+D1+D2'"),
    _appshot("appshot_patch_noise", "AppShot with one z per stride-1 patch, stitched by averaging (the first "
             "implementation's generation)", {"noise_scope": "patch"}, paper="beyond the paper: noise scope"),
    _appshot("appshot_sample_l1", "AppShot with the L1 against one real day per sample instead of between "
             "conditional means", {"l1_target": "sample"}, paper="beyond the paper: §V-C2 L1 target"),
    _appshot("appshot_l1_max_units", "AppShot with the L1 in max-normalised units (the paper's) instead of units "
             "of each service's mean level", {"l1_units": "max"}, paper="beyond the paper: L1 units"),
    _appshot("appshot_uncalibrated_noise", "AppShot without the noise calibration after training (z and noise "
             "field as trained)", {"calibrate_noise": False}, paper="beyond the paper: noise calibration"),
    _appshot("appshot_no_noise_field", "AppShot with the non-spatial z only (the paper's noise), no spatial noise "
             "field", {"noise_channels": 0}, paper="beyond the paper: noise field"),
    _appshot("appshot_concat_noise", "AppShot with z concatenated to the features instead of FiLM",
             {"noise": "concat"}, paper="Fig. 18 (no FiLM)"),
    _appshot("appshot_kernel_1", "AppShot with first-conv kernel 1 (context patch 10)", {"first_kernel": 1},
             paper="Table V K=1"),
    _appshot("appshot_kernel_2", "AppShot with first-conv kernel 2 (context patch 11)", {"first_kernel": 2},
             paper="Table V K=2"),
    _appshot("appshot_kernel_3", "= appshot (kernel 3 is the AppShot default)", {"first_kernel": 3},
             same_as="appshot", paper="Table V K=3"),
    _appshot("appshot_kernel_6", "AppShot with first-conv kernel 6 (context patch 15)", {"first_kernel": 6},
             paper="Table V K=6"),
    _appshot("appshot_kernel_11", "AppShot with first-conv kernel 11 (context patch 20)", {"first_kernel": 11},
             paper="Table V K=11"),
]}
BASELINES = ("fdas", "cnn", "pix2pix", "independent")
ABLATIONS = tuple(name for name in METHODS if name.startswith("appshot_"))


@dataclass
class FittedMethod:
    """A trained method: ``model`` is method-specific (ModelArtefact, FDaSModel, PatchModel or
    IndependentModels); the rest describes how it was made."""

    method: str
    hour: str
    seed: int
    budget: dict
    services: list[str]
    attributes: list[str]
    units: str
    training_cities: list[str]
    model: Any
    normalisation: dict
    training_seconds: float = 0.0
    info: dict = field(default_factory=dict)


def method_spec(method: str) -> MethodSpec:
    """The registry entry, or an error listing the valid names."""
    if method not in METHODS:
        raise AppshotInputError(f"unknown method {method!r}; valid methods: {list(METHODS)}")
    return METHODS[method]


#: Batch of the methods that train on single patches (U-Nets, per-patch-noise AppShot variants): patches.
PATCH_BATCH = 64


def default_batch(spec: MethodSpec) -> int:
    """Batch per optimiser step when the budget leaves it open: tiles for AppShot-family models that draw one
    noise per snapshot (each tile holds hundreds of overlapping patches), :data:`PATCH_BATCH` patches else."""
    if spec.default_batch is not None:
        return spec.default_batch
    if spec.family == "appshot" and ModelConfig(**spec.overrides).noise_scope == "snapshot":
        return TrainConfig().batch_size
    return PATCH_BATCH


def train_method(method: str, contexts: Mapping[str, xr.DataArray], traffic: Mapping[str, xr.DataArray],
                 attributes: Sequence[str], normalisation: Mapping, hour: str, seed: int,
                 budget: Budget | int | Mapping | None = None, progress: bool = False,
                 log: Callable[[str], None] | None = None) -> FittedMethod:
    """Train ``method`` (a key of :data:`METHODS`) on the training cities' peak-hour traffic."""
    spec = method_spec(method)
    budget = Budget.of(budget)
    steps = budget.steps if budget.steps is not None else spec.default_steps
    if spec.family == "fdas":  # a closed-form fit: no optimiser steps
        steps = 0
    batch = budget.batch_size or default_batch(spec)
    wide = spec.family in ("appshot", "independent")
    features = budget.features or (ModelConfig().features if wide else 32)
    data = training_data(contexts, traffic, attributes, normalisation)  # checks inputs for every method
    norm_dict = data.normalisation.to_dict()
    started = time.perf_counter()
    method_seed = derive_seed(seed, method)
    if spec.family == "appshot":
        model = train_appshot_variant(spec.overrides, contexts, traffic, attributes, normalisation, hour, steps, batch,
                                      features, seed, progress, log)
        info = {"model_hash": model.model_hash, "model_config": model.model_cfg.model_dump()}
    elif spec.family == "fdas":
        model = fit_fdas(data)
        info = {"parameters": model.as_dict()}
    elif spec.family == "cnn":
        model = train_cnn(data, steps, batch, features, method_seed, progress=progress, log=log)
        info = {"final_loss": model.history["loss"][-1] if model.history["loss"] else None}
    elif spec.family == "pix2pix":
        model = train_pix2pix(data, steps, batch, features, method_seed, progress=progress, log=log)
        info = {"final_losses": {k: v[-1] for k, v in model.history.items() if v}}
    else:
        model = train_independent(contexts, traffic, attributes, normalisation, hour, steps, batch, features,
                                  method_seed, progress, log)
        info = {"model_hashes": {s: a.model_hash for s, a in zip(model.services, model.artefacts, strict=True)}}
    return FittedMethod(method=method, hour=hour, seed=int(seed),
                        budget={"steps": steps, "batch_size": batch, "features": features},
                        services=list(data.normalisation.services), attributes=[str(a) for a in attributes],
                        units=data.units, training_cities=data.cities, model=model, normalisation=norm_dict,
                        training_seconds=round(time.perf_counter() - started, 3), info=info)


def generate_method(fitted: FittedMethod, context_cube: xr.DataArray, n_samples: int, seed: int) -> np.ndarray:
    """``n_samples`` snapshots ``[n, service, y, x]`` (float32, traffic units, the fitted services'
    order) for the cube's grid; the same seed gives byte-identical arrays."""
    if n_samples < 1:
        raise AppshotInputError(f"n_samples must be >= 1, got {n_samples}")
    family = method_spec(fitted.method).family
    if family == "appshot":
        return generate_appshot_variant(fitted.model, context_cube, n_samples, seed)
    if family == "independent":
        return generate_independent(fitted.model, context_cube, n_samples, seed)
    raw = context_array(context_cube, fitted.attributes)
    if family == "fdas":
        return sample_fdas(fitted.model, raw.shape[1], raw.shape[2], n_samples, derive_seed(seed, "fdas"))
    context = Normalisation.from_dict(fitted.normalisation).normalise_context(raw)
    if family == "cnn":
        return generate_cnn(fitted.model, context, n_samples)
    return generate_pix2pix(fitted.model, context, n_samples, seed)


def save_method(fitted: FittedMethod, path: str | os.PathLike) -> Path:
    """Write a fitted method to one file (``torch.save`` of the whole object), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(fitted, tmp)
    return path


def load_method(path: str | os.PathLike) -> FittedMethod:
    """Read a file written by :func:`save_method` (trusted files only: it unpickles objects)."""
    path = Path(path)
    if not path.is_file():
        raise AppshotInputError(f"fitted method file {path} does not exist")
    fitted = torch.load(path, weights_only=False)
    if not isinstance(fitted, FittedMethod):
        raise AppshotInputError(f"{path} does not hold a fitted method")
    return fitted


def describe_methods() -> list[dict]:
    """The registry as plain dicts (for metadata / docs)."""
    return [asdict(spec) for spec in METHODS.values()]


__all__ = ["ABLATIONS", "BASELINES", "METHODS", "Budget", "FittedMethod", "MethodSpec", "describe_methods",
           "generate_method", "load_method", "method_spec", "save_method", "train_method"]
