"""What `pip install .` gives a user (and the container image) runs: the
wheel carries the data files the code loads (the Airflow catalog, the demo
capture), not only the modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_runs_the_airflow_mapping_and_renders_the_stack(tmp_path: Path) -> None:
    # from a copy of what git tracks: a build/ left in the clone would lend
    # the wheel files the package data does not name
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src/aerostat", source / "src/aerostat",
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("aerostat-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    # the installed package alone, with this environment's dependencies
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    capture = site / "aerostat/airflow/captures/airflow-3.3.2-plain.jsonl"
    replay = subprocess.run(
        [sys.executable, "-I", "-c",
         "import sys; sys.path.insert(0, sys.argv[1]); from aerostat.cli import main; "
         "sys.exit(main(sys.argv[2:]))", str(site), "replay", "--airflow", str(capture)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert replay.returncode == 0, replay.stderr
    assert "airflow_ti_finish_total{" in replay.stdout
    render = subprocess.run(
        [sys.executable, "-I", "-c",
         "import sys; sys.path.insert(0, sys.argv[1]); from aerostat.cli import main; "
         "sys.exit(main(sys.argv[2:]))", str(site), "stack", "render", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert render.returncode == 0, render.stderr
    assert (tmp_path / "out/grafana/dashboards/airflow-overview.json").is_file()


def test_the_exporter_runs_without_the_stack_extra(tmp_path: Path) -> None:
    """grafana-foundation-sdk is the `stack` extra: without it the exporter
    works, and `aerostat stack` says what to install instead of a traceback."""
    blocked = ("import sys; sys.modules['grafana_foundation_sdk'] = None; "
               "from aerostat.cli import main; sys.exit(main(sys.argv[1:]))")
    capture = ROOT / "src/aerostat/airflow/captures/airflow-3.3.2-plain.jsonl"
    replay = subprocess.run([sys.executable, "-c", blocked, "replay", "--airflow", str(capture)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert replay.returncode == 0, replay.stderr
    assert "airflow_ti_finish_total{" in replay.stdout
    render = subprocess.run([sys.executable, "-c", blocked, "stack", "render", "out"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert render.returncode == 1
    assert "pip install 'aerostat[stack]'" in render.stderr
    assert "Traceback" not in render.stderr
