"""The ``tan`` command: one entry point, one sub-command per stage.

Each area of the kit registers its own sub-commands through a ``register(subparsers)``
function, so that this file stays a thin dispatcher. User errors (``TANError``) are
printed as one message with the error class's exit code, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import TANError

# modules exposing register(subparsers); each adds its sub-commands
_COMMAND_MODULES = [
    "tanlib.data.cli",
    "tanlib.engine.cli",
    "tanlib.engine.pretrain",
    "tanlib.inference.cli",
    "tanlib.pipeline",
    "tanlib.pipeline.verdict",
    "tanlib.report.records",
    "tanlib.bench_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tan", description="TAN reproducibility kit (Triplet-Loss Attention Network for FER)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an area not built (yet) in this checkout
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TANError as exc:
        print(f"tan: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
