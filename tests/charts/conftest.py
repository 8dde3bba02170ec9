"""The Helm engine every chart test renders with, found once."""

from __future__ import annotations

import pytest

from charts.helm_engine import Engine, find_engine


@pytest.fixture(scope="session")
def helm() -> Engine:
    return find_engine()
