"""The commands as a user runs them: a real process, its output, its exit
status, its signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

CAPTURE = (
    Path(__file__).parents[2] / "src/aerostat/airflow/captures/airflow-3.3.2-plain.jsonl"
)
MAPPING = "mappings:\n- match: airflow.ti.finish.*.*.*\n  name: ti_finish_total\n  labels:\n" \
    "    dag_id: $1\n    task_id: $2\n    state: $3\n"


def aerostat(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aerostat.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yml"
    path.write_text(MAPPING)
    return path


def test_check_config_accepts_a_good_file(mapping: Path) -> None:
    result = aerostat("check-config", str(mapping))
    assert result.returncode == 0
    assert result.stdout.endswith(": OK, 1 mapping\n")


def test_check_config_says_when_a_file_holds_no_mapping(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    result = aerostat("check-config", str(empty))
    assert result.returncode == 0  # valid, as statsd_exporter has it
    assert "OK, but no mappings" in result.stdout


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("mappings:\n- match: a.b\n  nmae: x\n", ":3:3", id="unknown-key"),
        pytest.param("mappings:\n- match: a.b\n  name: x\n  observer_type: wrong\n", ":4:18",
                     id="bad-value"),
        pytest.param("mappings:\n- match: a.b\n  name: [x\n", ":4:1", id="yaml-syntax"),
        pytest.param("mappings:\n- match: a.b\n  name: x\n  senders: sum\n", ":4:12",
                     id="sender-policy-needs-a-gauge"),
        # found by tests/fuzz: PyYAML refuses control characters before parsing
        pytest.param("mappings:\n- match: a.b\x1f\n  name: x\n", ":2:13",
                     id="control-character"),
    ],
)
def test_check_config_names_file_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(text)
    result = aerostat("check-config", str(path))
    assert result.returncode == 1
    assert f"{path}{where}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_broken_mapping(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text("mappings:\n- match: a.b\n")
    result = aerostat("serve", f"--statsd.mapping-config={path}",
                      "--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=",
                      "--web.listen-address=127.0.0.1:0")
    assert result.returncode == 1
    assert str(path) in result.stderr and "name" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = aerostat("serve", "--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=",
                          f"--web.listen-address=127.0.0.1:{port}")
    assert result.returncode == 1
    assert "--web.listen-address" in result.stderr and "Traceback" not in result.stderr


def test_map_json(mapping: Path) -> None:
    lines = [
        "airflow.ti.finish.demo.extract.success:1|c",
        "some.gauge:-3|g|#a:b",
        "broken",
        "t:200|ms",
    ]
    result = aerostat("map", "--config", str(mapping), "--json", *lines)
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [report["line"] for report in reports] == lines
    mapped, gauge, broken, timer = reports
    assert mapped["error"] is None
    assert mapped["events"] == [{
        "name": "ti_finish_total",
        "labels": {"dag_id": "demo", "task_id": "extract", "state": "success"},
        "type": "counter",
        "value": 1.0,
        "rule": "airflow.ti.finish.*.*.* (mapping 1, line 2)",
    }]
    assert gauge["events"] == [{"name": "some_gauge", "labels": {"a": "b"}, "type": "gauge",
                                "value": -3.0, "relative": True}]
    assert broken == {"line": "broken", "events": [], "error": "malformed_line"}
    assert timer["events"][0]["type"] == "observer" and timer["events"][0]["value"] == 0.2


def test_map_reads_stdin_and_explains_in_words(mapping: Path) -> None:
    result = aerostat("map", "--config", str(mapping),
                      stdin="airflow.ti.finish.d.t.failed:1|c\nx:1|s\n")
    assert result.returncode == 0
    assert 'ti_finish_total{dag_id="d",state="failed",task_id="t"} 1  by' in result.stdout
    assert "refused: illegal_event" in result.stdout


def test_replay_of_the_real_airflow_capture(mapping: Path, tmp_path: Path) -> None:
    result = aerostat("replay", "--config", str(mapping), str(CAPTURE))
    assert result.returncode == 0, result.stderr
    families = {f.name: f for f in text_string_to_metric_families(result.stdout)}
    datagrams = sum(1 for line in CAPTURE.read_text().splitlines() if line.strip())
    packets = families["statsd_exporter_udp_packets"].samples[0].value
    assert packets == datagrams
    finished = families["ti_finish"].samples  # the parser calls it ti_finish(_total)
    states = {sample.labels["state"] for sample in finished}
    assert {"success", "failed"} <= states
    # a plain text file of lines gives the same series as the capture it came from
    lines = tmp_path / "capture.lines"
    records = CAPTURE.read_text().splitlines()
    lines.write_text("\n".join(json.loads(record)["data"] for record in records))
    again = aerostat("replay", "--config", str(mapping), str(lines))
    assert again.returncode == 0
    again_families = {f.name: f for f in text_string_to_metric_families(again.stdout)}
    assert again_families["ti_finish"].samples == finished


def test_replay_names_a_missing_file() -> None:
    result = aerostat("replay", "/nonexistent/capture.jsonl")
    assert result.returncode == 1 and "/nonexistent/capture.jsonl" in result.stderr


@pytest.fixture
def served(mapping: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "aerostat.cli", "serve", f"--statsd.mapping-config={mapping}",
         "--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=",
         "--web.listen-address=127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    udp_port = http_port = 0
    while not (udp_port and http_port):
        line = process.stderr.readline()
        assert line, "aerostat serve exited before listening"
        if found := re.search(r"udp=127\.0\.0\.1:(\d+)", line):
            udp_port = int(found[1])
        if found := re.search(r"addr=127\.0\.0\.1:(\d+)", line):
            http_port = int(found[1])
    try:
        yield process, udp_port, http_port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def wait_for(port: int, needle: str) -> str:
    deadline = time.monotonic() + 10
    while needle not in (text := scrape(port)):
        assert time.monotonic() < deadline, f"{needle!r} never appeared"
        time.sleep(0.05)
    return text


def test_sighup_reloads_the_mapping(served: tuple[subprocess.Popen[str], int, int],
                                    mapping: Path) -> None:
    process, udp_port, http_port = served
    mapping.write_text(MAPPING + "- match: extra.*\n  name: extra_${1}\n")
    process.send_signal(signal.SIGHUP)
    wait_for(http_port, "statsd_exporter_loaded_mappings 2\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"extra.thing:5|g", ("127.0.0.1", udp_port))
    wait_for(http_port, "extra_thing 5")


def test_sigterm_drains_and_exits_cleanly(served: tuple[subprocess.Popen[str], int, int]) -> None:
    process, udp_port, _ = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(1000):
            sock.sendto(b"burst:1|c", ("127.0.0.1", udp_port))
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(10) == 0
    assert process.stderr is not None
    log = process.stderr.read()
    assert "shutting down" in log and "Traceback" not in log
    # everything sent before the signal was read before exit, or counted as
    # dropped by the kernel (a burst can overrun the default receive buffer)
    stopped = re.search(r"msg=Stopped udp_packets=(\d+) udp_kernel_drops=(\d+)", log)
    assert stopped, log
    assert int(stopped[1]) + int(stopped[2]) == 1000


def test_json_logs_and_a_warning_for_refused_input(mapping: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aerostat.cli", "serve", "--statsd.listen-udp=127.0.0.1:0",
         "--statsd.listen-tcp=", "--web.listen-address=127.0.0.1:0", "--log.format=json"],
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    try:
        records = []
        while not any(r["msg"] == "Accepting Prometheus requests" for r in records):
            records.append(json.loads(process.stderr.readline()))
        udp_port = int(next(r["udp"] for r in records if "udp" in r).rsplit(":", 1)[1])
        # the README says aerostat logs the read buffer it got: at the default level too
        [buffer] = [r for r in records if "read_buffer_bytes" in r]
        assert buffer["level"] in ("info", "warn") and buffer["read_buffer_bytes"] > 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for line in (b"bad", b"x:NaN|g", b"also bad"):
                sock.sendto(line, ("127.0.0.1", udp_port))
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)  # a last summary of refusals comes at stop
        assert process.wait(10) == 0
        rest = [json.loads(line) for line in process.stderr.read().splitlines()]
    finally:
        if process.poll() is None:
            process.kill()
    assert all({"time", "level", "msg"} <= record.keys() for record in records + rest)
    assert rest[-1]["msg"] == "Stopped"
    [warning] = [record for record in rest if record["level"] == "warn"]
    assert warning["malformed_line"] == 2 and warning["non_finite_value"] == 1


def test_invalid_utf8_is_explained_not_fatal(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", "map", "--json"],
        input=b"ok:1|g\nbad\xc3(:1|c\n", capture_output=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert reports[0]["error"] is None
    assert reports[1] == {"line": "bad\ufffd(:1|c", "events": [], "error": "malformed_line"}

    capture = tmp_path / "mixed.lines"
    capture.write_bytes(b"ok:1|g\nbad\xc3(:1|c\n")
    replayed = aerostat("replay", str(capture))
    assert replayed.returncode == 0, replayed.stderr
    # the own counters' values read as the store's do (not 1.0 beside 1)
    assert 'statsd_exporter_sample_errors_total{reason="malformed_line"} 1\n' in replayed.stdout
    assert "\nok 1\n" in replayed.stdout
    assert not [line for line in replayed.stdout.splitlines() if line.endswith(".0")]


@pytest.mark.parametrize(("args", "says"), [
    (("serve", "--statsd.ttl", "10x"), "aerostat serve: error: argument --statsd.ttl: '10x' "
                                       "is not a duration"),
    (("serve", "--bogus"), "aerostat serve: error: unrecognized arguments: --bogus"),
    (("airflow",), "aerostat airflow: error: which command? One of: mapping, "),
    (("stack",), "aerostat stack: error: which command? One of: "),
])
def test_a_command_line_mistake_is_two_lines_from_the_command_that_made_it(
    args: tuple[str, ...], says: str
) -> None:
    """A wrong serve flag printed thirty lines of usage before the error, an
    unknown one the top-level usage, `aerostat airflow` 'airflow_command'."""
    result = aerostat(*args)
    assert result.returncode == 2
    first, second = result.stderr.splitlines()
    assert first.startswith(says), first
    assert second == f"Run 'aerostat {args[0]} --help' to see what it takes."


@pytest.mark.parametrize(("args", "says"), [
    (("--airflow.api-url=http://127.0.0.1:8080",), "--airflow.api-url: needs --airflow"),
    (("--airflow", "--airflow.api-url=ftp://airflow"), "--airflow.api-url: not an http(s) URL"),
    (("--airflow", "--airflow.api-url=http://airflow", "--airflow.api-username=viewer"),
     "--airflow.api-username: default: a user needs --airflow.api-password-file"),
    (("--airflow", "--airflow.api-url=etl=http://airflow",
      "--airflow.api-token-file=ops=/nonexistent"),
     "--airflow.api-token-file: names a deployment without --airflow.api-url: ops"),
    (("--airflow", "--airflow.api-url=http://airflow", "--airflow.api-password-file=/nope",
      "--airflow.api-username=viewer"), "--airflow.api-password-file: cannot read /nope"),
    (("--airflow", "--airflow.api-url=http://a", "--airflow.api-url=http://b"),
     "--airflow.api-url: given twice for every deployment"),
])
def test_a_mistake_in_the_api_flags_is_one_line_naming_the_flag(
    args: tuple[str, ...], says: str
) -> None:
    result = aerostat("serve", "--statsd.listen-udp=127.0.0.1:0", "--statsd.listen-tcp=",
                      "--web.listen-address=127.0.0.1:0", *args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert says in result.stderr, result.stderr


def test_the_api_password_is_not_in_the_command_line_or_help() -> None:
    """Secrets come from files or the environment: no flag takes one."""
    result = aerostat("serve", "--help")
    assert "--airflow.api-password-file" in result.stdout
    assert not re.search(r"--airflow\.api-password[ =]", result.stdout)
