"""Entry points used by the pipeline: run-config loading and training one peak-hour model."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr
import yaml
from pydantic import BaseModel, ValidationError

from appshot_model.core.cube import check_context, check_traffic
from appshot_model.core.errors import AppshotInputError
from appshot_model.core.seeds import derive_seed
from appshot_model.model.artefact import ModelArtefact, training_inputs_hash
from appshot_model.model.calibrate import calibrate_noise
from appshot_model.model.checkpoint import TrainingCheckpoint
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.normalise import Normalisation
from appshot_model.model.train import train_gan

SECTIONS: dict[str, type[BaseModel]] = {"model": ModelConfig, "train": TrainConfig}


def _build(section: str, cls: type[BaseModel], values: object, source: str) -> BaseModel:
    """A config section from a mapping, with errors naming the file, field and valid fields."""
    if not isinstance(values, Mapping):
        raise AppshotInputError(f"{source}: section '{section}' must be a mapping of field: value, "
                                f"got {type(values).__name__}")
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown field '{section}.{field}'")
            else:
                problems.append(f"'{section}.{field}' = {error.get('input')!r}: {error['msg']}")
        raise AppshotInputError(f"{source}: {'; '.join(problems)}. Valid '{section}' fields: "
                                f"{sorted(cls.model_fields)}") from exc


def load_run_config(config_file: str | None, seed: int) -> tuple[ModelConfig, TrainConfig]:
    """Model and training configs from a YAML file with optional ``model:`` and ``train:`` sections
    (defaults without a file); the training seed is ``seed`` unless the file sets ``train.seed``."""
    data: dict = {}
    source = "default run config"
    if config_file is not None:
        path = Path(config_file)
        source = f"run config {path}"
        if not path.is_file():
            raise AppshotInputError(f"run config file {path} does not exist (expected a YAML file with optional "
                                    f"'model:' and 'train:' sections)")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise AppshotInputError(f"{source} is not valid YAML: {exc}") from exc
        if not isinstance(data, Mapping):
            raise AppshotInputError(f"{source} must be a mapping with 'model:' and/or 'train:' sections")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise AppshotInputError(f"{source}: unknown sections {unknown}; valid sections: {sorted(SECTIONS)}")
    model_cfg = _build("model", ModelConfig, data.get("model") or {}, source)
    train_values = dict(data.get("train") or {})
    train_values.setdefault("seed", seed)
    train_cfg = _build("train", TrainConfig, train_values, source)
    return model_cfg, train_cfg


def _city_arrays(city: str, context: xr.DataArray, traffic: xr.DataArray, attributes: list[str],
                 services: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One city's context ``[K, H, W]`` and traffic ``[T, S, H, W]`` in the model's channel order."""
    present = {str(a) for a in context.attribute.values}
    missing = [a for a in attributes if a not in present]
    if missing:
        raise AppshotInputError(f"context cube of {city} lacks attributes {missing}")
    have = {str(s) for s in traffic.service.values}
    if have != set(services):
        raise AppshotInputError(f"traffic of {city} has services {sorted(have)}, but the normalisation "
                                f"was fitted for {services}")
    context = context.sel(attribute=attributes).transpose("attribute", "y", "x")
    traffic = traffic.sel(service=services).transpose("time", "service", "y", "x")
    check_context(context, f"context cube of {city}")
    check_traffic(traffic, f"traffic of {city}")
    if context.shape[1:] != traffic.shape[2:]:
        raise AppshotInputError(f"{city}: context is {context.shape[1:]} cells but traffic is {traffic.shape[2:]}")
    return context.values.astype(np.float32), traffic.values.astype(np.float32)


def check_training_inputs(contexts: Mapping[str, xr.DataArray], traffic: Mapping[str, xr.DataArray],
                          attributes: Sequence[str], norm: Normalisation, user: str) -> tuple[list[str], list[str], str]:
    """Attributes as strings, the training cities (sorted) and their one traffic unit; errors when the
    normalisation was fitted for other attributes, the cities of context and traffic differ, or the
    units are mixed. ``user`` names who asked (e.g. "the model") in the attribute error."""
    attributes = [str(a) for a in attributes]
    if norm.attributes != attributes:
        raise AppshotInputError(f"normalisation was fitted for attributes {norm.attributes}, "
                                f"but {user} is asked to use {attributes}")
    if set(contexts) != set(traffic) or not traffic:
        raise AppshotInputError(f"need context and traffic for the same non-empty set of cities; context: "
                                f"{sorted(contexts)}, traffic: {sorted(traffic)}")
    cities = sorted(traffic)
    units = {str(traffic[c].attrs.get("units", "bit/s")) for c in cities}
    if len(units) != 1:
        raise AppshotInputError(f"training traffic mixes units {sorted(units)}; convert to one unit first")
    return attributes, cities, units.pop()


def train_peak_hour_model(contexts: dict[str, xr.DataArray], traffic: dict[str, xr.DataArray], attributes: list[str],
                          normalisation: dict, model_cfg: ModelConfig, train_cfg: TrainConfig, hour: str,
                          progress: bool = False, log: Callable[[str], None] | None = None,
                          checkpoint_dir: str | os.PathLike | None = None, checkpoint_every: int = 100) -> ModelArtefact:
    """Train the AppShot model of one peak hour on the given cities' weekday snapshots. With
    ``checkpoint_dir`` the run is checkpointed every ``checkpoint_every`` steps and a killed run resumes
    from its last checkpoint (only one of the same inputs and settings)."""
    norm = Normalisation.from_dict(normalisation)
    attributes, cities, unit = check_training_inputs(contexts, traffic, attributes, norm, "the model")
    raw = [_city_arrays(c, contexts[c], traffic[c], attributes, norm.services) for c in cities]
    ctx_raw, traffic_raw = [r[0] for r in raw], [r[1] for r in raw]
    if log is not None:
        log(f"training {hour} model on {len(cities)} cities ({sum(t.shape[0] for t in traffic_raw)} snapshots), "
            f"{len(attributes)} attributes, {len(norm.services)} services")
    inputs_hash = training_inputs_hash(ctx_raw, traffic_raw, attributes, list(norm.services), model_cfg, train_cfg)
    checkpoint = (TrainingCheckpoint(Path(checkpoint_dir) / f"{hour}.pt", inputs_hash, checkpoint_every)
                  if checkpoint_dir is not None else None)
    contexts_n, traffic_n = [norm.normalise_context(c) for c in ctx_raw], [norm.normalise_traffic(t) for t in traffic_raw]
    generator, discriminators, history = train_gan(contexts_n, traffic_n, norm.service_weights(), model_cfg, train_cfg,
                                                   progress=progress, log=log, checkpoint=checkpoint)
    calibration = None
    if model_cfg.calibrate_noise and model_cfg.noise_scope == "snapshot":
        calibration = calibrate_noise(generator, contexts_n, traffic_n, norm.service_weights(), model_cfg,
                                      derive_seed(train_cfg.seed, "calibration"))
        if log is not None:
            log(f"noise calibration: z x{calibration.z_scale:.3f}; city-total "
                f"spread {calibration.uncalibrated_spread:.3f} -> {calibration.generated_spread:.3f} (real "
                f"{calibration.real_spread:.3f}), cell CV {calibration.uncalibrated_cell_cv:.3f} -> "
                f"{calibration.generated_cell_cv:.3f} (real {calibration.real_cell_cv:.3f})")
    labels = sorted({str(traffic[c].attrs.get("label", "")) for c in cities} - {""})
    return ModelArtefact(
        generator=generator, model_cfg=model_cfg, train_cfg=train_cfg, attributes=attributes,
        services=list(norm.services), normalisation=norm, peak_hour=hour, units=unit,
        training_inputs_hash=inputs_hash,
        history=history, training_cities=cities, discriminators=discriminators,
        training_dates={c: sorted({str(d)[:10] for d in traffic[c]["time"].values}) for c in cities},
        noise_calibration=calibration.to_dict() if calibration is not None else None,
        training_label=f"{'/'.join(labels) or 'unlabelled'} weekday {hour}-peak traffic of {', '.join(cities)}")
