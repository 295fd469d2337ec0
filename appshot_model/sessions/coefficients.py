"""The seed-004 coefficient release (``nds-group/MobileTrafficDists``): reading and validating its four CSVs.

Zanella et al., "Characterizing and Modeling Session-Level Mobile Traffic Demands from Large-Scale
Measurements", ACM IMC 2023 ("seed 004"). The files and what they hold:

- ``arrival_coefs.csv``: per base-station load decile (0.1 .. 1.0), the per-minute session arrivals
  at peak hours (Gaussian: ``loc`` mean, ``scale`` std) and off peak (Pareto: shape ``alpha``,
  ``loc``, ``scale``), in scipy.stats conventions (seed 004 §5.1);
- ``sessions_share.csv``: per app, percent of all sessions and of all traffic (Table 1);
- ``pdf_coefs.csv``: per app, a Gaussian mixture over log10(bytes per session): the main
  component ``u_g``, ``s_g`` (weight 1) and up to three residual peaks ``u_k``, ``s_k``, ``w_k``
  (``-`` = absent), normalised by ``1 + sum(w_k)`` (seed 004 §5.2, eq. 5);
- ``duration_coefs.csv``: per app, the power law volume [bytes] = ``a`` * duration [s] ** ``b``
  (seed 004 §5.3).

Every problem is an :class:`~appshot_model.core.errors.AppshotInputError` naming the file, the
column, the row (CSV line number, header = line 1) and what was expected.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appshot_model.core.errors import AppshotInputError

ARRIVALS_FILE = "arrival_coefs.csv"
SHARES_FILE = "sessions_share.csv"
MIXTURE_FILE = "pdf_coefs.csv"
DURATION_FILE = "duration_coefs.csv"
COEFFICIENT_FILES = (ARRIVALS_FILE, SHARES_FILE, MIXTURE_FILE, DURATION_FILE)
#: Environment variable naming the folder of the four CSVs.
COEFFICIENTS_ENV = "APPSHOT_SESSION_COEFFICIENTS"
#: Marker of an absent residual component in ``pdf_coefs.csv``.
ABSENT = "-"
#: The ten load deciles of ``arrival_coefs.csv``.
DECILES: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
_RESIDUAL_COLUMN = re.compile(r"^([usw])_(\d+)$")


@dataclass(frozen=True)
class ArrivalRow:
    """Per-minute session arrivals at a base station of one load decile, peak and off peak."""

    decile: float
    peak_loc: float
    peak_scale: float
    nonpeak_alpha: float
    nonpeak_loc: float
    nonpeak_scale: float


@dataclass(frozen=True)
class MixtureRow:
    """One app's log10(bytes) mixture: main ``(u_g, s_g)`` with weight 1 and residual
    ``(u_k, s_k, w_k)`` peaks (unnormalised weights, seed 004 eq. 5)."""

    main_mean: float
    main_std: float
    residuals: tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class SessionCoefficients:
    """The four tables, keyed by decile or app name; ``folder`` is where they were read."""

    folder: str
    arrivals: tuple[ArrivalRow, ...]
    session_percent: dict[str, float]
    traffic_percent: dict[str, float]
    mixtures: dict[str, MixtureRow]
    power_laws: dict[str, tuple[float, float]]


def default_coefficients_dir() -> Path:
    """``$APPSHOT_SESSION_COEFFICIENTS``, else ``$APPSHOT_SHARED_DATA/mobiletrafficdists``, else the first
    ``shared/data/mobiletrafficdists`` found beside a parent folder of this package (the
    project's shared data layout). Raises when none holds the four files."""
    candidates: list[Path] = []
    if os.environ.get(COEFFICIENTS_ENV):
        candidates.append(Path(os.environ[COEFFICIENTS_ENV]))
    if os.environ.get("APPSHOT_SHARED_DATA"):
        candidates.append(Path(os.environ["APPSHOT_SHARED_DATA"]) / "mobiletrafficdists")
    candidates += [parent / "shared" / "data" / "mobiletrafficdists" for parent in Path(__file__).resolve().parents]
    for folder in candidates:
        if all((folder / name).is_file() for name in COEFFICIENT_FILES):
            return folder
    raise AppshotInputError(
        f"no folder with the seed-004 coefficient files {list(COEFFICIENT_FILES)} found (looked in "
        f"{[str(c) for c in candidates[:3]]} ...); set ${COEFFICIENTS_ENV} or pass the folder explicitly")


def read_coefficients(folder: str | os.PathLike | None = None) -> SessionCoefficients:
    """Read and validate the four coefficient CSVs of ``folder`` (default: :func:`default_coefficients_dir`)."""
    folder = Path(folder) if folder is not None else default_coefficients_dir()
    if not folder.is_dir():
        raise AppshotInputError(f"session coefficient folder {folder} does not exist")
    shares = _read_table(folder / SHARES_FILE, ("app", "sessions%", "traffic%"))
    mixtures = _read_table(folder / MIXTURE_FILE, ("app", "u_g", "s_g"))
    durations = _read_table(folder / DURATION_FILE, ("app", "a", "b"))
    session_percent = _per_app(shares, "sessions%", _percent)
    traffic_percent = _per_app(shares, "traffic%", _percent)
    for column, values in (("sessions%", session_percent), ("traffic%", traffic_percent)):
        total = sum(values.values())
        if total > 100.0 + 1e-6:
            raise AppshotInputError(f"{shares.path}: column '{column}' sums to {total:.4f} %; shares of all "
                                    f"sessions/traffic must sum to at most 100 %")
    a = _per_app(durations, "a", _positive)
    b = _per_app(durations, "b", _nonzero)
    return SessionCoefficients(
        folder=str(folder), arrivals=_arrival_rows(_read_table(folder / ARRIVALS_FILE,
                                                                ("decile", "peak", "alpha", "loc", "scale"))),
        session_percent=session_percent, traffic_percent=traffic_percent,
        mixtures=_mixture_rows(mixtures), power_laws={app: (a[app], b[app]) for app in a})


# ------------------------------------------------------------------------------------------
# Parsing helpers: every error names file, column and row
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Table:
    path: Path
    columns: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]  # (CSV line number, row)

    def fail(self, line: int, column: str, value: str, expected: str) -> AppshotInputError:
        return AppshotInputError(f"{self.path}: column '{column}', row {line}: value {value!r} is not valid; "
                                 f"expected {expected}")

    def value(self, line: int, row: dict[str, str], column: str, check: Callable[[float], str | None]) -> float:
        """The number in ``column``; ``check`` returns what was expected when the number is unfit."""
        text = row[column]
        try:
            number = float(text)
        except ValueError:
            raise self.fail(line, column, text, "a number") from None
        problem = "a finite number" if not math.isfinite(number) else check(number)
        if problem:
            raise self.fail(line, column, text, problem)
        return number


def _read_table(path: Path, required: tuple[str, ...]) -> _Table:
    if not path.is_file():
        raise AppshotInputError(f"session coefficient file {path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            body = [(number, cells) for number, cells in enumerate(reader, start=2) if any(c.strip() for c in cells)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AppshotInputError(f"cannot read session coefficient file {path}: {exc}") from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise AppshotInputError(f"{path}: missing column(s) {missing}; the header is {header}, expected at least "
                                f"{list(required)}")
    rows = []
    for number, cells in body:
        if len(cells) != len(header):
            raise AppshotInputError(f"{path}: row {number} has {len(cells)} fields, the header has {len(header)}")
        rows.append((number, {h: c.strip() for h, c in zip(header, cells, strict=True)}))
    if not rows:
        raise AppshotInputError(f"{path}: no data rows")
    return _Table(path, tuple(header), tuple(rows))


def _positive(x: float) -> str | None:
    return None if x > 0 else "a number > 0"


def _nonzero(x: float) -> str | None:
    return None if x != 0 else "a non-zero exponent"


def _non_negative(x: float) -> str | None:
    return None if x >= 0 else "a number >= 0"


def _percent(x: float) -> str | None:
    return None if 0 <= x <= 100 else "a percentage in [0, 100]"


def _any(x: float) -> str | None:
    return None


def _per_app(table: _Table, column: str, check: Callable[[float], str | None]) -> dict[str, float]:
    values: dict[str, float] = {}
    for line, row in table.rows:
        app = row["app"]
        if not app:
            raise table.fail(line, "app", app, "an app name")
        if app in values:
            raise table.fail(line, "app", app, "each app once (it already appears above)")
        values[app] = table.value(line, row, column, check)
    return values


def _arrival_rows(table: _Table) -> tuple[ArrivalRow, ...]:
    peak: dict[float, tuple[float, float]] = {}
    nonpeak: dict[float, tuple[float, float, float]] = {}
    for line, row in table.rows:
        decile = round(table.value(line, row, "decile", lambda x: None if round(x, 1) in DECILES
                                   and abs(x - round(x, 1)) < 1e-9 else f"one of {list(DECILES)}"), 1)
        kind = row["peak"]
        if kind not in ("peak", "nonpeak"):
            raise table.fail(line, "peak", kind, "'peak' or 'nonpeak'")
        target = peak if kind == "peak" else nonpeak
        if decile in target:
            raise table.fail(line, "decile", row["decile"], f"each decile once per kind ({kind} {decile} repeats)")
        scale = table.value(line, row, "scale", _positive)
        if kind == "peak":
            target[decile] = (table.value(line, row, "loc", _positive), scale)
        else:
            alpha = table.value(line, row, "alpha", lambda x: None if x > 1 else "a Pareto shape > 1 (finite mean)")
            target[decile] = (alpha, table.value(line, row, "loc", _non_negative), scale)
    for kind, target in (("peak", peak), ("nonpeak", nonpeak)):
        missing = [d for d in DECILES if d not in target]
        if missing:
            raise AppshotInputError(f"{table.path}: no '{kind}' row for decile(s) {missing}; every decile "
                                    f"{list(DECILES)} needs a peak and a nonpeak row")
    return tuple(ArrivalRow(d, *peak[d], *nonpeak[d]) for d in DECILES)


def _mixture_rows(table: _Table) -> dict[str, MixtureRow]:
    indices = sorted({int(m.group(2)) for c in table.columns if (m := _RESIDUAL_COLUMN.match(c))})
    for k in indices:
        missing = [f"{p}_{k}" for p in "usw" if f"{p}_{k}" not in table.columns]
        if missing:
            raise AppshotInputError(f"{table.path}: residual component {k} lacks column(s) {missing}; each "
                                    f"residual peak needs u_{k}, s_{k} and w_{k}")
    means = _per_app(table, "u_g", _any)
    stds = _per_app(table, "s_g", _positive)
    rows: dict[str, MixtureRow] = {}
    for line, row in table.rows:
        residuals = []
        for k in indices:
            names = (f"u_{k}", f"s_{k}", f"w_{k}")
            absent = [row[n] == ABSENT for n in names]
            if all(absent):
                continue
            if any(absent):
                raise table.fail(line, names[absent.index(True)], ABSENT,
                                 f"all of {list(names)} given or all '{ABSENT}' (absent component)")
            residuals.append((table.value(line, row, names[0], _any), table.value(line, row, names[1], _positive),
                              table.value(line, row, names[2], _non_negative)))
        app = row["app"]
        rows[app] = MixtureRow(means[app], stds[app], tuple(residuals))
    return rows
