"""Run settings the assets need (Dagster resources), chosen per deployment by ``pipelines.definitions``."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

DEFAULT_DATA_DIR = "data"


def default_data_dir() -> str:
    """Where outputs go: ``$APPSHOT_DATA_DIR`` or ``./data`` (relative to the working directory)."""
    return os.environ.get("APPSHOT_DATA_DIR", DEFAULT_DATA_DIR)


class AppshotSettings(ConfigurableResource):
    """Seeds, city split, selection threshold, sample count and model/training config file."""

    seed: int = Field(default=0, description="Seed of the demo world, training and generation.")
    days: int = Field(default=28, description="Days of hourly demo traffic to simulate (from a Monday).")
    held_out_cities: list[str] = Field(
        default_factory=list,
        description="Cities kept out of attribute selection, normalisation and training.")
    spearman_threshold: float = Field(
        default=0.05, description="Keep attributes whose average |Spearman| with traffic reaches this.")
    n_samples: int = Field(default=10, description="Generated snapshots per city and peak hour.")
    config_file: str | None = Field(
        default=None, description="YAML with `model:` and `train:` sections (ModelConfig, TrainConfig).")
    data_dir: str = Field(default_factory=default_data_dir, description="Root of all outputs.")
    progress_bars: bool = Field(
        default=True, description="Per-step progress bars (tqdm, to the run's stderr) in training and generation; "
                                  "the CLI turns them off and shows one bar per stage instead.")

    def figures_dir(self) -> Path:
        return Path(self.data_dir) / "figures"


class EvaluationSettings(ConfigurableResource):
    """Leave-one-city-out evaluation: methods, training budget, samples and NEMD pairs."""

    methods: list[str] = Field(
        default_factory=lambda: ["appshot", "fdas", "cnn", "pix2pix", "independent"],
        description="Methods to train per held-out city x hour (keys of appshot_model.evaluation.baselines.METHODS: "
                    "appshot, the baselines and the appshot_* ablations).")
    steps: int | None = Field(
        default=None, description="Optimiser steps per trained model (None: each method's default).")
    samples: int = Field(default=10, description="Generated snapshots per method, held-out city and hour.")
    nemd_max_pairs: int | None = Field(
        default=1, description="Real/generated map pairs per service scored with exact NEMD (None: all pairs; "
                               "about 5 s per pair at 97 x 123).")
