"""schemathesis hooks for the conformance run (tests/api_conformance.py): HL7 v2 bodies
for HTTP ingest are sent as the text they are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import schemathesis


@schemathesis.serializer("application/hl7-v2")
def hl7v2(ctx: Any, value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else str(value).encode("utf-8")


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """An impact preview's window runs from since to until, which no JSON Schema can
    say (the document says it in words): an inverted one is put the right way round,
    so the run tests the rest of the body rather than this one rule, which the suite's
    own tests cover."""
    body = case.body
    if (case.operation.path.endswith("/previews") and isinstance(body, dict)
            and isinstance(body.get("since"), str) and isinstance(body.get("until"), str)):
        since, until = _moment(body["since"]), _moment(body["until"])
        if since is not None and until is not None and since >= until:
            body = {**body, "since": body["until"], "until": body["since"]}
            if since == until:
                del body["until"]
            case.body = body
    return case


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
