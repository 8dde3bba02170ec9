"""One rendering of the stack with default options, shared by the tests,
and written once to disk for the tools that read files (promtool, tsc)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerostat.stack import render_stack, write_stack


@pytest.fixture(scope="session")
def files() -> dict[str, str]:
    return render_stack()


@pytest.fixture(scope="session")
def rendered(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stack")
    write_stack(root, files)
    return root
