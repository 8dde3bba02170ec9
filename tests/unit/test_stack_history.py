"""The demo's past hour (stack/history.py): where passes and scrapes fall,
the OpenMetrics it writes, and Debian's promtool turning it into a block."""

from __future__ import annotations

import io
import itertools
import json
import shutil
from pathlib import Path

import pytest

from aerostat.counters import Telemetry
from aerostat.frontend import build_mapper
from aerostat.mapper import MappingConfig
from aerostat.pipeline import Pipeline
from aerostat.stack.history import Timeline, _with_labels, history_openmetrics, write_blocks
from aerostat.store import Store

CAPTURE = [(10.0, b"a:1|c"), (12.0, b"b:2|c"), (20.0, b"a:1|c")]


def test_whole_passes_end_at_the_end_and_cover_the_hour() -> None:
    timeline = Timeline(CAPTURE, end=100_000.0, seconds=3600, step=5)
    # 10 s of capture and a pause of the mean gap (5 s): 15 s a pass
    assert timeline.pass_seconds == 15.0
    assert timeline.passes == 240
    assert timeline.start == 100_000.0 - 3600
    sends = list(timeline.sends())
    assert sends[:3] == [(96_400.0, b"a:1|c"), (96_402.0, b"b:2|c"), (96_410.0, b"a:1|c")]
    assert sends[3][0] == 96_415.0, "the next pass after the pause"
    scrapes = timeline.scrapes()
    assert scrapes[0] == timeline.start and scrapes[-1] == 100_000.0
    assert {b - a for a, b in itertools.pairwise(scrapes)} == {5.0}


def test_no_history_from_before_the_clock_began() -> None:
    # a machine up for 100 s: the exporter's clock has no hour behind it
    timeline = Timeline(CAPTURE, end=100.0)
    assert timeline.passes == 6 and timeline.start > 0


def test_the_targets_labels_are_added_as_the_scrape_adds_them() -> None:
    extra = 'job="aerostat",instance="127.0.0.1:9102"'
    assert _with_labels("up", extra) == f"up{{{extra}}}"
    assert _with_labels('a_total{x="1 }"}', extra) == f'a_total{{x="1 }}",{extra}}}'
    # an exposed job keeps its value as exported_job, as honor_labels: false does
    assert (_with_labels('a{job="etl",y="job=\\"z"}', extra)
            == f'a{{exported_job="etl",y="job=\\"z",{extra}}}')


def _history(capture: list[tuple[float, bytes]], end: float,
             seconds: float) -> tuple[str, int, Store]:
    store = Store()
    pipeline = Pipeline(build_mapper(MappingConfig.empty()), store, Telemetry())
    out = io.StringIO()
    count = history_openmetrics(pipeline, Timeline(capture, end=end, seconds=seconds),
                                ("127.0.0.1", 4000), 1_700_000_000.0 - end,
                                {"job": "aerostat", "instance": "h:1"}, out)
    return out.getvalue(), count, store


def test_openmetrics_a_family_at_a_time_with_each_scrapes_time() -> None:
    text, count, store = _history(CAPTURE, end=10_000.0, seconds=30)
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    a = [line for line in lines if line.startswith("a{")]
    # two passes of 15 s, scraped every 5 s from 30 s before the end; a
    # StatsD counter without a mapping is typed unknown, as upstream does
    assert a == [
        'a{job="aerostat",instance="h:1"} 0 1699999975.000',  # new: held at 0
        'a{job="aerostat",instance="h:1"} 1 1699999980.000',
        'a{job="aerostat",instance="h:1"} 2 1699999985.000',
        'a{job="aerostat",instance="h:1"} 3 1699999990.000',
        'a{job="aerostat",instance="h:1"} 3 1699999995.000',
        'a{job="aerostat",instance="h:1"} 4 1700000000.000',
    ]
    # each family's lines together: its metadata once, then its samples
    assert lines.index("# TYPE a unknown") < lines.index(a[0])
    assert text.count("# TYPE a unknown") == 1
    assert lines.index("# TYPE b unknown") > lines.index(a[-1])
    assert sum(1 for line in lines if line.startswith("up{")) == 7
    assert count == sum(1 for line in lines if not line.startswith("#"))
    # the store ends the hour holding what the live exporter carries on from
    family = store.families["a"]
    assert [series.value for series in family.series.values()] == [4.0]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus)")
def test_promtool_makes_a_block_of_every_sample(tmp_path: Path) -> None:
    text, count, _ = _history(CAPTURE, end=10_000.0, seconds=600)
    source = tmp_path / "history.om"
    source.write_text(text)
    write_blocks(str(shutil.which("promtool")), source, tmp_path / "data")
    metas = [json.loads(meta.read_text()) for meta in (tmp_path / "data").glob("*/meta.json")]
    assert sum(meta["stats"]["numSamples"] for meta in metas) == count


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus)")
def test_promtool_refusing_is_one_line_naming_the_file(tmp_path: Path) -> None:
    from aerostat.errors import AerostatError

    source = tmp_path / "history.om"
    source.write_text("a_total 1 5\n")  # no # EOF
    with pytest.raises(AerostatError) as raised:
        write_blocks(str(shutil.which("promtool")), source, tmp_path / "data")
    assert "promtool could not backfill" in str(raised.value)
    assert raised.value.source == str(source)
