"""Generates the betterproto2 code for proto/tasker/v1, or checks the committed copies are current.

Usage: ``python -m tasker_shared.contracts.codegen [--check] [--target shared|client] [--out DIR]``.
There are two targets, both from the one contract: ``shared`` (stubs and service bases, the
``generated`` package next to this module) and ``client`` (stubs only, the ``proto`` package
of the light client distribution in clients/python). Without ``--target`` or ``--out`` both
are handled; ``--out DIR`` writes one target (default ``shared``) into ``DIR``. Without
``--check`` the code is (re)written. With ``--check`` it is generated into a scratch
directory and compared; the exit status is 1 and the differing files are listed when they
do not match. The ``shared`` target includes ``queue_schema.py`` (contracts/schemagen.py), the
queue payloads as data for the queue codecs.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tasker_shared.contracts import schemagen

PLUGIN_OPTIONS = "client_generation=async,server_generation=async"
CLIENT_PLUGIN_OPTIONS = "client_generation=async,server_generation=none"
REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_PACKAGE_DIR = PROTO_ROOT / "tasker" / "v1"
DEFAULT_OUT = Path(__file__).resolve().parent / "generated"
CLIENT_OUT = REPO_ROOT / "clients" / "python" / "tasker_client" / "proto"
# target name -> (committed package directory, plugin options)
TARGETS: dict[str, tuple[Path, str]] = {
    "shared": (DEFAULT_OUT, PLUGIN_OPTIONS),
    "client": (CLIENT_OUT, CLIENT_PLUGIN_OPTIONS),
}

_IGNORED_PARTS = frozenset({"__pycache__"})


class CodegenError(RuntimeError):
    """protoc or the betterproto2 plugin failed."""


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    """The .proto files of package tasker.v1, sorted so runs are reproducible."""
    return sorted((proto_root / "tasker" / "v1").glob("*.proto"))


def _plugin_env() -> dict[str, str]:
    # protoc finds protoc-gen-python_betterproto2 on PATH: put this interpreter's
    # bin directory (the virtualenv) first.
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def run_protoc(
    out_dir: Path, *, proto_root: Path = PROTO_ROOT, options: str = PLUGIN_OPTIONS
) -> None:
    """Run grpc_tools.protoc with the betterproto2 plugin, writing into `out_dir`."""
    files = proto_files(proto_root)
    if not files:
        raise CodegenError(f"no .proto files under {proto_root / 'tasker' / 'v1'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={proto_root}",
        f"--python_betterproto2_out={out_dir}",
        f"--python_betterproto2_opt={options}",
        *(str(f.relative_to(proto_root)) for f in files),
    ]
    proc = subprocess.run(
        cmd, cwd=proto_root, env=_plugin_env(), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise CodegenError(f"protoc failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")


def _tree(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not _IGNORED_PARTS.intersection(p.relative_to(root).parts)
    }


def diff_trees(expected: Path, actual: Path) -> list[str]:
    """Relative paths that are missing from, extra in, or different in `actual`."""
    want, have = _tree(expected), _tree(actual)
    problems = [f"missing: {p}" for p in sorted(want - have)]
    problems += [f"unexpected: {p}" for p in sorted(have - want)]
    problems += [
        f"differs: {p}"
        for p in sorted(want & have)
        if not filecmp.cmp(expected / p, actual / p, shallow=False)
    ]
    return problems


def _replace_tree(source: Path, target: Path) -> None:
    # Remove files the new generation no longer produces, then copy everything over.
    for rel in sorted(_tree(target) - _tree(source)):
        (target / rel).unlink()
    for rel in sorted(_tree(source)):
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, dest)


def generate(
    out_dir: Path = DEFAULT_OUT, *, proto_root: Path = PROTO_ROOT, options: str = PLUGIN_OPTIONS
) -> None:
    """Regenerate the code into `out_dir`, removing files that are no longer produced."""
    with tempfile.TemporaryDirectory(prefix="tasker-codegen-") as scratch:
        fresh = Path(scratch) / "out"
        run_protoc(fresh, proto_root=proto_root, options=options)
        _replace_tree(fresh, out_dir)


def check(
    out_dir: Path = DEFAULT_OUT,
    *,
    proto_root: Path = PROTO_ROOT,
    scratch: Path | None = None,
    options: str = PLUGIN_OPTIONS,
) -> list[str]:
    """Generate into `scratch` (a temporary directory by default) and diff against `out_dir`."""
    if scratch is not None:
        fresh = scratch / "codegen-check"
        if fresh.exists():
            shutil.rmtree(fresh)
        run_protoc(fresh, proto_root=proto_root, options=options)
        return diff_trees(fresh, out_dir)
    with tempfile.TemporaryDirectory(prefix="tasker-codegen-") as tmp:
        return check(out_dir, proto_root=proto_root, scratch=Path(tmp), options=options)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tasker_shared.contracts.codegen",
        description="Generate betterproto2 code for proto/tasker/v1.",
    )
    parser.add_argument(
        "--check", action="store_true", help="fail if the generated code is out of date"
    )
    parser.add_argument("--target", choices=sorted(TARGETS), help="one target (default: all)")
    parser.add_argument("--out", type=Path, help="output package directory (one target)")
    parser.add_argument("--proto-root", type=Path, default=PROTO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.out is not None:
        jobs = [(args.out, TARGETS[args.target or "shared"][1])]
    else:
        names = [args.target] if args.target else sorted(TARGETS)
        jobs = [TARGETS[name] for name in names]
    try:
        status = max(_run(out, options, args.check, args.proto_root) for out, options in jobs)
        if args.out is None and args.target in (None, "shared"):
            status = max(status, _run_schema(args.check, args.proto_root))
        return status
    except (CodegenError, schemagen.SchemaGenError) as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _run(out: Path, options: str, check_only: bool, proto_root: Path) -> int:
    if check_only:
        problems = check(out, proto_root=proto_root, options=options)
        if problems:
            print(f"generated code in {out} is stale:", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            print("run: python -m tasker_shared.contracts.codegen", file=sys.stderr)
            return 1
        print(f"generated code in {out} is up to date")
        return 0
    generate(out, proto_root=proto_root, options=options)
    print(f"generated {len(proto_files(proto_root))} proto files into {out}")
    return 0


def _run_schema(check_only: bool, proto_root: Path) -> int:
    target = schemagen.SCHEMA_MODULE
    if not check_only:
        schemagen.write(proto_root, target)
        print(f"generated {target}")
        return 0
    if schemagen.stale(proto_root, target):
        print(f"{target} is stale\nrun: python -m tasker_shared.contracts.codegen", file=sys.stderr)
        return 1
    print(f"{target} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
