"""The whole stack as files: a pure ``render_stack`` building
{relative path: text}, and ``write_stack`` putting them on disk. ``aerostat
stack render``, ``aerostat up``, docker-compose and the Helm chart all take
the same files."""

from __future__ import annotations

from pathlib import Path

from aerostat.errors import AerostatError
from aerostat.stack.configs import (
    alertmanager_example,
    grafana_dashboard_provider,
    grafana_datasource,
    prometheus_config,
)
from aerostat.stack.dashboards import DASHBOARDS
from aerostat.stack.grafana import render_dashboard
from aerostat.stack.options import StackOptions, check_options
from aerostat.stack.rule_tests import alerts_by_name, promtool_test_document, rule_test_files
from aerostat.stack.rules import rule_document, rule_files
from aerostat.stack.yamltext import dump_yaml

DASHBOARDS_DIR = "grafana/dashboards"
# every file in these directories is loaded by a glob (rules/*.yml, the
# provider's path), so a file left from an earlier rendering would be loaded
# too: write_stack removes what the new rendering no longer has
GLOBBED_DIRS = ("prometheus/rules", "prometheus/tests", DASHBOARDS_DIR)


def render_stack(options: StackOptions | None = None) -> dict[str, str]:
    """Every file of the stack by its path relative to the output directory.
    Raises AerostatError for an option that cannot work."""
    options = options or StackOptions()
    check_options(options)
    files = {"prometheus/prometheus.yml": prometheus_config(options)}
    rules = rule_files()
    for rule_file in rules:
        files[rule_file.path] = dump_yaml(rule_document(rule_file), header=(
            f"aerostat's {rule_file.group} rules. Their tests: ../tests/"))
    alerts = alerts_by_name(rules)
    for test_file in rule_test_files():
        files[test_file.path] = dump_yaml(promtool_test_document(test_file, alerts), header=(
            "promtool unit tests of the rules: promtool test rules "
            + Path(test_file.path).name))
    files["alertmanager/alertmanager.yml"] = alertmanager_example()
    files["grafana/provisioning/datasources/aerostat.yml"] = grafana_datasource(options)
    files["grafana/provisioning/dashboards/aerostat.yml"] = grafana_dashboard_provider(options)
    for name, build in DASHBOARDS.items():
        files[f"{DASHBOARDS_DIR}/{name}.json"] = render_dashboard(build(), options)
    return files


def write_stack(outdir: str | Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` under ``outdir``; returns the files removed because the
    rendering no longer has them (see GLOBBED_DIRS)."""
    root = Path(outdir)
    removed: list[Path] = []
    try:
        for relative, text in sorted(files.items()):
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for directory in GLOBBED_DIRS:
            for path in sorted((root / directory).glob("*")):
                if path.is_file() and path.relative_to(root).as_posix() not in files:
                    path.unlink()
                    removed.append(path)
    except OSError as error:
        raise AerostatError(f"cannot write: {error.strerror}",
                            source=str(error.filename or outdir)) from None
    return removed
