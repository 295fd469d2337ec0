"""The demo world: seeded simulated cities with context layers and hourly per-service traffic.

No real per-service traffic can be shipped with appshot, so this module simulates it. Every
array it returns is labelled ``label="simulated"``. The simulator aims at the properties the
AppShot paper measured on real operator data (Xu et al., "Generating Realistic City-Scale,
Service-Level Mobile Traffic Snapshots", IEEE TNSM 2022, sections III-IV; "AppShot" below):

- city grids of 250 m cells from 33 x 33 to 97 x 123 cells (section III);
- traffic varies from day to day at a fixed context, and no single context attribute explains
  it (section IV, Fig. 1-2);
- the services are spatially similar but not identical (pairwise SSIM 0.55-0.95, Fig. 4);
- cities differ several-fold in volume (because their context differs) and moderately in their
  context-traffic relation (Fig. 3, 5);
- three daily peaks, 08-09, 12-13 and 17-18 (Fig. 6); weekdays about 20 % above weekends
  (Fig. 5); service proportions that change with the hour and drift from day to day (Fig. 7);
  hotspots that mostly persist, with some movement (Fig. 8);
- countryside (farmland, forest, lakes, mountain rock) without people, PoIs or streets carries
  next to nothing;
- the split-half "Data" row (Table II) of the world is within +-25 % of the paper's real one.

The expected traffic of a cell is a fixed function of the context in its 3 x 3 neighbourhood;
everything else is day-to-day noise (see :mod:`.traffic`).

Published numbers used as parameters come from the session-level study of Zanella et al.,
"Characterizing and Modeling Session-Level Mobile Traffic Demands from Large-Scale
Measurements", ACM IMC 2023 ("seed 004" below), through its coefficient release
``nds-group/MobileTrafficDists``:

- ``sessions_share.csv`` (the release's version of Table 1): percent of sessions and of traffic
  per app, used as the services' traffic shares (:data:`SEED004_SHARES`, :data:`SERVICE_APPS`);
- ``arrival_coefs.csv`` (section 5.1): per base-station load decile, the mean peak-hour session
  arrival rate and the off-peak Pareto scale (shape 1.765). They give each cell's night/day
  ratio (at its station-sized load), the heavy-tailed night-time noise, and a check on the
  spread of station-sized loads (:data:`SEED004_PEAK_RATE`, :data:`SEED004_NONPEAK_SCALE`,
  :data:`SEED004_PARETO_SHAPE`);
- the peak window of section 6.1 (all hours except 22:00-08:00) marks day-time hours.

Everything else (urban form, land-use mix, PoI intensities, how context drives the home, work
and leisure components of demand, service tilts) is an assumption of this simulator, documented
next to its constant and in ``docs/demo_world.md``.

Modules: :mod:`.parameters` (published constants and the simulator's assumptions), :mod:`.cities`
(the six cities and the random helpers keyed to a city), :mod:`.context` (context layers) and
:mod:`.traffic` (hourly per-service traffic).
"""

from appshot_model.traffic.demo.cities import DEMO_CITIES, DemoCity, small_demo_city
from appshot_model.traffic.demo.context import simulate_context
from appshot_model.traffic.demo.parameters import (SEED004_NONPEAK_SCALE, SEED004_PARETO_SHAPE, SEED004_PEAK_RATE,
                                                   SEED004_SHARES, SERVICE_APPS, diurnal_profile, service_target_shares)
from appshot_model.traffic.demo.traffic import simulate_traffic

__all__ = ["DEMO_CITIES", "SEED004_NONPEAK_SCALE", "SEED004_PARETO_SHAPE", "SEED004_PEAK_RATE", "SEED004_SHARES",
           "SERVICE_APPS", "DemoCity", "diurnal_profile", "service_target_shares", "simulate_context",
           "simulate_traffic", "small_demo_city"]
