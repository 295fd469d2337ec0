"""Privacy gate: does a model give away the real days it was trained on?

For one city x peak hour three sets of snapshots ``[n, service, y, x]`` are compared:

- **members**: the city's real weekday snapshots the model was trained on;
- **non-members**: real weekday snapshots of the same city and hour kept out of training (held-out
  days, :func:`split_days`), drawn from the same weeks, so they differ from members only by not
  having been seen;
- **generated**: the snapshots the model generated for the city.

Every map is divided per service by the model's normalisation maximum (so values lie in [0, 1]
whatever the city's volume) and two snapshots are compared by their RMS distance
``d(a, b) = sqrt(mean over services and cells of (a - b)^2)``.

Two measures, both computed here with numpy/scipy (no maintained library fits image-like
snapshots beside this project's dependencies; see ``docs/privacy.md``):

- **DCR ratio** (distance to closest record): the median over generated snapshots of their
  distance to the nearest member, divided by the same median for the non-members. Near 1: the
  model's output is no closer to the training days than a fresh real day is; near 0: it copies
  training days. A model whose samples are smoother than real days scores somewhat below 1 without
  copying anything (a mean map is closer to every day than two days are to each other), hence a
  low default threshold.
- **Membership-inference attack** (the full black-box attack of GAN-Leaks, Chen et al., CCS 2020):
  each real day is scored by minus its distance to the nearest generated snapshot (members of an
  overfitted model lie closer); the attack's ROC-AUC over members vs non-members is 0.5 when
  membership cannot be told and 1 when it always can. The one-sided Mann-Whitney U test gives its
  p-value (AUC = U / (members x non-members)).

A city x hour is **blocked** when the DCR ratio is below ``dcr_ratio_min``, or the attack AUC is
above ``attack_auc_max`` with p-value below ``alpha`` (so that a handful of held-out days cannot
block a release by chance); it is **unmeasured** when there are fewer than ``min_members`` members
or ``min_non_members`` non-members (e.g. a city the model never trained on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from appshot_model.core.errors import AppshotInputError

PASS, BLOCKED, UNMEASURED = "pass", "blocked", "unmeasured"


@dataclass(frozen=True)
class PrivacyThresholds:
    """When the gate blocks a city x peak hour (defaults and their reasons: ``docs/privacy.md``)."""

    #: block when generated snapshots sit closer to training days than this share of the held-out distance
    dcr_ratio_min: float = 0.5
    #: block when the membership-inference ROC-AUC exceeds this ...
    attack_auc_max: float = 0.8
    #: ... and its one-sided Mann-Whitney p-value is below this
    alpha: float = 0.01
    #: fewer member or held-out days than these: the city x hour is reported as unmeasured
    min_members: int = 2
    min_non_members: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.dcr_ratio_min or not 0.5 <= self.attack_auc_max <= 1 or not 0 < self.alpha < 1:
            raise AppshotInputError(f"privacy thresholds need dcr_ratio_min > 0, 0.5 <= attack_auc_max <= 1 and "
                                    f"0 < alpha < 1; got {self}")
        if self.min_members < 1 or self.min_non_members < 1:
            raise AppshotInputError(f"privacy thresholds need min_members and min_non_members >= 1; got {self}")


@dataclass(frozen=True)
class PrivacyAudit:
    """Privacy measures of one city x peak hour and the gate's verdict (``reasons`` when not passed)."""

    city: str
    hour: str
    members: int
    non_members: int
    generated: int
    status: str
    dcr_generated: float | None = None
    dcr_holdout: float | None = None
    dcr_ratio: float | None = None
    attack_auc: float | None = None
    attack_p_value: float | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PrivacyAudit:
        return cls(**data)


def split_days(times: Sequence | np.ndarray, holdout_fraction: float, seed: int) -> np.ndarray:
    """Member mask over snapshot time stamps: ``round(holdout_fraction * dates)`` whole dates (at least one
    when the fraction is > 0, never all) drawn with ``seed`` are held out (False); the rest are members."""
    if not 0 <= holdout_fraction < 1:
        raise AppshotInputError(f"privacy holdout fraction must lie in [0, 1), got {holdout_fraction}")
    dates = pd.DatetimeIndex(np.asarray(times).ravel()).normalize()
    unique = np.unique(dates.values)
    n_holdout = 0
    if holdout_fraction > 0 and len(unique) > 1:
        n_holdout = min(max(1, round(holdout_fraction * len(unique))), len(unique) - 1)
    held_out = np.random.default_rng(seed).choice(unique, size=n_holdout, replace=False)
    return ~np.isin(dates.values, held_out)


def member_mask(times: Sequence | np.ndarray, training_dates: Sequence[str]) -> np.ndarray:
    """True for the snapshots whose date (``YYYY-MM-DD``) is one a model was trained on."""
    dates = pd.DatetimeIndex(np.asarray(times).ravel()).strftime("%Y-%m-%d")
    return np.isin(np.asarray(dates), np.asarray(list(training_dates), dtype=str))


def _flat(snapshots: np.ndarray, service_scale: np.ndarray, what: str) -> np.ndarray:
    snapshots = np.asarray(snapshots, dtype=np.float64)
    if snapshots.ndim != 4 or snapshots.shape[1] != len(service_scale):
        raise AppshotInputError(f"{what} snapshots have shape {snapshots.shape}; expected "
                                f"[n, {len(service_scale)} services, y, x]")
    return (snapshots / service_scale[None, :, None, None]).reshape(len(snapshots), -1)


def rms_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS distance between every row of ``a [n, D]`` and of ``b [m, D]``: ``[n, m]``."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None) / a.shape[1])


def audit_city_hour(city: str, hour: str, generated: np.ndarray, members: np.ndarray, non_members: np.ndarray,
                    service_scale: Sequence[float], thresholds: PrivacyThresholds | None = None) -> PrivacyAudit:
    """DCR ratio and attack AUC of one city x peak hour, and whether the gate passes it (module docstring).

    ``generated``, ``members`` and ``non_members`` are ``[n, service, y, x]`` in traffic units on one grid;
    ``service_scale`` is the model's per-service normalisation maximum.
    """
    thresholds = thresholds or PrivacyThresholds()
    scale = np.asarray(service_scale, dtype=np.float64)
    if not (scale > 0).all():
        raise AppshotInputError(f"service scale of {city}/{hour} must be positive, got {scale}")
    counts = {"members": len(members), "non_members": len(non_members), "generated": len(generated)}
    if len(members) < thresholds.min_members or len(non_members) < thresholds.min_non_members or not len(generated):
        return PrivacyAudit(city, hour, **counts, status=UNMEASURED, reasons=[
            f"{len(members)} member and {len(non_members)} held-out days (need {thresholds.min_members} and "
            f"{thresholds.min_non_members}) and {len(generated)} generated snapshots: nothing to compare"])
    gen, mem, non = (_flat(x, scale, what) for x, what in ((generated, "generated"), (members, "member"),
                                                          (non_members, "non-member")))
    if not gen.shape[1] == mem.shape[1] == non.shape[1]:
        raise AppshotInputError(f"{city}/{hour}: generated, member and held-out snapshots are on different grids")
    dcr_generated = float(np.median(rms_distances(gen, mem).min(axis=1)))
    dcr_holdout = float(np.median(rms_distances(non, mem).min(axis=1)))
    dcr_ratio = dcr_generated / dcr_holdout if dcr_holdout > 0 else float("inf")
    member_scores = -rms_distances(mem, gen).min(axis=1)
    non_member_scores = -rms_distances(non, gen).min(axis=1)
    test = mannwhitneyu(member_scores, non_member_scores, alternative="greater")
    auc = float(test.statistic) / (len(mem) * len(non))
    reasons = []
    if dcr_ratio < thresholds.dcr_ratio_min:
        reasons.append(f"generated snapshots lie closer to the training days than held-out real days do "
                       f"(DCR ratio {dcr_ratio:.3f} < {thresholds.dcr_ratio_min})")
    if auc > thresholds.attack_auc_max and test.pvalue < thresholds.alpha:
        reasons.append(f"a membership-inference attack tells training days from held-out days "
                       f"(ROC-AUC {auc:.3f} > {thresholds.attack_auc_max}, p = {test.pvalue:.2g} < {thresholds.alpha})")
    return PrivacyAudit(city, hour, **counts, status=BLOCKED if reasons else PASS, dcr_generated=dcr_generated,
                        dcr_holdout=dcr_holdout, dcr_ratio=dcr_ratio, attack_auc=auc,
                        attack_p_value=float(test.pvalue), reasons=reasons)


def blocked_message(audits: Sequence[PrivacyAudit]) -> str:
    """One line per blocked city x peak hour saying why ("" when none is blocked)."""
    return "\n".join(f"{a.city} x {a.hour}: {'; '.join(a.reasons)}" for a in audits if a.status == BLOCKED)


def audit_table(audits: Sequence[PrivacyAudit]) -> list[dict]:
    """Rows for a report or dataset card: city, hour, counts, DCR ratio, attack AUC and p-value, status."""
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return [{"city": a.city, "hour": a.hour, "members": a.members, "held_out": a.non_members,
             "generated": a.generated, "dcr_ratio": rounded(a.dcr_ratio), "attack_auc": rounded(a.attack_auc),
             "attack_p_value": None if a.attack_p_value is None else float(f"{a.attack_p_value:.3g}"),
             "status": a.status} for a in audits]
