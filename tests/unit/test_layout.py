"""The layout, checked rather than hoped for: the imports of src/aerostat
follow the data (sources → parse → map → store → expose), stages share
only the vocabulary at the top of the package, and the core never imports
the Airflow knowledge or the stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "aerostat"

# modules every part may import: the words the stages share
SHARED = {"aerostat", "events", "names", "errors", "logs", "addresses", "framing", "counters",
          # the located YAML reader, for every file a user writes (mapping, web config)
          "mapper.yamlnodes",
          # TLS and basic auth (--web.config.file), and the bounded threaded
          # listener that applies them, for every HTTP listener
          "webconfig", "listener"}
STAGES = {"wire", "parse", "mapper", "store"}

# what each part may import besides SHARED and itself
ALLOWED: dict[str, set[str]] = {
    "wire": set(),
    # the OTLP receiver: a source like wire's sockets, with its own decoder
    "otlp": set(),
    "parse": set(),
    "mapper": set(),
    "store": set(),
    "expose": {"store"},
    "frontend": {"mapper", "store"},  # the seam a kind of sender (Airflow) plugs into
    "pipeline": {"parse", "mapper", "store", "frontend"},
    "options": {"parse", "mapper", "frontend", "pipeline"},  # the flags of serve
    "server": {"wire", "otlp", "parse", "mapper", "store", "expose", "frontend", "pipeline",
               "options"},
    "offline": {"parse", "mapper", "store", "expose", "frontend", "pipeline"},
    # the REST-API source feeds the pipeline through frontend.TopUp, nothing more
    "airflow": {"mapper", "frontend"},
    "stack": set(),
    # the entry points wire everything together
    "cli": {"wire", "parse", "mapper", "store", "expose", "frontend", "pipeline", "server",
            "offline", "airflow", "stack", "stack.up", "options"},
    # stack.history: the demo's past hour, through the exporter's own
    # pipeline and exposition, for promtool
    "stack.up": {"server", "offline", "airflow", "stack", "frontend", "options", "pipeline",
                 "expose"},
}


def part_of(module: str) -> str:
    """aerostat.mapper.config → mapper; aerostat.stack.up (and the demo's
    history it writes, stack.history) → stack.up."""
    parts = module.split(".")
    if parts[0] != "aerostat":
        raise ValueError(module)
    if len(parts) == 1:
        return "aerostat"
    if parts[1:3] in (["stack", "up"], ["stack", "history"]):
        return "stack.up"
    if parts[1:3] == ["mapper", "yamlnodes"]:
        return "mapper.yamlnodes"
    return parts[1]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    relative = path.relative_to(package.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, package: Path = PACKAGE) -> set[str]:
    """Every aerostat module the file imports, at any depth (lazy imports in
    functions included: they are arrows too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("aerostat"))
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and node.module.startswith("aerostat")):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if (package.parent / node.module.replace(".", "/")
                             / f"{alias.name}.py").exists())
    return found


def wrong_arrows(package: Path = PACKAGE) -> list[str]:
    wrong = []
    for path in sorted(package.rglob("*.py")):
        name = module_name(path, package)
        here = part_of(name)
        for imported in sorted(imports_of(path, package)):
            there = part_of(imported)
            if there in SHARED or there == here:
                continue
            if here in SHARED:
                wrong.append(f"{name} (shared) imports {imported}")
            elif there not in ALLOWED.get(here, set()):
                wrong.append(f"{name} ({here}) imports {imported} ({there})")
    return wrong


def test_every_import_runs_with_the_data() -> None:
    assert wrong_arrows() == []


def test_every_part_is_known() -> None:
    parts = {part_of(module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert parts <= SHARED | set(ALLOWED), parts - SHARED - set(ALLOWED)


@pytest.mark.parametrize(
    ("file", "line", "complaint"),
    [
        ("store/series.py", "from aerostat.pipeline import Pipeline", "store/series"),
        ("parse/line.py", "from aerostat.mapper import Mapper", "parse"),
        ("pipeline.py", "from aerostat.airflow import airflow_built_in", "pipeline"),
        ("events.py", "from aerostat.store import Store", "shared"),
    ],
    ids=["store-imports-pipeline", "stage-imports-stage", "core-imports-airflow",
         "shared-imports-stage"],
)
def test_a_reversed_arrow_is_caught(tmp_path: Path, file: str, line: str,
                                    complaint: str) -> None:
    """The check itself can fail: a copy of the package with one arrow
    turned against the data flow."""
    copy = tmp_path / "aerostat"
    for path in PACKAGE.rglob("*.py"):
        target = copy / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (copy / file).write_text((copy / file).read_text() + f"\n{line}\n")
    assert any(line.split(" import ")[0].removeprefix("from ") in arrow
               for arrow in wrong_arrows(copy))
