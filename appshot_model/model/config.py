"""Model and training configuration (pydantic v2, unknown fields rejected).

The architecture values are those of AppShot §V-C (Xu et al., IEEE TNSM 2022): F = 64 base
features, Nz = 16F, a 10 x 10 traffic patch with a first-kernel size Nc - Nx + 1 = 3 (so a
12 x 12 context patch), channel dropout 0.02 and L1 weight lambda = 0.5. The paper gives no
discriminator, optimiser or schedule; the choices here are explained in ``docs/model.md``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """Generator / discriminator architecture and loss weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    features: int = Field(64, ge=1, description="base feature count F (paper: 64)")
    noise_dim: int | None = Field(None, ge=1, description="Nz; None means 16 * features (paper)")
    traffic_patch: int = Field(10, ge=1, description="traffic patch side Nx (paper: 10)")
    first_kernel: int = Field(3, ge=1, description="first conv kernel Nc - Nx + 1 (paper: 3)")
    channel_dropout: float = Field(0.02, ge=0.0, lt=1.0, description="channel-wise dropout on the context")
    l1_weight: float = Field(0.5, ge=0.0, description="lambda, weight of the L1 term (paper: 0.5)")
    use_d1: bool = Field(True, description="train with the per-service map discriminator D1")
    use_d2: bool = Field(True, description="train with the service-sum discriminator D2")
    noise: Literal["film", "concat"] = Field("film", description="how z enters: FiLM (paper) or concatenation")
    overlap: bool = Field(True, description="stride-1 overlapping patches (paper); False: stride = patch size")
    disc_features: int = Field(32, ge=1, description="base width of both discriminators (not in the paper)")

    @property
    def nz(self) -> int:
        """The noise dimension actually used."""
        return self.noise_dim if self.noise_dim is not None else 16 * self.features

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

    steps: int = Field(600, ge=1, description="generator updates (one batch each)")
    batch_size: int = Field(64, ge=1, description="patches per step")
    lr_g: float = Field(2e-4, gt=0.0, description="Adam learning rate of the generator")
    lr_d: float = Field(2e-4, gt=0.0, description="Adam learning rate of the discriminators")
    betas: tuple[float, float] = Field((0.5, 0.999), description="Adam betas")
    seed: int = Field(0, description="seed for weights, dropout, noise and patch sampling")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when available, else cpu")
    log_every: int = Field(50, ge=1, description="steps between log lines")

    def resolved_device(self) -> torch.device:
        """The torch device to train on."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)
