"""The Helm engine the chart tests install (client-side only) and lint with.

A ``helm`` binary on the PATH wins; otherwise Helm's own Go code through the
helm-python-sdk package (a ctypes binding of the Helm v4 SDK, the ``[dev]``
extras), so the tests need neither a cluster nor a download at run time."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

CHARTS = Path(__file__).parents[2] / "charts"
EXAMPLES = CHARTS / "examples" / "multi-deployment"


def example(name: str) -> dict[str, Any]:
    """The values of one file of the multi-deployment example."""
    values: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    return values


class ChartError(Exception):
    """Helm refused the values or a template failed: what a user would see."""


@dataclass(frozen=True)
class Release:
    """What `helm install` would send to the cluster, and the notes it prints."""

    manifests: list[dict[str, Any]]
    notes: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [manifest for manifest in self.manifests if manifest["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [
            manifest
            for manifest in self.of_kind(kind)
            if name is None or manifest["metadata"]["name"] == name
        ]
        assert len(found) == 1, f"{len(found)} {kind} named {name!r} rendered"
        return found[0]


class Engine(Protocol):
    name: str

    def install(
        self, chart: str, values: dict[str, Any], *, release: str, namespace: str
    ) -> Release: ...

    def lint(self, chart: str, values: dict[str, Any]) -> list[str]:
        """Findings of ``helm lint --strict``: warnings and errors."""
        ...


def _documents(texts: Iterator[str]) -> list[dict[str, Any]]:
    return [
        document
        for text in texts
        for document in yaml.safe_load_all(text)
        if document  # a template that renders nothing, or only comments
    ]


class HelmBinary:
    """The ``helm`` command (Helm 3.13 or newer: ``--dry-run=client``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        version = subprocess.run(
            [path, "version", "--short"], capture_output=True, text=True, check=True
        )
        self.name = f"helm binary {version.stdout.strip()}"

    def _run(self, args: list[str], values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
            yaml.safe_dump(values, values_file)
            values_file.flush()
            return subprocess.run(
                [self.path, *args, "--values", values_file.name],
                capture_output=True, text=True, timeout=60, check=False,
            )

    def install(
        self, chart: str, values: dict[str, Any], *, release: str, namespace: str
    ) -> Release:
        done = self._run(
            ["install", release, str(CHARTS / chart), "--namespace", namespace,
             "--dry-run=client", "--output", "json"],
            values,
        )
        if done.returncode != 0:
            raise ChartError(done.stderr)
        installed = json.loads(done.stdout)
        return Release(
            manifests=_documents(iter([installed.get("manifest", "")])),
            notes=installed.get("info", {}).get("notes", ""),
        )

    def lint(self, chart: str, values: dict[str, Any]) -> list[str]:
        done = self._run(["lint", "--strict", str(CHARTS / chart)], values)
        findings = [
            line.strip()
            for line in (done.stdout + done.stderr).splitlines()
            if line.lstrip().startswith(("[WARNING]", "[ERROR]"))
        ]
        if done.returncode != 0 and not findings:
            findings = [done.stdout + done.stderr]
        return findings


class HelmLibrary:
    """Helm's Go SDK through helm-python-sdk."""

    WARNING = 2  # the SDK's severities: 1 info, 2 warning, 3 error

    def __init__(self) -> None:
        import helm_python

        self.helm = helm_python
        self.name = (
            f"helm-python-sdk {helm_python.__version__} (Helm SDK {helm_python.helm_sdk_version()})"
        )

    def install(
        self, chart: str, values: dict[str, Any], *, release: str, namespace: str
    ) -> Release:
        with self.helm.Chart.load(CHARTS / chart) as loaded:
            try:
                # as `helm install` does: the values are checked against the
                # chart's values.schema.json first
                rendered = loaded.render(values, name=release, namespace=namespace,
                                         is_install=True)
            except self.helm.HelmError as refused:
                raise ChartError(str(refused)) from None
        notes = "".join(text for path, text in rendered.items() if path.endswith("/NOTES.txt"))
        templates = (
            text for path, text in sorted(rendered.items()) if path.endswith((".yaml", ".yml"))
        )
        return Release(manifests=_documents(templates), notes=notes)

    def lint(self, chart: str, values: dict[str, Any]) -> list[str]:
        report = self.helm.lint(CHARTS / chart, values, strict=True)
        findings = [
            f"{message['path']}: {message['error']}"
            for message in report["messages"]
            if message["severity"] >= self.WARNING
        ]
        return findings + list(report.get("errors") or [])


def find_engine() -> Engine:
    path = shutil.which("helm")
    return HelmBinary(path) if path else HelmLibrary()
