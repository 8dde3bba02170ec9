"""Takes docs/images/prometheus-demo.png as a new user sees it: runs
``aerostat up --demo`` on free ports with a throw-away state directory and,
as soon as the stack is up, opens the Prometheus graph link it printed (the
README's query over the last hour, which the demo backfilled) in Debian's
headless Chromium through Selenium and Debian's chromedriver. Not part of
the tests; needs what ``./run tests`` installs (chromium, chromium-driver).

    .venv/bin/python tools/screenshot.py [--wait SECONDS] [--out PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def printed_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float) -> str:
    assert process.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"aerostat up did not come up: {out.decode()}")
        if select.select([process.stdout], [], [], 1)[0]:
            out += os.read(process.stdout.fileno(), 65536)
    return out.decode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=0.0,
                        help="seconds of live demo traffic before the picture (0: at once)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images/prometheus-demo.png")
    args = parser.parse_args()
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        print("needs Debian's chromium and chromium-driver (./run tests installs them)",
              file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="aerostat-screenshot-") as scratch:
        ports = {"statsd": free_port(socket.SOCK_DGRAM), "web": free_port(),
                 "prometheus": free_port(), "grafana": free_port()}
        up = subprocess.Popen(
            [sys.executable, "-m", "aerostat.cli", "up", "--demo", "--state-dir",
             f"{scratch}/state", *(f"--{name}-port={port}" for name, port in ports.items())],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        )
        try:
            summary = printed_until(up, b"statsd_prefix", 180)
            found = re.search(r"Prometheus +(http://\S+)", summary)
            assert found, summary
            time.sleep(args.wait)
            options = webdriver.ChromeOptions()
            options.binary_location = chromium
            for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                             "--disable-dev-shm-usage", "--window-size=1400,1150",
                             "--hide-scrollbars", "--force-device-scale-factor=1"):
                options.add_argument(argument)
            driver = webdriver.Chrome(options=options,
                                      service=Service(executable_path=driver_path))
            try:
                driver.get(found[1])
                # the classic graph page draws its lines as SVG paths
                # the classic graph page (Rickshaw) draws each series as an SVG path
                WebDriverWait(driver, 30).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, ".graph svg path.path"))
                time.sleep(1)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(args.out))
            finally:
                driver.quit()
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(60)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
