"""Switches and hyper-parameters of the DoppelGANger-style series generator (see
:mod:`appshot_model.series.doppelganger` for what each part does and where its value comes from)."""

from __future__ import annotations

from dataclasses import dataclass

from appshot_model.core.errors import AppshotInputError

METADATA_MODES = ("given", "generated")


@dataclass(frozen=True)
class DGOptions:
    """Switches and hyper-parameters (defaults recorded with the weights)."""

    metadata: str = "given"
    auto_normalise: bool = True
    aux_discriminator: bool = True
    clock: bool = True
    batch_steps: int | None = None
    steps: int = 1500
    batch_size: int = 100
    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    gp_weight: float = 10.0
    aux_weight: float = 1.0
    noise_dim: int = 10
    lstm_units: int = 100
    mlp_units: int = 100
    mlp_hidden: int = 2
    critic_units: int = 200
    critic_hidden: int = 4

    def __post_init__(self) -> None:
        if self.metadata not in METADATA_MODES:
            raise AppshotInputError(f"DG metadata mode {self.metadata!r}; expected one of {METADATA_MODES}")
        if self.batch_steps is not None and self.batch_steps < 1:
            raise AppshotInputError(f"batch_steps must be >= 1, got {self.batch_steps}")
        if self.steps < 0 or self.batch_size < 2:
            raise AppshotInputError(f"steps must be >= 0 and batch_size >= 2, got {self.steps}, {self.batch_size}")

    def records_per_pass(self, n_steps: int) -> int:
        """``batch_steps``, or the divisor of 24 closest to ``n_steps / 50`` (DG section 4.4)."""
        if self.batch_steps is not None:
            return int(self.batch_steps)
        return min((1, 2, 3, 4, 6, 8, 12, 24), key=lambda d: (abs(d - n_steps / 50), d))

    @property
    def uses_aux(self) -> bool:
        return self.aux_discriminator and (self.auto_normalise or self.metadata == "generated")
