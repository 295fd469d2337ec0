"""Traffic: the weekday peak-hour snapshots of a traffic cube (``peaks``) and the simulated demo world
(``demo``: parameters, cities, context layers, hourly per-service traffic)."""
