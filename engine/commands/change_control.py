"""``switchboard rules history|show|draft|import|export|submit|approve|reject|publish|
rollback|diff|gates|preview|override``: change control from the command line, acting
through the REST API with the caller's token (engine.commands.api_client), so the
server's role, four-eyes and state checks apply exactly as for any other client.

Exit codes: 0 done, 1 refused by the server or a failed check, 2 usage error."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from engine.commands.api_client import ApiClient, ApiError
from engine.commands.store_ids import store_id, version_number
from engine.rules.export import import_content, write_export
from engine.rules.version_diff import diff_contents, render_diff

OK, REFUSED = 0, 1
VERSIONS = "/api/rule-sets/versions"
POLL_SECONDS = 0.5


def add_change_commands(tools: Any) -> None:
    """Add the change-control tools to the ``rules`` command's subparsers."""
    def tool(name: str, text: str, handler: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = tools.add_parser(name, help=text)
        parser.add_argument("--url", help="Switchboard's web address (default: "
                            "$SWITCHBOARD_URL, else http://127.0.0.1:8080)")
        parser.add_argument("--token-file", type=Path, metavar="FILE",
                            help="file holding your API token (default: $SWITCHBOARD_TOKEN)")
        parser.add_argument("--json", action="store_true", help="print the server's JSON")
        parser.set_defaults(run=_runner(handler))
        return parser

    tool("history", "list rule-set versions, newest first", _history).add_argument(
        "--status", help="only versions in this state")
    tool("show", "one version's metadata", _show).add_argument("version", type=version_number)
    draft = tool("draft", "start a draft from a version (default: the published one)", _draft)
    draft.add_argument("--parent", type=version_number)
    draft.add_argument("--summary", required=True, help="what the change is for")
    imported = tool("import", "create a draft from rules/ and catalog/ files", _import)
    imported.add_argument("dir", type=Path)
    imported.add_argument("--summary", required=True, help="what the change is for")
    imported.add_argument("--parent", type=version_number, help="the version it changes (default: "
                          "the published one; a rejected version for its fix)")
    exported = tool("export", "write a version's rules/ and catalog/ files", _export)
    exported.add_argument("dir", type=Path)
    exported.add_argument("--version", type=version_number, help="default: the published version")
    exported.add_argument("--replace", action="store_true",
                          help="replace an earlier export in DIR")
    for name, text in (("submit", "send a draft for review"),
                       ("publish", "publish an approved version (approver, admin)"),
                       ("gates", "check a version's gates")):
        tool(name, text, _action(name)).add_argument("version", type=version_number)
    approve = tool("approve", "approve a version in review (another approver)", _approve)
    approve.add_argument("version", type=version_number)
    approve.add_argument("--reason", help="why it may go live (optional)")
    for name, handler in (("reject", _reject), ("rollback", _rollback)):
        command = tool(name, f"{name} with a reason", handler)
        command.add_argument("version", type=version_number)
        command.add_argument("--reason", required=True)
    diff = tool("diff", "what changed between two versions", _diff)
    diff.add_argument("before", type=version_number)
    diff.add_argument("after", type=version_number)
    preview = tool("preview", "replay recent traffic through a version", _preview)
    preview.add_argument("version", type=version_number)
    preview.add_argument("--limit", type=int, help="messages to replay (default 1,000)")
    preview.add_argument("--since", help="ISO 8601 time with an offset")
    preview.add_argument("--until", help="ISO 8601 time with an offset")
    preview.add_argument("--source", help="only messages from this source connection")
    preview.add_argument("--no-wait", action="store_true", help="print the id and return")
    override = tool("override", "let an empty impact preview count (approver)", _override)
    override.add_argument("preview", type=store_id)
    override.add_argument("--reason", required=True)


def _runner(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        client = ApiClient.configured(args.url, args.token_file)
        try:
            result: int = handler(client, args, sys.stdout)
            return result
        except ApiError as error:
            print(f"switchboard: {error}", file=sys.stderr)
            _print_gates([g for g in error.body.get("gates", []) if not g["passed"]],
                         sys.stderr)
            return REFUSED if error.status else 2

    return run


def _history(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    query = f"?status={args.status}&per_page=200" if args.status else "?per_page=200"
    page = client.get(VERSIONS + query)
    if args.json:
        return _print_json(page, out)
    for item in page["items"]:
        print(_line(item), file=out)
    return OK


def _show(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    return _print_json(client.get(f"{VERSIONS}/{args.version}"), out)


def _draft(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {"summary": args.summary}
    if args.parent is not None:
        body["parent"] = args.parent
    return _done(client.post(VERSIONS, body), args, out)


def _import(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {"summary": args.summary, "content": import_content(args.dir)}
    if args.parent is not None:
        body["parent"] = args.parent
    return _done(client.post(VERSIONS, body), args, out)


def _export(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    version = args.version if args.version is not None else _published(client)
    written = write_export(client.get(f"{VERSIONS}/{version}/content"), args.dir,
                           replace=args.replace)
    print(f"version {version}: {len(written)} files written to {args.dir}", file=out)
    return OK


def _action(name: str) -> Any:
    def act(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
        if name == "gates":
            result = client.get(f"{VERSIONS}/{args.version}/gates")
            if args.json:
                _print_json(result, out)
            else:
                _print_gates(result["gates"], out)
            return OK if result["passed"] else REFUSED
        return _done(client.post(f"{VERSIONS}/{args.version}/{name}"), args, out)

    return act


def _approve(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    body = {"reason": args.reason} if args.reason else {}
    return _done(client.post(f"{VERSIONS}/{args.version}/approve", body), args, out)


def _reject(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    return _done(client.post(f"{VERSIONS}/{args.version}/reject", {"reason": args.reason}),
                 args, out)


def _rollback(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    return _done(client.post("/api/rule-sets/rollback",
                             {"version": args.version, "reason": args.reason}), args, out)


def _diff(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    before = client.get(f"{VERSIONS}/{args.before}/content")
    after = client.get(f"{VERSIONS}/{args.after}/content")
    changes = diff_contents(before, after)
    if args.json:
        return _print_json({"from": args.before, "to": args.after,
                            "changes": changes.as_dict()}, out)
    print(render_diff(changes) or "no differences", file=out)
    return OK


def _preview(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    selection = {name: getattr(args, name) for name in ("limit", "since", "until", "source")
                 if getattr(args, name) is not None}
    state = client.post(f"{VERSIONS}/{args.version}/previews", selection)
    while not args.no_wait and state["status"] in ("queued", "running"):
        time.sleep(POLL_SECONDS)
        state = client.get(f"/api/rule-sets/previews/{state['id']}")
    if args.json or args.no_wait:
        return _print_json(state, out)
    print(f"impact preview {state['id']}: {state['status']}", file=out)
    print(json.dumps(state.get("summary"), indent=2, sort_keys=True), file=out)
    return OK if state["status"] == "done" else REFUSED


def _override(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    return _print_json(client.post(f"/api/rule-sets/previews/{args.preview}/override",
                                   {"reason": args.reason}), out)


def _published(client: ApiClient) -> int:
    page = client.get(f"{VERSIONS}?status=published")
    if not page["items"]:
        raise ApiError(0, "no published version", hint="Name one with --version")
    return int(page["items"][0]["version"])


def _done(version: dict[str, Any], args: argparse.Namespace, out: TextIO) -> int:
    if args.json:
        return _print_json(version, out)
    print(_line(version), file=out)
    return OK


def _line(item: dict[str, Any]) -> str:
    return (f"v{item['version']}  {item['status']:<10}  {item['author']:<12}  "
            f"{item['content_hash'][:12]}  {item.get('summary') or ''}")


def _print_gates(gates: list[dict[str, Any]], out: TextIO) -> None:
    for gate in gates:
        print(f"{'PASS' if gate['passed'] else 'FAIL'} {gate['gate']}", file=out)
        for finding in gate["findings"]:
            print(f"    {finding}", file=out)


def _print_json(value: Any, out: TextIO) -> int:
    print(json.dumps(value, indent=2, sort_keys=True), file=out)
    return OK
