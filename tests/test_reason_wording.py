"""Issue 14, item 12: a person's words about a decision are its reason, in every place
a person gives one. ``tasks approve --note``, ``tasks reject --reason`` and
``exceptions resolve --note`` used different words for the same idea."""

from __future__ import annotations

import argparse

from admin.openapi import BODIES
from engine.cli import _parser


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*path, name))


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_every_command_that_takes_a_person_s_words_calls_them_reason():
    commands = {" ".join(path): _options(parser) for path, parser in _commands(_parser())}
    assert [name for name, options in commands.items() if "--note" in options] == []
    for name in ("tasks approve", "tasks reject", "exceptions resolve",
                 "rules approve", "rules reject", "rules rollback"):
        assert "--reason" in commands[name], name


def test_every_api_body_that_takes_a_person_s_words_calls_them_reason():
    assert [view for view, body in BODIES.items() if "note" in body["properties"]] == []
    for view in ("tasks_api.approve_task", "tasks_api.reject_task",
                 "exceptions_api.resolve_exception", "rules_api.approve",
                 "rules_api.reject"):
        assert "reason" in BODIES[view]["properties"], view
