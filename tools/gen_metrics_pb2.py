"""Generates src/aerostat/expose/proto/metrics_pb2.py (and its .pyi) from
metrics.proto beside it, with grpcio-tools' protoc (a dev dependency).

The generated module is shipped rather than compiled at install time: no
released Python package carries Prometheus's metrics.proto with its
native-histogram fields (prometheus-client-model on PyPI is from 2013,
prometheus-metrics-proto from 2020, both before them), and a protoc at
install time would make every user install grpcio-tools. The runtime needs
only ``protobuf``. tests/unit/expose/test_protobuf.py regenerates into a
temporary folder and fails when the shipped files differ.

    .venv/bin/python tools/gen_metrics_pb2.py
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PROTO = "aerostat/expose/proto/metrics.proto"


def generate(out: Path) -> list[Path]:
    """Writes metrics_pb2.py and metrics_pb2.pyi under ``out`` (as
    aerostat/expose/proto/...); returns their paths."""
    from grpc_tools import protoc

    include = str(resources.files("grpc_tools") / "_proto")
    code = protoc.main(["protoc", f"--proto_path={SRC}", f"--proto_path={include}",
                        f"--python_out={out}", f"--pyi_out={out}", str(SRC / PROTO)])
    if code != 0:
        raise RuntimeError(f"protoc failed on {PROTO} with exit code {code}")
    stem = out / PROTO.removesuffix(".proto")
    code_path = stem.with_name(stem.name + "_pb2.py")
    stub_path = stem.with_name(stem.name + "_pb2.pyi")
    # generated code follows neither the project's ruff rules nor, in the
    # stub, mypy --strict (bare Mapping)
    code_path.write_text("# ruff: noqa\n" + code_path.read_text())
    stub_path.write_text("# ruff: noqa\n# mypy: ignore-errors\n" + stub_path.read_text())
    return [code_path, stub_path]


if __name__ == "__main__":
    for path in generate(SRC):
        print(path.relative_to(SRC.parent))
    sys.exit(0)
