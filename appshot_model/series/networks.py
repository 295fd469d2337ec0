"""DoppelGANger's networks (Lin et al., IMC 2020; seeds 002/003 section 4 and appendix B), in PyTorch.

- :class:`MLP`: the building block; generators use 2 hidden layers of 100 units, discriminators
  4 hidden layers of 200 units (appendix B).
- :class:`SeriesGenerator`: one LSTM layer of 100 units that emits ``batch_steps`` records per
  pass (batch generation, section 4.1); its input at every pass is fresh noise plus the
  metadata (real and auto-normalisation "fake" metadata, section 4.3) and, optionally, a clock;
  the output layer sees the LSTM state and the pass's noise (so hour-to-hour noise of many
  services does not have to squeeze through the 100 LSTM units), and a sigmoid keeps the
  normalised records in [0, 1].

- :class:`DoppelGANger`: the generators (metadata MLP, min/max MLP, series LSTM) and the two
  critics of one model.

Training logic lives in :mod:`appshot_model.series.doppelganger`.
"""

from __future__ import annotations

import torch
from torch import nn

from appshot_model.core.errors import AppshotInputError
from appshot_model.series.options import DGOptions


def _hidden_layers(n_in: int, hidden: int, width: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for k in range(hidden):
        layers += [nn.Linear(n_in if k == 0 else width, width), nn.ReLU()]
    return layers


class MLP(nn.Module):
    """Fully connected network: ``hidden`` ReLU layers of ``width`` units, a linear output."""

    def __init__(self, n_in: int, n_out: int, hidden: int, width: int):
        super().__init__()
        self.net = nn.Sequential(*_hidden_layers(n_in, hidden, width), nn.Linear(width if hidden else n_in, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ProjectionCritic(nn.Module):
    """Critic of ``[data, condition]`` rows (the last ``n_cond`` columns are the condition): an
    MLP's score of the data plus the inner product of its last hidden layer with a linear
    embedding of the condition (projection discriminator, Miyato & Koyama, ICLR 2018). A plain
    critic fed the concatenation must learn interactions to notice data that ignore their
    condition; the inner product gives it that signal directly."""

    def __init__(self, n_data: int, n_cond: int, hidden: int, width: int):
        super().__init__()
        self.n_cond = n_cond
        self.body = nn.Sequential(*_hidden_layers(n_data, hidden, width))
        self.out = nn.Linear(width, 1)
        self.embed = nn.Linear(n_cond, width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(x[:, :-self.n_cond])
        return self.out(features) + (features * self.embed(x[:, -self.n_cond:])).sum(dim=1, keepdim=True)


#: Harmonics of the week (168 h) and of the day (24 h) in the clock input of every pass.
WEEK_HARMONICS, DAY_HARMONICS = (1, 2, 3), (1,)
N_CLOCK = 2 * (len(WEEK_HARMONICS) + len(DAY_HARMONICS))


def clock_features(start_hour_of_week: int, passes: int, batch_steps: int) -> torch.Tensor:
    """``[passes, N_CLOCK]`` sin/cos of the hour of the week at the start of every pass."""
    hours = (start_hour_of_week + torch.arange(passes, dtype=torch.float64) * batch_steps) % 168
    angles = [2 * torch.pi * k * hours / 168 for k in WEEK_HARMONICS]
    angles += [2 * torch.pi * k * hours / 24 for k in DAY_HARMONICS]
    return torch.cat([torch.stack([torch.sin(a), torch.cos(a)], dim=1) for a in angles], dim=1).float()


class SeriesGenerator(nn.Module):
    """Batched LSTM generator: per pass noise ``[batch, passes, noise]``, the metadata and
    (optionally) the clock ``[passes, N_CLOCK]`` -> records ``[batch, passes * S, features]``."""

    def __init__(self, n_meta: int, n_features: int, batch_steps: int, noise_dim: int, units: int = 100,
                 n_clock: int = 0, rnn_noise_dim: int | None = None):
        super().__init__()
        self.n_features, self.batch_steps, self.n_clock = n_features, batch_steps, n_clock
        rnn_noise_dim = noise_dim if rnn_noise_dim is None else rnn_noise_dim
        self.lstm = nn.LSTM(rnn_noise_dim + n_meta + n_clock, units, batch_first=True)
        self.head = nn.Linear(units + noise_dim, batch_steps * n_features)

    def forward(self, noise: torch.Tensor, meta: torch.Tensor, clock: torch.Tensor | None = None,
                rnn_noise: torch.Tensor | None = None) -> torch.Tensor:
        """``rnn_noise`` ``[batch, passes, k]`` feeds the LSTM instead of ``noise`` when given
        (``noise`` then only reaches the output layer)."""
        batch, passes, _ = noise.shape
        parts = [noise if rnn_noise is None else rnn_noise, meta[:, None, :].expand(batch, passes, meta.shape[1])]
        if self.n_clock:
            parts.append(clock[None].expand(batch, passes, self.n_clock))
        hidden, _ = self.lstm(torch.cat(parts, dim=2))
        records = torch.sigmoid(self.head(torch.cat([hidden, noise], dim=2)))
        return records.reshape(batch, passes * self.batch_steps, self.n_features)


class DoppelGANger(nn.Module):
    """DG's generators and critics for ``n_meta`` context attributes, ``n_steps`` hours and
    ``n_features`` services."""

    def __init__(self, options: DGOptions, n_meta: int, n_steps: int, n_features: int):
        super().__init__()
        o = options
        self.options, self.n_meta, self.n_steps, self.n_features = o, n_meta, n_steps, n_features
        self.batch_steps = o.records_per_pass(n_steps)
        self.n_fake = o.n_fake_per_service * n_features
        self.meta_gen = MLP(o.noise_dim, n_meta, o.mlp_hidden, o.mlp_units) if o.metadata == "generated" else None
        self.minmax_gen = MLP(n_meta + o.noise_dim, self.n_fake, o.mlp_hidden, o.mlp_units) if self.n_fake else None
        self.noise_dim = o.pass_noise(self.batch_steps, n_features)
        self.series_gen = SeriesGenerator(n_meta + self.n_fake, n_features, self.batch_steps, self.noise_dim,
                                          o.lstm_units, N_CLOCK if o.clock else 0,
                                          o.noise_dim if o.rnn_noise == "series" else None)
        n_meta_all = n_meta + self.n_fake
        n_series = n_steps * n_features
        if o.metadata == "given" and o.projection:
            self.critic = ProjectionCritic(n_series + self.n_fake, n_meta, o.critic_hidden, o.critic_units)
            self.aux_critic = ProjectionCritic(self.n_fake, n_meta, o.critic_hidden, o.critic_units) if o.uses_aux else None
        else:
            self.critic = MLP(n_series + n_meta_all, 1, o.critic_hidden, o.critic_units)
            self.aux_critic = MLP(n_meta_all, 1, o.critic_hidden, o.critic_units) if o.uses_aux else None

    @property
    def passes(self) -> int:
        return -(-self.n_steps // self.batch_steps)

    def generate(self, context: torch.Tensor | None, batch: int, gen: torch.Generator,
                 n_steps: int | None = None, start_hour_of_week: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(context, fake metadata, records ``[batch, n_steps, features]`` in [0, 1]);
        ``context`` (standardised) is used when the metadata is given; the clock (if on) starts
        at ``start_hour_of_week`` (0 = Monday 00:00)."""
        o = self.options
        if self.meta_gen is not None:
            context = self.meta_gen(torch.randn(batch, o.noise_dim, generator=gen))
        elif context is None:
            raise AppshotInputError("this DG model conditions on given context; pass the cells' context")
        fake = torch.zeros(batch, 0)
        if self.minmax_gen is not None:
            fake = self.minmax_gen(torch.cat([context, torch.randn(batch, o.noise_dim, generator=gen)], dim=1))
        n_steps = self.n_steps if n_steps is None else n_steps
        passes = -(-n_steps // self.batch_steps)
        noise = torch.randn(batch, passes, self.noise_dim, generator=gen)
        clock = clock_features(start_hour_of_week, passes, self.batch_steps) if o.clock else None
        rnn_noise = None
        if o.rnn_noise == "series":
            rnn_noise = torch.randn(batch, 1, o.noise_dim, generator=gen).expand(batch, passes, o.noise_dim)
        records = self.series_gen(noise, torch.cat([context, fake], dim=1), clock, rnn_noise)[:, :n_steps]
        return context, fake, records

    def critic_inputs(self, context, fake, records) -> tuple[torch.Tensor, torch.Tensor]:
        """(main critic input ``[series, fake metadata, context]``, auxiliary ``[fake metadata, context]``)."""
        return (torch.cat([records.reshape(len(records), -1), fake, context], dim=1),
                torch.cat([fake, context], dim=1))
