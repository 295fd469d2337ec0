"""Run settings the assets need (Dagster resources), chosen per deployment by ``pipelines.definitions``."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field
from xarray import DataArray

from appshot_model.evaluation.loco import LocoSettings
from appshot_model.evaluation.privacy import PrivacyThresholds
from appshot_model.model.chunked import CHUNK_CELLS, LARGE_REGION_CELLS, generate_region

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
    privacy_holdout_fraction: float = Field(
        default=0.25, ge=0.0, lt=1.0,
        description="Share of each training city's weekday dates (drawn with the seed) kept out of attribute "
                    "selection, normalisation and training, as the held-out real days the privacy gate compares "
                    "with (0: train on every day; the gate then reports the city x hour as unmeasured).")

    checkpoint_every: int = Field(default=100, ge=1, description="Training steps between checkpoints.")
    series_days: int = Field(default=7, ge=1, description="Days of hourly series per city (hourly_series asset).")
    series_nemd_hours: int = Field(
        default=24, ge=0, description="Evenly spaced hours scored for the hourly_series asset's per-hour NEMD "
                                      "histogram (coarse NEMD, 2 x 2 blocks; 0: none; needs >= 2 days).")
    series_rho: float | None = Field(
        default=None, ge=0.0, lt=1.0,
        description="Hour-to-hour correlation of the generator's noise in hourly series (None: the value calibrated "
                    "on the demo world, appshot_model.series.stitched.DEFAULT_RHO; 0: independent hours).")

    dg_days: int = Field(default=21, ge=7, description="Days of each training city's hourly cube the DG-style series "
                                                       "model (dg_model asset) trains on (at least a week: the naive "
                                                       "baseline fitted beside it needs every hour of the week).")
    dg_train_cells: int = Field(default=2000, ge=10, description="Cells drawn from the training cities for dg_model.")
    dg_steps: int | None = Field(default=None, ge=0, description="dg_model's generator updates (None: DGOptions' "
                                                                 "default, 800).")

    def figures_dir(self) -> Path:
        return Path(self.data_dir) / "figures"

    def checkpoints_dir(self) -> Path:
        """Training checkpoints (resumed by a retried or re-run training of the same inputs)."""
        return Path(self.data_dir) / "checkpoints"


class DaskSettings(ConfigurableResource):
    """Where generation of large regions runs chunked (appshot_model.model.chunked, docs/scaling.md)."""

    address: str | None = Field(
        default=None, description="Address of an existing dask.distributed scheduler (e.g. tcp://host:8786) that "
                                  "generates every region chunked; None: a LocalCluster inside the run's process for "
                                  "regions of at least `large_cells` cells, smaller ones on local Dask threads.")
    large_cells: int = Field(default=LARGE_REGION_CELLS, ge=1,
                             description="Cells from which a region generates chunked on Dask.")
    chunk_cells: int = Field(default=CHUNK_CELLS, ge=1,
                             description="Chunk side in cells (a multiple of the 64-cell generation tile).")

    def generate(self, artefact, context_cube: DataArray, n_samples: int, seed: int, progress: bool) -> DataArray:
        """Snapshots in memory, the same bytes whichever engine computes them."""
        return generate_region(artefact, context_cube, n_samples, seed, progress=progress, dask_address=self.address,
                               large_cells=self.large_cells, chunk_cells=self.chunk_cells)


class PrivacySettings(ConfigurableResource):
    """Thresholds of the privacy gate before a release (appshot_model.evaluation.privacy, docs/privacy.md)."""

    dcr_ratio_min: float = Field(
        default=PrivacyThresholds.dcr_ratio_min,
        description="Block a city x hour whose generated snapshots' median distance to the closest training day is "
                    "below this share of the held-out real days' median distance to the closest training day.")
    attack_auc_max: float = Field(
        default=PrivacyThresholds.attack_auc_max,
        description="Block a city x hour where the membership-inference attack's ROC-AUC exceeds this "
                    "(and is significant at alpha).")
    alpha: float = Field(default=PrivacyThresholds.alpha,
                         description="Significance level of the attack (one-sided Mann-Whitney U) for the whole "
                                     "release: each of its n city x hours is tested at alpha / n (Bonferroni).")
    min_members: int = Field(default=PrivacyThresholds.min_members,
                             description="Fewer training days than this: the city x hour is unmeasured.")
    min_non_members: int = Field(default=PrivacyThresholds.min_non_members,
                                 description="Fewer held-out days than this: the city x hour is unmeasured.")

    def thresholds(self) -> PrivacyThresholds:
        return PrivacyThresholds(dcr_ratio_min=self.dcr_ratio_min, attack_auc_max=self.attack_auc_max,
                                 alpha=self.alpha, min_members=self.min_members, min_non_members=self.min_non_members)


class EvaluationSettings(ConfigurableResource):
    """Leave-one-city-out evaluation (appshot_model.evaluation.loco): methods, seeds, training budget, samples,
    NEMD and worker processes."""

    methods: list[str] = Field(
        default_factory=lambda: ["appshot", "fdas", "cnn", "pix2pix", "independent"],
        description="Methods to train per held-out city x hour (keys of appshot_model.evaluation.baselines.METHODS: "
                    "appshot, the baselines and the appshot_* ablations).")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2],
                             description="Evaluation seeds: each method is trained and generated once per seed.")
    steps: int | None = Field(
        default=None, description="Optimiser steps per trained model (None: each method's default).")
    batch_size: int | None = Field(default=None, description="Batch per optimiser step (None: each method's default).")
    features: int | None = Field(default=None, description="Base network width (None: each method's default).")
    samples: int = Field(default=10, description="Generated snapshots per method, held-out city, hour and seed.")
    nemd_max_pairs: int | None = Field(
        default=1, description="Real/generated map pairs per service scored with NEMD (None: all pairs; "
                               "exact NEMD costs about 3-5 s per pair at 97 x 123).")
    nemd_method: str = Field(default="exact", description="'exact' NEMD or 'coarse' (APPROXIMATE, 2 x 2 block sums; "
                                                          "measured error in docs/evaluation.md).")
    workers: int | None = Field(default=None, description="Worker processes per loco_scores partition, one torch "
                                                          "thread each (None: the cores available).")

    def loco_settings(self, spearman_threshold: float) -> LocoSettings:
        """The driver's settings (the same rows as ``appshot evaluate`` with the same values)."""
        return LocoSettings(methods=tuple(self.methods), seeds=tuple(self.seeds), steps=self.steps,
                            batch_size=self.batch_size, features=self.features, samples=self.samples,
                            nemd_pairs=self.nemd_max_pairs, nemd_method=self.nemd_method,
                            spearman_threshold=spearman_threshold)
