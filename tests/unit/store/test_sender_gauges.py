"""A gauge several senders report: what it shows under each policy, and
senders grouped as replicas of one share of a sum."""

from __future__ import annotations

import pytest

from aerostat.store.series import SenderGaugeSeries


def series(policy: str, ttl: float = 10.0) -> SenderGaugeSeries:
    return SenderGaugeSeries((), "", 0.0, policy, ttl)


@pytest.mark.parametrize(("policy", "shown"), [("sum", 15.0), ("max", 9.0), ("min", 2.0),
                                               ("sticky", 4.0)])
def test_each_policy_over_live_senders(policy: str, shown: float) -> None:
    gauge = series(policy)
    for sender, value in (("a", 4.0), ("b", 9.0), ("c", 2.0)):
        gauge.set(sender, value, False, 100.0)
    assert gauge.value_at(100.0) == shown


def test_a_silent_sender_stops_counting() -> None:
    gauge = series("sum", ttl=10.0)
    gauge.set("a", 4.0, False, 100.0)
    gauge.set("b", 9.0, False, 105.0)
    assert gauge.value_at(109.0) == 13.0
    assert gauge.value_at(111.0) == 9.0
    assert gauge.value_at(120.0) is None


def test_replicas_in_one_group_count_once_with_their_latest_value() -> None:
    gauge = series("sum")
    gauge.groups = {"a1": "bundle-a", "a2": "bundle-a"}
    gauge.set("a1", 12.0, False, 100.0)
    gauge.set("b", 30.0, False, 100.5)
    gauge.set("a2", 13.0, False, 101.0)  # the replica that parsed last
    assert gauge.value_at(101.0) == 43.0
    gauge.set("a1", 14.0, False, 102.0)
    assert gauge.value_at(102.0) == 44.0
    # a replica gone silent leaves the group's share to the other
    assert gauge.value_at(111.5) == 14.0  # b and a2 silent since 100.5 and 101


def test_without_groups_every_sender_is_its_own_share() -> None:
    gauge = series("sum")
    gauge.set("a1", 12.0, False, 100.0)
    gauge.set("a2", 13.0, False, 100.0)
    assert gauge.value_at(100.0) == 25.0
