"""Per-cell hourly traffic series: a DoppelGANger-style generator conditioned on the cell's context
(:mod:`.doppelganger`, networks in :mod:`.networks`, switches in :mod:`.options`), the naive
weekly-profile baseline (:mod:`.naive`) and the cell/cube plumbing (:mod:`.data`).

Scores (AC-L1, per-hour NEMD) are in :mod:`appshot_model.evaluation.temporal`; the experiment
that fills ``docs/results/acl1.csv`` is ``benchmarks/acl1.py`` (docs/series.md).
"""
