"""Every HTTP error answer a test catches is closed where it is caught. An unclosed
``HTTPError`` keeps its socket open until the garbage collector finds it, and the
resulting ResourceWarning (an error here) fails whichever test happens to be running
then: a failure that moves from run to run and names the wrong test."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _closes(body: list[ast.stmt], name: str) -> bool:
    """Whether ``body`` starts by closing ``name``: ``with name:`` or ``name.close()``
    (``name.value.close()`` for a ``pytest.raises`` result)."""
    for statement in body:
        if isinstance(statement, ast.With) and any(
                isinstance(item.context_expr, ast.Name) and item.context_expr.id == name
                for item in statement.items):
            return True
        for node in ast.walk(statement):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "close"
                    and name in ast.unparse(node.func.value).split(".")[:1]):
                return True
    return False


def unclosed_http_errors(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.name and node.type is not None \
                and ast.unparse(node.type).endswith("HTTPError") \
                and not _closes(node.body, node.name):
            found.append(f"line {node.lineno}: except ... as {node.name}")
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and ast.unparse(call.func).endswith("raises")
                        and call.args and ast.unparse(call.args[0]).endswith("HTTPError")
                        and isinstance(item.optional_vars, ast.Name)):
                    caught = item.optional_vars.id
                    rest = _after(tree, node)
                    if not _closes(rest, caught):
                        found.append(f"line {node.lineno}: pytest.raises(...) as {caught}")
    return found


def _after(tree: ast.AST, statement: ast.stmt) -> list[ast.stmt]:
    """The statements after ``statement`` in the block that holds it."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and statement in block:
                return block[block.index(statement) + 1:]
    return []


def test_every_caught_http_error_is_closed():
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if "corpus" not in path.parts and "node_modules" not in path.parts  # not ours
        and (found := unclosed_http_errors(ast.parse(path.read_text(encoding="utf-8"))))}
    assert offenders == {}


def test_the_check_finds_an_unclosed_error():
    caught = ast.parse(
        "try:\n    pass\nexcept urllib.error.HTTPError as error:\n"
        "    return error.code, error.read()\n")
    raised = ast.parse(
        "with pytest.raises(urllib.error.HTTPError) as refused:\n    call()\n"
        "assert refused.value.code == 400\n")
    assert unclosed_http_errors(caught) == ["line 3: except ... as error"]
    assert unclosed_http_errors(raised) == ["line 1: pytest.raises(...) as refused"]
    closed = ast.parse(
        "try:\n    pass\nexcept urllib.error.HTTPError as error:\n"
        "    with error:\n        return error.code\n"
        "with pytest.raises(urllib.error.HTTPError) as refused:\n    call()\n"
        "refused.value.close()\n")
    assert unclosed_http_errors(closed) == []
