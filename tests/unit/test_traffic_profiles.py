"""Traffic profiles: the shipped ones load, and any scaling keeps the day's shape and total."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.load.profile import STEPS, TRAFFIC_DIR, ProfileError, load_profile, parse


@pytest.mark.parametrize("name", ["daily", "peak"])
def test_the_shipped_profiles_load_with_their_volumes(name):
    profile = load_profile(name)
    assert profile.calls == {"daily": 250_000, "peak": 1_000_000}[name]
    assert len(profile.curve) == 24 and all(step in STEPS for f in profile.flows
                                            for step in f.steps)
    # Reads dominate, as on a real platform.
    calls = sum(f.weight * len(f.steps) for f in profile.flows)
    reads = sum(f.weight for f in profile.flows for step in f.steps
                if STEPS[step][1].startswith(("list", "get")))
    assert reads > 0.7 * calls
    # A quiet night and evening peak.
    assert max(profile.curve[0:6]) < min(profile.curve[19:22])


@given(calls=st.integers(1, 10**7), duration=st.floats(1, 86_400),
       curve=st.lists(st.floats(0, 100), min_size=24, max_size=24).filter(lambda c: sum(c) > 1))
def test_scaling_keeps_the_total_and_the_busiest_hour(calls, duration, curve):
    base = load_profile("daily")
    profile = parse({**base.to_dict(), "curve": curve, "flows": {
        f.name: {"weight": f.weight, "steps": list(f.steps)} for f in base.flows}},
        "test").scaled(calls, duration)
    hour = duration / 24
    planned = sum(profile.rate_at(h * hour + hour / 2) * hour for h in range(24))
    assert planned == pytest.approx(calls, rel=1e-9)
    busiest = max(range(24), key=lambda h: curve[h])
    assert profile.rate_at(busiest * hour + hour / 2) == pytest.approx(
        max(profile.rate_at(h * hour + hour / 2) for h in range(24)))
    # The capacity note speaks of the real day, however the run was scaled.
    assert profile.busiest_minute() == pytest.approx(
        base.calls * max(curve) / sum(curve) / 60)


@pytest.mark.parametrize(("change", "message"), [
    ({"curve": [1] * 23}, "'curve' must be 24 hourly weights"),
    ({"curve": [0] * 24}, "not all zero"),
    ({"calls": 0}, "'calls' must be a positive number"),
    ({"flows": {"x": {"weight": 1, "steps": ["teleport"]}}}, "unknown: teleport"),
    ({"flows": {"x": {"weight": 0, "steps": ["getBalance"]}}}, "positive weight"),
    ({"flows": {}}, "at least one flow"),
])
def test_a_bad_profile_is_refused_with_the_field_named(change, message):
    raw = {"calls": 10, "duration_s": 10, "partners": 1, "customers_per_partner": 1,
           "flows": {"balance": {"weight": 1, "steps": ["getBalance"]}}, "curve": [1] * 24}
    with pytest.raises(ProfileError, match=message):
        parse({**raw, **change}, "bad.yaml")


def test_an_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError, match="daily, peak"):
        load_profile("nosuch")
    assert (TRAFFIC_DIR / "daily.yaml").is_file()
