"""The ``switchboard`` command's top-level commands, as data: the linter checks that a
recovery procedure names only these, without importing the command line. A test keeps
this list and the parser the same."""

from __future__ import annotations

from typing import Final

COMMANDS: Final = frozenset({
    "audit", "convert", "db", "demo", "engine", "exceptions", "hl7", "messages", "route",
    "rules", "send", "serve", "status", "tasks", "users", "web",
})
