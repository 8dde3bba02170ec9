"""The Dockerfile's promises, read from the file itself: no Docker engine runs
where the tests run, so the image is not built here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # 0 for the first FROM, counting up


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    found: list[Instruction] = []
    stage = -1
    for line in joined:
        keyword, _, arguments = line.strip().partition(" ")
        stage += keyword.upper() == "FROM"
        found.append(Instruction(keyword.upper(), arguments.strip(), stage))
    return found


DOCKERFILE = instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
FINAL_STAGE = max(instruction.stage for instruction in DOCKERFILE)


def final(keyword: str) -> list[str]:
    return [
        instruction.arguments
        for instruction in DOCKERFILE
        if instruction.keyword == keyword and instruction.stage == FINAL_STAGE
    ]


def test_every_stage_is_slim_python_311_or_newer() -> None:
    default_version = {
        name: value
        for name, _, value in (
            instruction.arguments.partition("=")
            for instruction in DOCKERFILE
            if instruction.keyword == "ARG"
        )
    }
    bases = [i.arguments.split()[0] for i in DOCKERFILE if i.keyword == "FROM"]
    assert len(bases) >= 1
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda ref: default_version[ref.group(1)], base)
        found = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", image)
        assert found, image
        assert int(found.group(1)) >= 11


def test_runs_as_a_numeric_non_root_user() -> None:
    users = final("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    # numeric, so Kubernetes' runAsNonRoot can check it without a runAsUser
    assert user.isdigit() and int(user) != 0
    # nothing after USER runs as root again
    last_user = max(i for i, instruction in enumerate(DOCKERFILE) if instruction.keyword == "USER")
    assert not [i for i in DOCKERFILE[last_user:] if i.keyword == "RUN"]


def test_exposes_statsd_over_udp_and_tcp_and_the_metrics_port() -> None:
    exposed = {port for arguments in final("EXPOSE") for port in arguments.split()}
    assert exposed == {"9125/udp", "9125/tcp", "9102/tcp", "4318/tcp"}


def test_healthcheck_asks_the_healthy_endpoint_with_python() -> None:
    (healthcheck,) = final("HEALTHCHECK")
    command = json.loads(healthcheck.partition("CMD")[2])
    assert command[0] == "python"
    assert "urllib.request" in command[-1]
    assert "http://127.0.0.1:9102/-/healthy" in command[-1]
    assert "curl" not in healthcheck and "wget" not in healthcheck  # not in slim images


def test_installs_the_runtime_dependencies_only() -> None:
    runs = " ".join(i.arguments for i in DOCKERFILE if i.keyword == "RUN")
    assert "pip wheel" in runs and "pip install" in runs
    assert "[dev]" not in runs and ".[" not in runs


def test_starts_aerostat_serve_with_the_airflow_mapping() -> None:
    assert [json.loads(arguments) for arguments in final("ENTRYPOINT")] == [["aerostat"]]
    assert [json.loads(arguments) for arguments in final("CMD")] == [["serve", "--airflow"]]


def test_dockerignore_lets_in_exactly_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    # an allow-list: everything out, then the build's inputs back in
    assert lines[0] == "*"
    allowed = {line[1:] for line in lines if line.startswith("!")}
    copied = {
        source
        for instruction in DOCKERFILE
        if instruction.keyword == "COPY" and "--from" not in instruction.arguments
        for source in instruction.arguments.split()[:-1]
    }
    assert copied == allowed
    # what pyproject.toml itself needs to build the package
    assert {"pyproject.toml", "README.md", "LICENSE", "src"} <= allowed
