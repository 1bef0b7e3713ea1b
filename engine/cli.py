"""The ``switchboard`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.commands.audit import add_audit_commands
from engine.commands.change_control import add_change_commands
from engine.commands.queue_args import add_queue_commands
from engine.errors import SwitchboardError
from engine.hl7v2 import parse
from engine.hl7v2.ack import accept_ack, ack_modes, original_ack
from engine.security.roles import Role


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.run(args)
        return result
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (head, less) went away: nothing left to say to it.
        return 0
    except OSError as exc:
        print(f"switchboard: {exc.strerror}: {exc.filename}", file=sys.stderr)
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
    _add_rule_commands(commands)
    database = commands.add_parser("db", help="the store").add_subparsers(
        required=True, metavar="TOOL"
    )
    migrate = database.add_parser("upgrade", help="create or upgrade the store's tables")
    migrate.add_argument("--database", metavar="URL", help="database URL (default: "
                         "$SWITCHBOARD_DATABASE_URL, else SQLite in ./instance)")
    migrate.set_defaults(run=_db_upgrade)
    _add_service_commands(commands)
    return parser


def _add_service_commands(commands: Any) -> None:
    for name, text in (("serve", "engine and web in one process (the embedded default)"),
                       ("engine", "MLLP listeners and pipeline workers"),
                       ("web", "REST API, HTTP ingest, health and metrics")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--config", type=Path, default=Path("."), metavar="DIR",
                             help="configuration root imported on the first start")
        command.add_argument("--database", metavar="URL", help="default: "
                             "$SWITCHBOARD_DATABASE_URL, else SQLite in ./instance")
        command.add_argument("--host", default="127.0.0.1", help="address for web and health")
        command.add_argument("--port", type=int, default=8080, help="web port (serve, web)")
        command.add_argument("--health-port", type=int, metavar="PORT",
                             default=os.environ.get("SWITCHBOARD_HEALTH_PORT") or None,
                             help="/healthz, /readyz and /metrics on this port of their own, "
                                  "and not on the web port (default: "
                                  "$SWITCHBOARD_HEALTH_PORT; unset, serve and web answer "
                                  "them on the web port and engine on 8081)")
        command.add_argument("--health-host", metavar="ADDRESS",
                             default=os.environ.get("SWITCHBOARD_HEALTH_HOST"),
                             help="address for the health port (default: "
                                  "$SWITCHBOARD_HEALTH_HOST, else --host)")
        command.add_argument("--mllp-port", type=int, metavar="PORT",
                             help="MLLP listener port instead of the catalog's (several "
                                  "engines on one host, behind a TCP load balancer)")
        command.add_argument("--pipeline-workers", type=int, default=2, metavar="N",
                             help="pipeline worker processes (0: a thread in this process)")
        command.add_argument("--delivery-workers", type=int, default=4, metavar="N",
                             help="chains of deliveries sent at once, each to one destination "
                                  "for one patient, in order (engine, serve); 0 delivers "
                                  "nothing")
        command.add_argument("--delivery-batch", type=int, default=100, metavar="N",
                             help="deliveries one worker claims at a time")
        command.add_argument("--delivery-lease", type=float, default=120.0, metavar="SECONDS",
                             help="how long a claimed delivery waits for its outcome before "
                                  "another worker may send it again (PostgreSQL)")
        command.add_argument("--stall-after", type=float, default=60.0, metavar="SECONDS",
                             help="a pipeline or delivery worker silent this long while work "
                                  "waits makes /readyz answer 503")
        command.set_defaults(run=_service, part=name)
    send = commands.add_parser("send", help="send HL7 files over MLLP and print each ACK code")
    send.add_argument("target", metavar="HOST:PORT")
    send.add_argument("files", nargs="+", metavar="FILE")
    send.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for an ACK")
    send.set_defaults(run=_send)
    users = commands.add_parser("users", help="users and their API tokens")
    users.add_argument("action", choices=["add", "list", "role", "disable", "enable",
                                          "passwd", "reset-second-factor"])
    users.add_argument("name", nargs="?")
    users.add_argument("--role", choices=[role.value for role in Role])
    users.add_argument("--password", action="store_true",
                       help="with add: also set a console password (asked for, or read "
                            "from standard input when it is not a terminal)")
    users.add_argument("--display-name", metavar="TEXT",
                       help='with add: how people know them, e.g. "Nina Patel, RN" '
                            "(shown instead of the login name)")
    users.add_argument("--database", metavar="URL")
    users.set_defaults(run=_users)
    add_queue_commands(commands)
    add_audit_commands(commands)


def _database_url(args: argparse.Namespace) -> str:
    from engine.store.database import default_url

    return str(args.database or os.environ.get("SWITCHBOARD_DATABASE_URL")
               or default_url())


def _service(args: argparse.Namespace) -> int:
    import asyncio

    from engine.log_format import configure_logging
    from engine.malloc_arenas import bound_malloc_arenas
    from engine.service import Settings, run

    bound_malloc_arenas()  # before the service starts its threads
    configure_logging()
    settings = Settings(_database_url(args), args.config.resolve(), args.host, args.port,
                        args.health_port, args.health_host,
                        pipeline_workers=max(0, args.pipeline_workers),
                        delivery_workers=max(0, args.delivery_workers),
                        delivery_lease=args.delivery_lease,
                        delivery_batch=max(1, args.delivery_batch),
                        mllp_port_override=args.mllp_port,
                        stall_after=args.stall_after)
    asyncio.run(run(settings, engine_part=args.part in ("serve", "engine"),
                    web_part=args.part in ("serve", "web")))
    return 0


def _send(args: argparse.Namespace) -> int:
    from engine.commands.send import send_command

    return send_command(args.target, args.files, args.timeout)


def _users(args: argparse.Namespace) -> int:
    from engine.commands.users import users_command

    return users_command(args.action, args.name, args.role, _database_url(args),
                         with_password=args.password, display_name=args.display_name)


def _db_upgrade(args: argparse.Namespace) -> int:
    from engine.store.database import open_engine
    from engine.store.migrate import upgrade

    engine = open_engine(_database_url(args))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print(f"store at {engine.url.render_as_string(hide_password=True)} is up to date")
    return 0


def _add_rule_commands(commands: Any) -> None:
    rules = commands.add_parser("rules", help="lint and test a rule configuration; "
                                "change control of rule-set versions")
    tools = rules.add_subparsers(required=True, metavar="TOOL")
    for name, handler, text in (
        ("lint", _lint, "check schemas, destinations, scopes, regexes and rows"),
        ("test", _test, "run the rule tests in rules/tests"),
    ):
        tool = tools.add_parser(name, help=text)
        tool.add_argument("dir", nargs="?", type=Path, default=Path("."),
                          help="configuration root holding rules/ and catalog/ (default: .)")
        tool.set_defaults(run=handler)
    add_change_commands(tools)
    convert = commands.add_parser(
        "convert", help="print the canonical record, or the FHIR R4 Bundle, of each message")
    convert.add_argument("--to", choices=["canonical", "fhir"], default="canonical",
                         help="canonical (the default) or fhir: a transaction Bundle")
    convert.add_argument("files", nargs="+", metavar="FILE", help="HL7 v2 files; - reads stdin")
    convert.add_argument("--config", type=Path, default=Path("."), metavar="DIR")
    convert.set_defaults(run=_convert)
    route = commands.add_parser("route", help="show where each message goes, and why")
    route.add_argument("files", nargs="+", metavar="FILE", help="HL7 v2 files; - reads stdin")
    route.add_argument("--config", type=Path, default=Path("."), metavar="DIR")
    route.add_argument("--json", action="store_true", help="one JSON object per message")
    route.set_defaults(run=_route)


def _lint(args: argparse.Namespace) -> int:
    from engine.commands import rules

    return rules.lint_command(args.dir)


def _test(args: argparse.Namespace) -> int:
    from engine.commands import rules

    return rules.test_command(args.dir)


def _convert(args: argparse.Namespace) -> int:
    from engine.commands import rules

    return rules.convert_command(args.files, args.config, to=args.to)


def _route(args: argparse.Namespace) -> int:
    from engine.commands import rules

    return rules.route_command(args.files, args.config, args.json)


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
