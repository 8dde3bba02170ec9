import sys
from pathlib import Path

# the tests import their helpers (tests/bridge.py) by module name
sys.path.insert(0, str(Path(__file__).parent))


import pytest

# where a test lives says how heavy it is: the fast loop (unit, conformance,
# fuzz) is `./run tests -m "not e2e and not slow"`
_MARKS = {"e2e": "e2e", "integration": "slow", "stack": "slow", "charts": "slow"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts
        mark = _MARKS.get(parts[0]) if len(parts) > 1 else None
        if mark is not None:
            item.add_marker(getattr(pytest.mark, mark))
