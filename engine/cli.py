"""The ``switchboard`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from engine.errors import SwitchboardError
from engine.hl7v2 import parse
from engine.hl7v2.ack import accept_ack, ack_modes, original_ack


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="Switchboard healthcare integration engine"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="parse, acknowledge and MLLP-frame the sample messages"
    )
    demo.add_argument("folder", nargs="?", type=Path, help="folder of .hl7 files")
    demo.set_defaults(run=_demo)

    hl7 = commands.add_parser("hl7", help="HL7 v2 tools").add_subparsers(
        required=True, metavar="TOOL"
    )
    get = hl7.add_parser("get", help="print the values at HL7 paths, e.g. PID-3 OBX[*]-5")
    get.add_argument("file", type=Path)
    get.add_argument("paths", nargs="+")
    get.set_defaults(run=_get)

    ack = hl7.add_parser("ack", help="print the acknowledgement Switchboard would send")
    ack.add_argument("file", type=Path)
    ack.set_defaults(run=_ack)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from engine.demo import run_demo

    return run_demo(args.folder)


def _get(args: argparse.Namespace) -> int:
    message = parse(args.file.read_bytes())
    for path in args.paths:
        values = message.get_all(path) if "*" in path else [message.get(path)]
        for value in values:
            print(f"{path}\t{'<absent>' if value is None else value}")
    return 0


def _ack(args: argparse.Namespace) -> int:
    message = parse(args.file.read_bytes())
    ack = accept_ack(message) if ack_modes(message).enhanced else original_ack(message)
    if ack is None:
        print("(MSH-15 asks for no accept acknowledgement)")
    else:
        print(ack.to_text().replace("\r", "\n"), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
