"""The status page in a real browser: Debian's Chromium, headless, driven
by Selenium through Debian's chromedriver (./run installs both). Fed the
shipped Airflow capture from three processes, the page renders without a
script of its own, its tables show the counts /metrics shows, and a
screenshot is kept (the README's, with AEROSTAT_STATUS_SCREENSHOT=path)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from aerostat.airflow import airflow_built_in
from bridge import Bridge, Sender, running_bridge

CAPTURE = (Path(__file__).resolve().parents[2]
           / "src/aerostat/airflow/captures/airflow-3.3.2-plain.jsonl")

MAPPING = """\
mappings:
  # this team does not chart how long serializers take to load
  - match: "airflow.serde.*"
    name: "dropped"
    action: drop
"""

# a team's own metrics that no rule maps, and a line cut short
OTHER_LINES = [b"myteam.etl.rows_loaded:1200|c", b"myteam.etl.rows_loaded:800|c",
               b"myteam.etl.load_seconds:3200|ms", b"myteam.etl.rows_rejected:3|c",
               b"airflow.scheduler.tasks.running 3"]


def role_of(line: bytes) -> str:
    """Which Airflow process sends the line (the capture does not say)."""
    name = line.partition(b":")[0]
    if name.startswith((b"airflow.dag_processing", b"airflow.dag_processor", b"airflow.dagbag")):
        return "dag-processor"
    if name.startswith((b"airflow.trigger", b"airflow.triggers")):
        return "triggerer"
    return "scheduler"


def replay(bridge: Bridge) -> None:
    """The capture as fast as the server takes it, each line from the
    process that would send it, in chunks small enough for the socket's
    receive buffer."""
    senders = {role: Sender(bridge) for role in ("scheduler", "dag-processor", "triggerer")}
    lines = [json.loads(text)["data"].encode() for text in CAPTURE.read_text().splitlines()]
    for start in range(0, len(lines), 400):
        chunk = lines[start:start + 400]
        for role, sender in senders.items():
            mine = [line for line in chunk if role_of(line) == role]
            if mine:
                sender.send(*mine)
    senders["scheduler"].send(*OTHER_LINES)
    bridge.settle()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chromium).exists() and Path(driver_path).exists()):
        pytest.fail("Debian's chromium and chromium-driver are missing: ./run tests installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,900",
                     "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    # an explicit driver: Selenium Manager, which would download one, stays idle
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


def cells(driver: webdriver.Chrome, table_id: str) -> list[list[str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, f"table#{table_id} tbody tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def count(text: str) -> float:
    return float(text.split()[0].replace(",", ""))


def test_the_page_in_chromium(browser: webdriver.Chrome, tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.yml"
    mapping.write_text(MAPPING)
    with running_bridge(built_in=airflow_built_in(), mapping_config=str(mapping)) as bridge:
        bridge.server.set_links({"Prometheus": "http://127.0.0.1:9090"})
        replay(bridge)
        own = bridge.samples(own=True)
        browser.get(bridge.url + "/")

        assert browser.title == "aerostat status"
        traffic = {row[0].splitlines()[0]: row for row in cells(browser, "traffic")}
        assert count(traffic["lines received"][1]) == own[
            ("statsd_exporter_lines_total", frozenset())] == 11596 + len(OTHER_LINES)
        assert count(traffic["unmapped (no rule matched; exported under their own names)"][1]) \
            == own[("statsd_exporter_events_unmapped_total", frozenset())] == 4
        assert count(traffic["dropped (by a rule, or a twin counted once)"][1]) == own[
            ("statsd_exporter_events_actions_total", frozenset({("action", "drop")}))]

        unmapped = {row[0]: row for row in cells(browser, "unmapped")}
        assert set(unmapped) == {"myteam.etl.rows_loaded", "myteam.etl.load_seconds",
                                 "myteam.etl.rows_rejected"}
        dropped = {row[0]: row[3] for row in cells(browser, "dropped")}
        assert dropped["airflow.serde.load_serializers"] == "airflow.serde.* (mapping 1, line 3)"
        losses = {row[0].splitlines()[0]: count(row[1]) for row in cells(browser, "losses")}
        assert losses == {"refused sample: malformed_line": own[
            ("statsd_exporter_sample_errors_total", frozenset({("reason", "malformed_line")}))]}

        processes = cells(browser, "processes-default")
        assert sorted((row[0], row[3]) for row in processes) == [
            ("dag_processor", "alive"), ("scheduler", "alive"), ("triggerer", "alive")]

        # the whole page in one picture
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1200, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
        shot = tmp_path / "status-page.png"
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        wanted = os.environ.get("AEROSTAT_STATUS_SCREENSHOT")
        if wanted:
            shutil.copyfile(shot, wanted)
