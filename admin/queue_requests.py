"""What the API's blueprints share: reading a JSON body, the page arguments and a
page of rows, and answering the queues' errors as JSON (404 unknown id, 403 a role the
item's queue does not allow, 409 a state that does not allow the action, 400 bad
input), each saying what to do next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from werkzeug.http import HTTP_STATUS_CODES

from admin.auth import audit_denial
from admin.services import services
from admin.store_ids import Bounds, query_number
from engine.errors import SwitchboardError
from engine.queues import Forbidden, Invalid, NotFound, Refused, Unfit
from engine.store.limits import MAX_ID

_STATUS = ((NotFound, 404), (Forbidden, 403), (Refused, 409), (Unfit, 409), (Invalid, 400))
WHOLE = Bounds("a whole number", MAX_ID)


def answer_queue_errors(blueprint: Blueprint) -> None:
    """Answer the queues' errors raised in ``blueprint``'s views as JSON."""
    for error_type, code in _STATUS:
        blueprint.register_error_handler(error_type, _handler(code))


def _handler(code: int) -> Any:
    def answer(error: SwitchboardError) -> tuple[Response, int]:
        if code == 403 and g.get("principal") is not None:
            audit_denial(g.principal, request.endpoint or request.path)
        return jsonify(error_body(code, str(error), error.hint)), code

    return answer


def error_body(code: int, reason: str, hint: str | None, **more: Any) -> dict[str, Any]:
    """The API's error JSON: a hint only when there is one (the document's Error schema
    has no null hint)."""
    body: dict[str, Any] = {"error": HTTP_STATUS_CODES[code], "reason": reason}
    if hint is not None:
        body["hint"] = hint
    return {**body, **more}


def json_object() -> dict[str, Any]:
    """The request's JSON object; an empty one when no body was sent."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        abort(400, description='Send a JSON object, e.g. {"assignee": "olive"}')
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string member of the body; 400 when it is required and missing, or given
    (null included) as anything but a non-blank string."""
    if name not in body and not required:
        return None
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        abort(400, description=f'Send "{name}" as a non-empty string')
    return value


def page_args() -> tuple[int, int]:
    """(page, per_page) from the query string, per_page capped by PAGE_SIZE_MAX and
    page by the offset the store can take at the largest page (one bound, whatever
    per_page is asked, so the API document can state it)."""
    largest = current_app.config["PAGE_SIZE_MAX"]
    per_page = min(query_number("per_page", WHOLE) or 50, largest)
    page = query_number("page", Bounds(WHOLE.what, MAX_ID // largest)) or 1
    return page, per_page


def paged(query: Select[Any], render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The page of ``query``'s rows the request asks for, each rendered, with the total."""
    page, per_page = page_args()
    with Session(services().reads) as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.limit(per_page).offset((page - 1) * per_page)).all()
        return {"items": [render(row) for row in rows], "page": page, "per_page": per_page,
                "total": total}
