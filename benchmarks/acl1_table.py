"""``docs/results/acl1.csv``, shared by ``series_acl1.py`` and ``hourly_appshot.py``: each writes its own rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from appshot_model.core.io import atomic_path

COLUMNS = ["world", "method", "service", "acl1"]


def replace_rows(rows: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Write ``rows`` (columns :data:`COLUMNS`) into the AC-L1 table at ``path`` in place of the rows of the same
    (world, method) pairs, keeping every other row; atomic. Returns the table written."""
    table = rows[COLUMNS]
    if path.is_file():
        kept = pd.read_csv(path)
        computed = set(zip(table.world, table.method))
        kept = kept[[(w, m) not in computed for w, m in zip(kept.world, kept.method)]]
        table = pd.concat([kept, table], ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.3f")
    return table
