"""Descriptors of proto/tasker/v1 for gRPC server reflection.

betterproto2 does not register descriptors with protobuf, so the FileDescriptorSet (with
imports) is kept next to this module as JSON, generated with protoc:
``python -m tasker_gateway.grpc.reflection [--check]``. A test checks it is current.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

DESCRIPTORS = Path(__file__).with_name("descriptors.json")
PROTO_ROOT = Path(__file__).resolve().parents[4] / "proto"


def generate(proto_root: Path = PROTO_ROOT) -> str:
    """The descriptor set of tasker/v1 as JSON text (needs grpcio-tools: development only)."""
    from google.protobuf import descriptor_pb2, json_format  # type: ignore[import-untyped]

    files = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "tasker" / "v1").glob(
        "*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"--proto_path={proto_root}",
                        f"--descriptor_set_out={out}", "--include_imports", *files],
                       check=True, capture_output=True)
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    for file in fds.file:
        file.ClearField("source_code_info")
    text: str = json_format.MessageToJson(fds, indent=1, sort_keys=True)
    return text + "\n"


@cache
def descriptor_pool() -> Any:
    """A protobuf DescriptorPool holding tasker/v1 and its imports."""
    from google.protobuf import descriptor_pb2, json_format
    from google.protobuf import descriptor_pool as pools

    fds = json_format.Parse(DESCRIPTORS.read_text(encoding="utf-8"),
                            descriptor_pb2.FileDescriptorSet())
    pool = pools.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    return pool


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    fresh = generate()
    if args.check:
        current = DESCRIPTORS.read_text(encoding="utf-8") if DESCRIPTORS.exists() else ""
        if current != fresh:
            print(f"{DESCRIPTORS} is stale; run python -m tasker_gateway.grpc.reflection")
            return 1
        return 0
    DESCRIPTORS.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
