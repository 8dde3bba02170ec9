"""Gauges several processes report for themselves (aerostat's `senders`
mapping extension), through real sockets: each test socket is a sender of
its own, as each Airflow process is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import Bridge, Sender, running_bridge, value

MAPPING = """\
mappings:
- match: "executor.open_slots"
  name: executor_open_slots
  match_metric_type: gauge
  senders: sum
- match: "short.open_slots"
  name: short_open_slots
  match_metric_type: gauge
  senders: sum
  sender_ttl: 600ms
- match: "pool.open_slots"
  name: pool_open_slots
  match_metric_type: gauge
  senders: sticky
  sender_ttl: 2s
- match: "queue.max"
  name: queue_max
  match_metric_type: gauge
  senders: max
- match: "scheduler_heartbeat"
  name: scheduler_heartbeat_total
  senders: separate
  sender_ttl: 2s
- match: "triggers.running"
  name: triggers_running
  match_metric_type: gauge
  senders: sum
  sender_label: hostname
"""


@pytest.fixture(params=[False, True], ids=["recvmmsg", "recv"])
def bridge(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bridge]:
    """Both ways of receiving UDP: many datagrams per call (recvmmsg) and
    one per call (recv), each reading senders."""
    config = tmp_path / "senders.yml"
    config.write_text(MAPPING)
    with running_bridge(mapping_config=str(config),
                        udp_single_receive=request.param) as running:
        yield running


def test_sum_over_senders(bridge: Bridge) -> None:
    """Two schedulers' executor slots: the sum, not the last writer's value
    (apache/airflow#26601); each sender's own value for drill-down."""
    first, second = Sender(bridge), Sender(bridge)
    first.send(b"executor.open_slots:3|g")
    second.send(b"executor.open_slots:5|g")
    assert value(bridge, "executor_open_slots") == 8
    first.send(b"executor.open_slots:4|g")  # a new value replaces that sender's old one
    second.send(b"executor.open_slots:+2|g")  # a delta applies to that sender's value
    assert value(bridge, "executor_open_slots") == 11
    assert value(bridge, "executor_open_slots_by_sender", sender=first.name) == 4
    assert value(bridge, "executor_open_slots_by_sender", sender=second.name) == 7


def test_a_silent_sender_expires(bridge: Bridge) -> None:
    first, second = Sender(bridge), Sender(bridge)
    first.send(b"short.open_slots:3|g")
    second.send(b"short.open_slots:5|g")
    deadline = time.monotonic() + 5
    while value(bridge, "short_open_slots") != 5:  # the first goes silent
        second.send(b"short.open_slots:5|g")
        assert time.monotonic() < deadline, "the silent sender never expired"
        time.sleep(0.1)
    assert value(bridge, "short_open_slots_by_sender", sender=first.name) is None
    deadline = time.monotonic() + 10
    while value(bridge, "short_open_slots") is not None:  # both silent: the series goes
        assert time.monotonic() < deadline, "the series outlived its senders"
        time.sleep(0.1)
    # hidden at once, removed (and counted) at the next once-a-second sweep
    bridge.wait_for_counter("aerostat_series_expired_total", 1)


def test_sticky_does_not_flap(bridge: Bridge) -> None:
    """Every scheduler reports the pool from the database, at different
    instants: one sender's value is shown until it goes silent."""
    first, second = Sender(bridge), Sender(bridge)
    for open_slots in (b"128", b"126", b"128", b"126"):
        first.send(b"pool.open_slots:" + open_slots + b"|g")
        second.send(b"pool.open_slots:127|g")
        assert value(bridge, "pool_open_slots") == float(open_slots)
    deadline = time.monotonic() + 10
    while value(bridge, "pool_open_slots") != 127:  # the first stops: the second takes over
        second.send(b"pool.open_slots:127|g")
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_max_over_senders(bridge: Bridge) -> None:
    first, second = Sender(bridge), Sender(bridge)
    first.send(b"queue.max:3|g")
    second.send(b"queue.max:9|g")
    first.send(b"queue.max:4|g")
    assert value(bridge, "queue_max") == 9


def test_one_silent_scheduler_out_of_three_shows(bridge: Bridge) -> None:
    """senders: separate gives each process its own heartbeat series, so a
    dead one stops counting while the others go on."""
    schedulers = [Sender(bridge) for _ in range(3)]
    for scheduler in schedulers:
        scheduler.send(b"scheduler_heartbeat:1|c")
    for scheduler in schedulers[:2]:
        scheduler.send(b"scheduler_heartbeat:1|c")
    counts = {s.name: value(bridge, "scheduler_heartbeat_total", sender=s.name)
              for s in schedulers}
    assert counts == {schedulers[0].name: 2, schedulers[1].name: 2, schedulers[2].name: 1}
    deadline = time.monotonic() + 10
    while value(bridge, "scheduler_heartbeat_total", sender=schedulers[2].name) is not None:
        for scheduler in schedulers[:2]:
            scheduler.send(b"scheduler_heartbeat:1|c")
        assert time.monotonic() < deadline, "the dead scheduler's series never expired"
        time.sleep(0.1)
    assert value(bridge, "scheduler_heartbeat_total", sender=schedulers[0].name)


def test_sender_from_a_label(bridge: Bridge) -> None:
    """Triggerers tag their gauges with hostname: that names the sender,
    whatever socket the line came from."""
    one_socket = Sender(bridge)
    one_socket.send(b"triggers.running,hostname=a:2|g", b"triggers.running,hostname=b:3|g",
                    b"triggers.running,hostname=a:4|g")
    assert value(bridge, "triggers_running", hostname="a") == 4
    assert value(bridge, "triggers_running", hostname="b") == 3
    assert value(bridge, "triggers_running_by_sender", hostname="a", sender="a") == 4


def test_over_tcp_each_connection_is_a_sender(bridge: Bridge) -> None:
    for slots in (b"2", b"6"):
        bridge.send_tcp(b"executor.open_slots:" + slots + b"|g\n")
    assert value(bridge, "executor_open_slots") == 8


def test_the_exposition_stays_valid(bridge: Bridge) -> None:
    import subprocess

    first, second = Sender(bridge), Sender(bridge)
    first.send(b"executor.open_slots:3|g", b"scheduler_heartbeat:1|c")
    second.send(b"executor.open_slots:5|g", b"scheduler_heartbeat:1|c")
    checked = subprocess.run(["promtool", "check", "metrics"],
                             input=bridge.scrape_text().encode(), capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
