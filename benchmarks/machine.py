"""Machine description printed by every benchmark (figures on shared machines drift: say where)."""

import os

from appshot_model.core.provenance import cpu_model  # noqa: F401  (re-exported for the benchmarks)


def load_average() -> str:
    """1/5/15-minute load averages, or 'n/a'."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"
