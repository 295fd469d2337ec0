"""Helpers shared by the baselines: training arrays, context preparation, a small U-Net, and
tiled (non-overlapping) patch generation.

The neural baselines use the same inputs as AppShot: context normalised per attribute and traffic
divided by each service's training maximum (:class:`appshot_model.model.normalise.Normalisation`), and
10 x 10 traffic patches with 12 x 12 context patches taken without overlap (paper §VI-B: "non-
overlapping fixed size patches with patch dimensions same as in AppShot").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from torch import nn

from appshot_model.core.cube import check_context, check_traffic
from appshot_model.core.errors import AppshotInputError
from appshot_model.model.fit import check_training_inputs
from appshot_model.model.normalise import Normalisation
from appshot_model.model.patches import check_map_size, extract_patches, pad_context, patch_grid, stitch

#: Traffic / context patch geometry shared with AppShot (Nx = 10, first kernel 3 -> Nc = 12).
PATCH, KERNEL = 10, 3


@dataclass
class TrainingData:
    """Training cities in channel order: raw context ``[K, H, W]`` and traffic ``[T, S, H, W]``."""

    cities: list[str]
    contexts: list[np.ndarray]
    traffic: list[np.ndarray]
    normalisation: Normalisation
    units: str

    def normalised(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Contexts and traffic as the networks see them (float32)."""
        norm = self.normalisation
        return ([norm.normalise_context(c) for c in self.contexts], [norm.normalise_traffic(t) for t in self.traffic])


def training_data(contexts: Mapping[str, xr.DataArray], traffic: Mapping[str, xr.DataArray],
                  attributes: Sequence[str], normalisation: Mapping | Normalisation,
                  services: Sequence[str] | None = None) -> TrainingData:
    """Check and gather the training cities (sorted by name). ``services`` restricts (and orders)
    the services; by default the normalisation's."""
    norm = normalisation if isinstance(normalisation, Normalisation) else Normalisation.from_dict(normalisation)
    attributes, cities, unit = check_training_inputs(contexts, traffic, attributes, norm, "the method")
    if services is not None:
        norm = restrict_services(norm, services)
    ctx_list, tr_list = [], []
    for city in cities:
        have = {str(s) for s in traffic[city].service.values}
        missing = [s for s in norm.services if s not in have]
        if missing:
            raise AppshotInputError(f"traffic of {city} lacks services {missing}")
        ctx_list.append(context_array(contexts[city], attributes, f"context cube of {city}"))
        tr = traffic[city].sel(service=norm.services).transpose("time", "service", "y", "x")
        check_traffic(tr, f"traffic of {city}")
        if ctx_list[-1].shape[1:] != tr.shape[2:]:
            raise AppshotInputError(f"{city}: context is {ctx_list[-1].shape[1:]} cells but traffic is {tr.shape[2:]}")
        tr_list.append(tr.values.astype(np.float32))
    return TrainingData(cities, ctx_list, tr_list, norm, unit)


def restrict_services(norm: Normalisation, services: Sequence[str]) -> Normalisation:
    """The same normalisation for a subset of its services (in the given order)."""
    services = [str(s) for s in services]
    unknown = [s for s in services if s not in norm.services]
    if unknown:
        raise AppshotInputError(f"services {unknown} are not in the normalisation ({norm.services})")
    return Normalisation(services=services, attributes=list(norm.attributes),
                         traffic_max=[norm.traffic_max[norm.services.index(s)] for s in services],
                         context_scale=list(norm.context_scale), epsilon=norm.epsilon,
                         context_log1p=list(norm.context_log1p))


def context_array(cube: xr.DataArray, attributes: Sequence[str], what: str = "context cube") -> np.ndarray:
    """Raw ``[K, H, W]`` float32 context with the attributes in the given order."""
    if "attribute" not in cube.dims:
        raise AppshotInputError(f"{what} has dims {cube.dims}, expected (attribute, y, x)")
    present = {str(a) for a in cube.attribute.values}
    missing = [a for a in attributes if a not in present]
    if missing:
        raise AppshotInputError(f"{what} lacks attributes {missing}; the method needs all of {list(attributes)}")
    selected = cube.sel(attribute=list(attributes)).transpose("attribute", "y", "x")
    check_context(selected, what)
    return selected.values.astype(np.float32)


class UNet(nn.Module):
    """A small U-Net [Ronneberger et al.; pix2pix's generator layout] for 12 x 12 context patches
    -> 10 x 10 traffic patches: 12 -> 6 -> 3 (encoder, stride-2 4x4 convs), back to 12 with
    transposed convs and skip connections, then a valid 3x3 conv to ``S`` channels and a sigmoid.
    ``dropout`` > 0 puts dropout on the two decoder blocks (pix2pix's only noise source)."""

    def __init__(self, n_attributes: int, n_services: int, features: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        f = features

        def block(conv: nn.Module, channels: int, act: nn.Module) -> nn.Sequential:
            return nn.Sequential(conv, nn.BatchNorm2d(channels), act)

        self.enc1 = block(nn.Conv2d(n_attributes, f, 3, padding=1, bias=False), f, nn.LeakyReLU(0.2))
        self.enc2 = block(nn.Conv2d(f, 2 * f, 4, stride=2, padding=1, bias=False), 2 * f, nn.LeakyReLU(0.2))
        self.enc3 = block(nn.Conv2d(2 * f, 2 * f, 3, padding=1, bias=False), 2 * f, nn.LeakyReLU(0.2))
        self.bottom = nn.Sequential(nn.Conv2d(2 * f, 4 * f, 4, stride=2, padding=1), nn.ReLU())
        self.dec2 = block(nn.ConvTranspose2d(4 * f, 2 * f, 4, stride=2, padding=1, bias=False), 2 * f, nn.ReLU())
        self.dec1 = block(nn.ConvTranspose2d(4 * f, f, 4, stride=2, padding=1, bias=False), f, nn.ReLU())
        self.drop2 = nn.Dropout(dropout)
        self.drop1 = nn.Dropout(dropout)
        self.out = nn.Conv2d(2 * f, n_services, 3)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(context)                        # [B, f, 12, 12]
        e3 = self.enc3(self.enc2(e1))                  # [B, 2f, 6, 6]
        d2 = self.drop2(self.dec2(self.bottom(e3)))    # [B, 2f, 6, 6]
        d1 = self.drop1(self.dec1(torch.cat([d2, e3], dim=1)))  # [B, f, 12, 12]
        return torch.sigmoid(self.out(torch.cat([d1, e1], dim=1)))  # [B, S, 10, 10]


def tiled_generate(net: Callable[[torch.Tensor], torch.Tensor], context: np.ndarray, batch: int = 256) -> np.ndarray:
    """Normalised ``[S, H, W]`` from a patch model on non-overlapping 10 x 10 tiles of the
    edge-padded normalised ``context [K, H, W]`` (the last row/column of tiles is shifted to end at
    the border; the overlap there is averaged)."""
    height, width = context.shape[1:]
    check_map_size(height, width, PATCH, KERNEL, what="context cube")
    rows, cols = patch_grid(height, width, PATCH, stride=PATCH)
    patches = extract_patches(pad_context(context, KERNEL), rows, cols, PATCH + KERNEL - 1)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            chunk = torch.from_numpy(np.ascontiguousarray(patches[start:start + batch], dtype=np.float32))
            outputs.append(net(chunk).numpy())
    return stitch(np.concatenate(outputs), rows, cols, height, width)


def log_every(step: int, steps: int, every: int, log: Callable[[str], None] | None, text: Callable[[], str]) -> None:
    """Call ``log`` every ``every`` steps and at the last one."""
    if log is not None and ((step + 1) % every == 0 or step + 1 == steps):
        log(f"step {step + 1}/{steps}: {text()}")
