"""The privacy measures on real-looking snapshots of a simulated city: copies of training days are
blocked, other real days pass, too few days are unmeasured, the split holds whole dates out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from appshot_model.core.errors import AppshotInputError
from appshot_model.evaluation.privacy import (BLOCKED, PASS, UNMEASURED, PrivacyThresholds, audit_city_hour,
                                              blocked_message, member_mask, rms_distances, split_days)
from appshot_model.traffic.demo import simulate_context, simulate_traffic, small_demo_city
from appshot_model.traffic.peaks import peak_snapshots


@pytest.fixture(scope="module")
def days():
    city = small_demo_city("tiny", 12, 12)
    snapshots = peak_snapshots(simulate_traffic(city, simulate_context(city, seed=0), seed=0, days=28), "morning")
    values = snapshots.transpose("time", "service", "y", "x").values
    return snapshots["time"].values, values, values.max(axis=(0, 2, 3))


def test_split_holds_out_whole_dates_reproducibly():
    times = pd.date_range("2026-03-02 08:00", periods=20, freq="D").append(
        pd.date_range("2026-03-02 08:30", periods=20, freq="D")).values  # two snapshots per date
    members = split_days(times, 0.25, seed=3)
    assert members.sum() == 30 and np.array_equal(members, split_days(times, 0.25, seed=3))
    dates = pd.DatetimeIndex(times).normalize()
    assert set(dates[members]).isdisjoint(dates[~members])
    assert not np.array_equal(members, split_days(times, 0.25, seed=4))
    assert split_days(times, 0.0, seed=3).all()
    assert split_days(times[:1], 0.5, seed=3).all()  # one date: never hold everything out
    kept = pd.DatetimeIndex(times[members]).strftime("%Y-%m-%d")
    assert np.array_equal(member_mask(times, sorted(set(kept))), members)
    with pytest.raises(AppshotInputError, match="holdout fraction"):
        split_days(times, 1.0, seed=3)


def test_rms_distance():
    a = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    b = np.array([[0.0, 0.0, 0.0, 2.0]])
    np.testing.assert_allclose(rms_distances(a, b), [[1.0], [1.0]])


def test_copies_of_training_days_are_blocked_and_other_days_pass(days):
    times, values, scale = days
    members = split_days(times, 0.5, seed=0)
    mem, non = values[members], values[~members]
    copies = audit_city_hour("tiny", "morning", mem, mem, non, scale)  # a model that replays its training days
    assert copies.status == BLOCKED and copies.dcr_ratio == pytest.approx(0.0, abs=1e-6)
    assert copies.attack_auc == 1.0 and len(copies.reasons) == 2
    message = blocked_message([copies])
    assert message.startswith("tiny x morning: ") and "DCR ratio 0.000 < 0.5" in message
    fresh = audit_city_hour("tiny", "morning", non[:5], mem, non[5:], scale)  # unseen real days
    assert fresh.status == PASS and 0.7 < fresh.dcr_ratio < 1.4, fresh
    assert blocked_message([fresh]) == ""


def test_attack_blocks_a_model_close_to_its_two_training_days(days):
    times, values, scale = days
    members = split_days(times, 0.9, seed=3)
    assert members.sum() == 2
    # each training day pulled 30 % of the way to the all-day mean, three draws each: close to its members
    generated = np.repeat(0.7 * values[members] + 0.3 * values.mean(axis=0)[None], 3, axis=0)
    audit = audit_city_hour("tiny", "morning", generated, values[members], values[~members], scale)
    assert audit.status == BLOCKED and audit.attack_auc == 1.0 and audit.attack_p_value < 0.01
    assert any("membership-inference" in r for r in audit.reasons)
    lenient = PrivacyThresholds(attack_auc_max=1.0, dcr_ratio_min=0.1)
    assert audit_city_hour("tiny", "morning", generated, values[members], values[~members], scale,
                           lenient).status == PASS


def test_too_few_days_are_unmeasured(days):
    times, values, scale = days
    audit = audit_city_hour("tiny", "morning", values[:3], values[3:4], values[4:], scale)
    assert audit.status == UNMEASURED and audit.dcr_ratio is None and "1 member" in audit.reasons[0]
    with pytest.raises(AppshotInputError, match="services"):
        audit_city_hour("tiny", "morning", values[:3, :2], values[3:8], values[8:], scale)
    with pytest.raises(AppshotInputError, match="attack_auc_max"):
        PrivacyThresholds(attack_auc_max=0.3)
