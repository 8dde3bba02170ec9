"""The README's examples stay true: every ``$ ./run aerostat …`` console
block is run and its output compared."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BLOCK = re.compile(r"```console\n\$ \./run aerostat (?P<args>[^\n]+)\n(?P<output>.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(found["args"], found["output"]) for found in BLOCK.finditer(text)]


def test_readme_has_examples() -> None:
    assert examples()


@pytest.mark.parametrize(("args", "output"), examples())
def test_readme_example(args: str, output: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", *shlex.split(args)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == output


def test_example_mapping_is_valid() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aerostat.cli", "check-config", "examples/mapping.yml"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
