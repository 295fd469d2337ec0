"""Session level: expand per-cell, per-service hourly volumes into transport sessions (seed 004).

Seed 004 = Zanella et al., "Characterizing and Modeling Session-Level Mobile Traffic Demands from
Large-Scale Measurements", ACM IMC 2023, and its coefficient release nds-group/MobileTrafficDists.

Modules: :mod:`.coefficients` (read and validate the four CSVs), :mod:`.models` (arrivals by load
decile, log10-volume mixtures, duration power laws, the service -> app mapping and stand-ins),
:mod:`.expansion` (cube hour -> Parquet session tables, bounded memory, seeded),
:mod:`.demand` (per-minute demand of sessions), :mod:`.checks` (shares, KS, power law, figures),
:mod:`.slicing` (use case 1: slice capacity, seed 004 §6.1) and :mod:`.vran` (use case 2: vRAN
server energy, seed 004 §6.2), :mod:`.run` (the steps the CLI and the assets share).
Documentation: docs/sessions.md.
"""

from appshot_model.sessions.coefficients import SessionCoefficients, default_coefficients_dir, read_coefficients
from appshot_model.sessions.expansion import HourSpec, expand_hour, load_deciles
from appshot_model.sessions.models import DURATION_CAP_S, SessionModel, StandInWarning, session_model

__all__ = ["DURATION_CAP_S", "HourSpec", "SessionCoefficients", "SessionModel", "StandInWarning",
           "default_coefficients_dir", "expand_hour", "load_deciles", "read_coefficients", "session_model"]
