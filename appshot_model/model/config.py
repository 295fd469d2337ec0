"""Model and training configuration (pydantic v2, unknown fields rejected).

The architecture values are those of AppShot §V-C (Xu et al., IEEE TNSM 2022) except the width: F = 32
base features by default (the paper's 64 costs ~3x the CPU time per step; ``docs/model.md``), Nz = 16F, a 10 x 10 traffic patch with a first-kernel size Nc - Nx + 1 = 3 (so a
12 x 12 context patch), channel dropout 0.02 and L1 weight lambda = 0.5. The paper gives no
discriminator, optimiser or schedule; the choices here are explained in ``docs/model.md``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Spatial noise-field channels when ``noise_channels`` is left unset with one z per snapshot.
DEFAULT_FIELD_CHANNELS = 16


class ModelConfig(BaseModel):
    """Generator / discriminator architecture and loss weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: int = Field(32, ge=1, description="base feature count F (paper: 64; 32 by default: the CPU budget, "
                                                 "see docs/model.md, ablation appshot_features_64)")
    noise_dim: int | None = Field(None, ge=1, description="Nz; None means 16 * features (paper)")
    traffic_patch: int = Field(10, ge=1, description="traffic patch side Nx (paper: 10)")
    first_kernel: int = Field(3, ge=1, description="first conv kernel Nc - Nx + 1 (paper: 3)")
    channel_dropout: float = Field(0.02, ge=0.0, lt=1.0, description="channel-wise dropout on the context")
    l1_weight: float = Field(0.5, ge=0.0, description="lambda, weight of the L1 term (paper: 0.5)")
    use_d1: bool = Field(True, description="train with the per-service map discriminator D1")
    use_d2: bool = Field(True, description="train with the service-sum discriminator D2")
    noise: Literal["film", "concat"] = Field("film", description="how z enters: FiLM (paper) or concatenation")
    overlap: bool = Field(True, description="stride-1 overlapping patches (paper); False: stride = patch size")
    noise_scope: Literal["snapshot", "patch"] = Field(
        "snapshot", description="one z per generated snapshot (every overlapping patch of a cell then gives it the "
                                "same value, so generation is one fully convolutional pass), or one z per patch "
                                "stitched by averaging (the original implementation; needed without overlap)")
    noise_channels: int | None = Field(
        None, ge=0, description="channels of a spatial noise field drawn per cell alongside z (beyond the paper: z "
                                "is non-spatial there); it enters the same FiLM 1x1 convolutions, so each cell gets "
                                "its own variation; 0 = none (the paper); None = 16 with noise_scope='snapshot', 0 "
                                "with 'patch' (which cannot take a field)")
    noise_correlation_cells: float = Field(
        1.0, ge=0.0, description="std (cells) of the Gaussian kernel smoothing the noise field: its spatial "
                                 "correlation length (base stations cover several cells); 0 = white noise")
    l1_target: Literal["mean", "sample"] = Field(
        "mean", description="L1 between conditional means (paper §V-C2: mean of the real training days vs mean "
                            "of several generated draws) or per sample against one real day (ablation)")
    l1_units: Literal["level", "max"] = Field(
        "level", description="units of the L1 term: each service's mean training level (the units the "
                             "discriminators judge in, so lambda weighs both terms alike) or the paper's max-"
                             "normalised traffic (ablation appshot_l1_max_units)")
    calibrate_noise: bool = Field(
        True, description="after training, scale z so that generated city totals vary like the training cities' "
                          "real weekdays, restoring each service's mean level "
                          "(beyond the paper: appshot_model.model.calibrate; ablation appshot_uncalibrated_noise); "
                          "only with noise_scope='snapshot'")
    disc_features: int = Field(32, ge=1, description="base width of both discriminators (not in the paper)")

    @model_validator(mode="after")
    def _no_overlap_needs_patch_noise(self) -> "ModelConfig":
        if not self.overlap and self.noise_scope != "patch":
            raise ValueError("overlap=false (non-overlapping patches) needs noise_scope='patch': with one z per "
                             "snapshot every patch layout gives the same map")
        if self.noise_scope == "patch" and self.noise_channels:
            raise ValueError("a spatial noise field (noise_channels > 0) needs noise_scope='snapshot'; set "
                             "noise_channels: 0 for per-patch noise")
        return self

    @property
    def nz(self) -> int:
        """The noise dimension actually used."""
        return self.noise_dim if self.noise_dim is not None else 16 * self.features

    @property
    def field_channels(self) -> int:
        """Channels of the spatial noise field actually used (0: none)."""
        if self.noise_channels is not None:
            return self.noise_channels
        return DEFAULT_FIELD_CHANNELS if self.noise_scope == "snapshot" else 0

    @property
    def context_patch(self) -> int:
        """Context patch side Nc = Nx + k - 1."""
        return self.traffic_patch + self.first_kernel - 1

    @property
    def stride(self) -> int:
        """Patch stride for training and generation."""
        return 1 if self.overlap else self.traffic_patch


class TrainConfig(BaseModel):
    """Optimisation settings (Adam for G and both Ds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(1000, ge=1, description="generator updates (one batch each); 600 at Adam 2e-4 left the "
                                               "generator undertrained (docs/model.md, 'Default schedule')")
    batch_size: int = Field(4, ge=1, description="tiles per step (4 tiles of 32 x 32 cells hold ~2,100 overlapping "
                                                 "10 x 10 patches); when a training city is smaller than the tile, "
                                                 "the smaller tiles are counted by area (about batch_size x tile^2 "
                                                 "cells per step; train.tiles_per_step)")
    tile: int = Field(32, ge=1, description="training tile side in cells (every stride-1 patch inside a tile is "
                                            "trained at once; capped by the smallest training city; the patch "
                                            "itself with noise_scope='patch')")
    noise_draws: int = Field(2, ge=1, description="generated draws per tile whose mean enters the L1 on conditional "
                                                  "means")
    bn_batches: int = Field(20, ge=0, description="batches used to re-estimate batch-norm statistics on the final "
                                                  "weights (0: keep the running averages of training)")
    lr_g: float = Field(5e-4, gt=0.0, description="Adam learning rate of the generator (the paper gives none)")
    lr_d: float = Field(5e-4, gt=0.0, description="Adam learning rate of the discriminators")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas")
    seed: int = Field(0, description="seed for weights, dropout, noise and patch sampling")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu")
    log_every: int = Field(50, ge=1, description="steps between log lines")

    def resolved_device(self) -> torch.device:
        """The torch device to train on."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)
