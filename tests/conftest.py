import sys
from pathlib import Path

# the tests import their helpers (tests/bridge.py) by module name
sys.path.insert(0, str(Path(__file__).parent))
