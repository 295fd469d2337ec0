"""An hour-conditioned (or per-hour) model run over a whole map for one hour of day and day type, fast.

The first convolution is linear and the hour channels are constant over the map, so for the hour-conditioned
model ``conv1(context ; hour) = conv1(context ; 0) + W_hour . hour`` (edge padding keeps the channels constant at
the borders): the convolution of the city's context is done once and each hour only adds a vector before batch
norm and ReLU (:meth:`Generator.features` in eval mode). The rest of the forward pass is the generator's own
(:meth:`Generator.head` on the precomputed maps), with the model's hour-level shifts. Equal to
:func:`appshot_model.model.generate.generate_map` up to float rounding (tested).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from appshot_model.model.artefact import ModelArtefact
from appshot_model.model.generate import prepare_context
from appshot_model.model.hours import HOUR_ATTRIBUTES, hour_channels, with_hour_context
from appshot_model.model.patches import pad_context


class HourMapGenerator:
    """A model's generator over one city's map, rows in blocks, first convolution computed once."""

    #: Cells per block of rows (bounds the memory of the 1x1 stack, as generate_map's 64 x 64 tiles).
    BLOCK_CELLS = 64 * 64

    def __init__(self, artefact: ModelArtefact, context_cube: xr.DataArray) -> None:
        self.artefact = artefact
        gen = artefact.generator.cpu().eval()
        self.hour_index = [i for i, a in enumerate(artefact.attributes) if a in HOUR_ATTRIBUTES]
        cube = with_hour_context(context_cube, 0, False) if self.hour_index else context_cube
        context = prepare_context(artefact, cube)
        context[self.hour_index] = 0.0
        self.hour_scale = np.asarray(artefact.normalisation.context_scale, dtype=np.float32)[self.hour_index]
        with torch.inference_mode():
            padded = torch.from_numpy(pad_context(context, artefact.model_cfg.first_kernel))[None]
            self.first = gen.conv1(padded)                                            # [1, 8F, H, W]
            self.hour_weights = gen.conv1.weight[:, self.hour_index].sum(dim=(2, 3))  # [8F, hour channels]
        self.generator = gen
        self.rows = max(1, self.BLOCK_CELLS // context.shape[2])
        keep = [i for i in range(context.shape[0]) if i not in self.hour_index]
        #: ``[H * W, K]`` the city's normalised context per cell (row-major), hour channels left out
        self.cell_context = context[keep].reshape(len(keep), -1).T.copy()

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the map in cells."""
        return tuple(self.first.shape[2:])

    def __call__(self, hour: int, weekend: bool, z: torch.Tensor, field: torch.Tensor | None) -> np.ndarray:
        """Traffic ``[S, H, W]`` in the model's units at ``hour`` for noise ``z [1, Nz]`` and ``field``."""
        gen, (height, width) = self.generator, self.shape
        levels = self.artefact.hour_level_shift
        shift = None if levels is None else torch.tensor(levels[int(weekend)][hour], dtype=torch.float32)
        with torch.inference_mode():
            pre = self.first
            if self.hour_index:
                values = torch.from_numpy(hour_channels(hour, weekend, 1, 1)[:, 0, 0] / self.hour_scale)
                pre = pre + (self.hour_weights @ values)[None, :, None, None]
            features = torch.relu(gen.bn1(pre))
            out = []
            for start in range(0, height, self.rows):
                block = slice(start, min(start + self.rows, height))
                out.append(gen.head(features[:, :, block], z, None if field is None else field[:, :, block, :width],
                                    shift))
        normalised = torch.cat(out, dim=2)[0].numpy()
        return self.artefact.normalisation.denormalise_traffic(normalised)
