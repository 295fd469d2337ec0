"""What every context source returns: gridded layers plus how much of the grid it covered."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LayerResult:
    """Layers of one source on the working grid.

    ``values`` maps attribute name (from ``appshot_model.core.names.ATTRIBUTES``) to a float array
    [H, W]; ``coverage`` is the fraction (0..1) of each cell's area the source covers;
    ``metadata`` holds per-layer facts for the materialisation (source, method, totals before
    and after, covered share, warnings).
    """

    values: dict[str, np.ndarray]
    coverage: np.ndarray
    metadata: dict = field(default_factory=dict)

    def covered_share(self) -> float:
        """Share of cells with any coverage."""
        return float((self.coverage > 0).mean())
