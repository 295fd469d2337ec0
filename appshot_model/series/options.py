"""Switches and hyper-parameters of the DoppelGANger-style series generator (see
:mod:`appshot_model.series.doppelganger` for what each part does and where its value comes from)."""

from __future__ import annotations

from dataclasses import dataclass

from appshot_model.core.errors import AppshotInputError

METADATA_MODES = ("given", "generated")
VALIDATION_SPLITS = ("block", "random")
RNN_NOISE = ("pass", "series")


@dataclass(frozen=True)
class DGOptions:
    """Switches and hyper-parameters (defaults recorded with the weights). "DG" = from the paper
    (seeds 002/003, appendix B unless said otherwise); "here" = chosen and measured in this project
    (docs/series.md)."""

    #: DG parts (section 4): metadata given (conditioning on the cell's context) or generated.
    metadata: str = "given"
    #: DG 4.2: per-series min/max as generated metadata.
    auto_normalise: bool = True
    #: here: each series' share of variance off its weekly cycle as generated metadata too.
    periodicity_metadata: bool = True
    #: DG 4.3: the auxiliary critic on the metadata.
    aux_discriminator: bool = True
    #: here: the hour of the week of every pass as an LSTM input (DG 4.1 lets time stamps be inputs).
    clock: bool = True
    #: DG 4.1: hours per LSTM pass; here one day (None: DG's T/50 rule).
    batch_steps: int | None = 24
    #: here: generator updates (one critic update each; DG: up to 200,000 batches).
    steps: int = 800
    #: here: share of the training cells held out to pick the checkpoint, how, and how often.
    validation_share: float = 0.2
    validation_split: str = "block"
    checkpoint_every: int = 50
    #: here: exponential moving average of the generator weights (0 = off).
    ema_decay: float = 0.0
    #: DG: batch 100, Adam 1e-3; the betas are not in the paper (here: 0.5, 0.999).
    batch_size: int = 100
    learning_rate: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    #: DG: gradient penalty weight 10, auxiliary critic weight alpha = 1.
    gp_weight: float = 10.0
    aux_weight: float = 1.0
    #: DG: fresh noise into the LSTM at every pass ("pass"); "series": one draw per series, the
    #: per-pass noise then only reaches the output layer.
    rnn_noise: str = "pass"
    #: here: noise values for each metadata MLP, and per LSTM pass at least this many (see pass_noise).
    noise_dim: int = 32
    #: here: the main critic's gradient does not reach the metadata generators (DG 4.3 decouples
    #: metadata and series generation; here the decoupling also holds for the gradients).
    decouple: bool = True
    #: here: with given metadata, critics score the context by projection (networks.ProjectionCritic).
    projection: bool = True
    #: DG: LSTM 100 units; metadata MLPs 2 x 100; critics 4 x 200.
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
        if self.rnn_noise not in RNN_NOISE:
            raise AppshotInputError(f"rnn_noise {self.rnn_noise!r}; expected one of {RNN_NOISE}")
        if self.validation_split not in VALIDATION_SPLITS:
            raise AppshotInputError(f"validation_split {self.validation_split!r}; expected one of {VALIDATION_SPLITS}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise AppshotInputError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.validation_share < 0.9 or self.checkpoint_every < 1:
            raise AppshotInputError(f"validation_share must lie in [0, 0.9) and checkpoint_every >= 1, got "
                                    f"{self.validation_share}, {self.checkpoint_every}")
        if self.steps < 0 or self.batch_size < 2:
            raise AppshotInputError(f"steps must be >= 0 and batch_size >= 2, got {self.steps}, {self.batch_size}")

    def records_per_pass(self, n_steps: int) -> int:
        """``batch_steps`` (default 24: one day per pass), or with ``batch_steps=None`` DG's rule:
        the divisor of 24 closest to ``n_steps / 50`` (about 50 passes, DG section 4.4)."""
        if self.batch_steps is not None:
            return int(self.batch_steps)
        return min((1, 2, 3, 4, 6, 8, 12, 24), key=lambda d: (abs(d - n_steps / 50), d))

    def pass_noise(self, batch_steps: int, n_features: int) -> int:
        """Noise values per LSTM pass: one per generated value (hours x services), at least ``noise_dim``."""
        return max(self.noise_dim, batch_steps * n_features)

    @property
    def uses_aux(self) -> bool:
        return self.aux_discriminator and (self.n_fake_per_service > 0 or self.metadata == "generated")

    @property
    def n_fake_per_service(self) -> int:
        """Generated ("fake") metadata per service: range (2) and periodicity (1)."""
        return 2 * self.auto_normalise + self.periodicity_metadata
