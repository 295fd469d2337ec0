"""Evaluation (§VI-§VII): exact EMD (``emd``), the fidelity metrics (``metrics``), the Data reference and
per-city scoring (``reference``), tables and figures (``report``) and the baselines and ablations
(``baselines``)."""
