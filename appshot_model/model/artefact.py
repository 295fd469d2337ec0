"""The trained-model artefact: generator weights plus everything needed to use them.

One directory per model, loadable without the pipeline:

- ``model.json``: model and training configs, attributes and services (channel orders),
  normalisation constants, peak hour, traffic units, discriminator/optimiser description,
  training-input and model hashes, loss history, torch version;
- ``weights.pt``: the generator ``state_dict`` (and the discriminators', when kept).

The directory is written atomically (temp directory beside the target, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.networks import Generator
from appshot_model.model.normalise import Normalisation

FORMAT_VERSION = 1
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.pt"
DISCRIMINATOR_DESCRIPTION = ("conditional PatchGAN-style conv nets on [map ; context cropped to the traffic "
                             "patch]: D1 on the S service channels, D2 on the service sum (total traffic)")


def state_dict_hash(state: dict[str, torch.Tensor], extra: str = "") -> str:
    """SHA-256 over parameter names, dtypes, shapes and bytes (in key order), then ``extra``."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    digest.update(extra.encode())
    return digest.hexdigest()


def training_inputs_hash(contexts: list[np.ndarray], traffic: list[np.ndarray], attributes: list[str],
                         services: list[str], model_cfg: ModelConfig, train_cfg: TrainConfig) -> str:
    """SHA-256 over the training arrays (shapes + float32 bytes), attribute/service lists and configs."""
    digest = hashlib.sha256()
    for array in [*contexts, *traffic]:
        array = np.ascontiguousarray(array, dtype=np.float32)
        digest.update(str(array.shape).encode())
        digest.update(array.tobytes())
    digest.update(json.dumps({"attributes": attributes, "services": services, "model": model_cfg.model_dump(),
                              "train": train_cfg.model_dump(mode="json")}, sort_keys=True).encode())
    return digest.hexdigest()


@dataclass
class ModelArtefact:
    """A trained AppShot generator with its configs, channel orders and normalisation."""

    generator: Generator
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    attributes: list[str]
    services: list[str]
    normalisation: Normalisation
    peak_hour: str
    units: str
    training_inputs_hash: str
    history: dict[str, list[float]] = field(default_factory=dict)
    training_cities: list[str] = field(default_factory=list)
    training_label: str = ""
    #: city -> ISO dates (YYYY-MM-DD) of the snapshots trained on; the privacy gate's members.
    training_dates: dict[str, list[str]] = field(default_factory=dict)
    discriminators: dict[str, nn.Module] = field(default_factory=dict)
    #: the scales and statistics of the noise calibration (``appshot_model.model.calibrate``), already folded
    #: into the weights; None when the model was not calibrated
    noise_calibration: dict | None = None
    #: an hour-conditioned model's logit shift per day type (weekday, weekend), hour of day and service
    #: (``appshot_model.model.hours.calibrate_hour_levels``), applied by the hourly series generator; None: none
    hour_level_shift: list[list[list[float]]] | None = None
    #: an hour-conditioned model's series calibration per level bin of a cell
    #: (``appshot_model.model.residual.calibrate_series``: ``level_edges``, ``weekly``, ``profile_shape``,
    #: ``level_factor``, ``residual_cv``, ``day_share``), applied by the hourly series generator; None: none
    series_calibration: dict | None = None
    #: the training cells the series calibration's context neighbours come from (name -> array, see
    #: ``calibrate_series``), saved in the weights file: real per-cell profile shapes and residual statistics of
    #: the training cities, operator data like the weights; None or empty: none
    series_reference: dict[str, np.ndarray] | None = None
    #: the model config as written in ``model.json`` when loaded: the hash stays the recorded one when a later
    #: version of appshot adds a config field (the loaded config takes its default)
    recorded_model_config: dict | None = None

    def config_json(self) -> str:
        """Canonical JSON of everything that defines the model's outputs besides the weights."""
        model = self.recorded_model_config if self.recorded_model_config is not None else self.model_cfg.model_dump()
        config = {"model": model, "attributes": self.attributes, "services": self.services,
                  "normalisation": self.normalisation.to_dict(), "peak_hour": self.peak_hour, "units": self.units}
        if self.hour_level_shift is not None:
            config["hour_level_shift"] = self.hour_level_shift
        if self.series_calibration is not None:
            config["series_calibration"] = self.series_calibration
        return json.dumps(config, sort_keys=True)

    @property
    def model_hash(self) -> str:
        """SHA-256 of the generator weights and :meth:`config_json`."""
        reference = {f"series_reference.{k}": v for k, v in self._reference_tensors().items()}
        return state_dict_hash({**self.generator.state_dict(), **reference}, self.config_json())

    def _reference_tensors(self) -> dict[str, torch.Tensor]:
        """:attr:`series_reference` as tensors, in name order (empty without one), as saved and hashed."""
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sorted((self.series_reference or {}).items())}

    def describe(self) -> dict[str, Any]:
        """The ``model.json`` content."""
        return {
            "format_version": FORMAT_VERSION, "model_config": self.model_cfg.model_dump(),
            "train_config": self.train_cfg.model_dump(mode="json"), "attributes": self.attributes,
            "services": self.services, "normalisation": self.normalisation.to_dict(), "peak_hour": self.peak_hour,
            "units": self.units, "training_inputs_hash": self.training_inputs_hash, "model_hash": self.model_hash,
            "training_cities": self.training_cities, "training_label": self.training_label,
            "training_dates": self.training_dates,
            "discriminators": DISCRIMINATOR_DESCRIPTION if (self.model_cfg.use_d1 or self.model_cfg.use_d2)
            else "none (L1 only)",
            "optimiser": "Adam (generator and each discriminator), non-saturating BCE-with-logits GAN losses",
            "noise": f"z ~ N(0, I), one per {self.model_cfg.noise_scope}", "noise_calibration": self.noise_calibration,
            "hour_level_shift": self.hour_level_shift, "series_calibration": self.series_calibration,
            "torch_version": torch.__version__, "history": self.history,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.json`` + ``weights.pt`` into ``directory`` atomically."""
        directory = Path(directory)
        with atomic_path(directory) as tmp:
            tmp.mkdir()
            (tmp / MODEL_FILE).write_text(json.dumps(self.describe(), indent=2, sort_keys=True))
            weights = {"generator": {k: v.detach().cpu() for k, v in self.generator.state_dict().items()},
                       "discriminators": {name: {k: v.detach().cpu() for k, v in d.state_dict().items()}
                                          for name, d in self.discriminators.items()}}
            if self.series_reference:
                weights["series_reference"] = self._reference_tensors()
            torch.save(weights, tmp / WEIGHTS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ModelArtefact:
        """Read an artefact written by :meth:`save` (generator in eval mode, on the CPU)."""
        directory = Path(directory)
        meta_path, weights_path = directory / MODEL_FILE, directory / WEIGHTS_FILE
        for path in (meta_path, weights_path):
            if not path.is_file():
                raise AppshotInputError(f"model artefact {directory}: missing {path.name} "
                                        f"(expected {MODEL_FILE} and {WEIGHTS_FILE})")
        problems = (json.JSONDecodeError, KeyError, TypeError, ValidationError, RuntimeError, OSError, EOFError,
                    pickle.UnpicklingError)
        try:
            meta = json.loads(meta_path.read_text())
            model_cfg = ModelConfig(**meta["model_config"])
            train_cfg = TrainConfig(**meta["train_config"])
            normalisation = Normalisation.from_dict(meta["normalisation"])
            generator = Generator(len(meta["attributes"]), len(meta["services"]), model_cfg)
        except problems as exc:
            raise AppshotInputError(f"model artefact {directory}: {meta_path} is corrupt or incompatible: "
                                    f"{type(exc).__name__}: {exc}") from exc
        try:
            weights = torch.load(weights_path, map_location="cpu", weights_only=True)
            generator.load_state_dict(weights["generator"])
            reference = {str(k): v.numpy() for k, v in weights.get("series_reference", {}).items()}
        except problems as exc:
            raise AppshotInputError(f"model artefact {directory}: {weights_path} is corrupt, truncated or does not "
                                    f"fit {MODEL_FILE}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
        generator.eval()
        artefact = cls(generator=generator, model_cfg=model_cfg, train_cfg=train_cfg,
                       attributes=list(meta["attributes"]), services=list(meta["services"]),
                       normalisation=normalisation, peak_hour=str(meta["peak_hour"]), units=str(meta["units"]),
                       training_inputs_hash=str(meta["training_inputs_hash"]), history=meta.get("history", {}),
                       training_cities=list(meta.get("training_cities", [])),
                       training_label=str(meta.get("training_label", "")),
                       training_dates={str(c): [str(d) for d in v] for c, v in meta.get("training_dates", {}).items()},
                       noise_calibration=meta.get("noise_calibration"),
                       hour_level_shift=meta.get("hour_level_shift"), series_calibration=meta.get("series_calibration"),
                       series_reference=reference or None, recorded_model_config=dict(meta["model_config"]))
        if artefact.model_hash != meta.get("model_hash"):
            raise AppshotInputError(f"model artefact {directory}: weights do not match the recorded model_hash "
                                    f"{str(meta.get('model_hash'))[:16]}... (files changed or mixed)")
        return artefact
