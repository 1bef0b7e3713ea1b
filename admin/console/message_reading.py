"""How a message's content reads on its page: which values of the parsed tree are a
search (a click adds them as a filter), a route condition's evidence in words, and a
delivery's body as the destination got it. Only ever rendered for someone who may see
content, after the view is audited (admin.console.messages)."""

from __future__ import annotations

import json
from typing import Any

from engine.hl7v2 import Message
from engine.hl7v2.tree import Node
from engine.indexed_paths import IndexedPaths
from engine.rules.conditions import Evidence

OPS = {"eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of",
       "matches": "matches", "exists": "is present", "missing": "is missing",
       "lt": "is less than", "le": "is at most", "gt": "is more than", "ge": "is at least"}


def tree_filters(message: Message, nodes: list[Node],
                 indexed: IndexedPaths) -> dict[str, dict[str, str]]:
    """The search each searchable leaf of ``nodes`` is, by its path: its control id,
    type and event, the patient (the first PID-3, with its authority), and the values
    at the indexed paths, each as the message log keyed them."""
    found: dict[str, dict[str, str]] = {}
    special = {"MSH-10": {"control_id": message.get_raw("MSH-10") or ""},
               "MSH-9.1": {"type": message.get("MSH-9.1") or ""},
               "MSH-9.2": {"event": message.get("MSH-9.2") or ""}}
    patient = message.get("PID-3.1")
    for leaf in _leaves(nodes):
        where = str(leaf.path)
        if where in special:
            found[where] = special[where]
        elif where in ("PID-3.1", "PID-3.1.1") and patient:
            found[where] = {"patient": patient,
                            "patient_authority": message.get("PID-3.4") or ""}
        else:
            path = next((p for p in leaf.first_primitives() if indexed.kind_of(p)), None)
            if path is not None and leaf.value:
                found[where] = {"path": path, "value": leaf.value}
    return {where: search for where, search in found.items() if all(
        value or name == "patient_authority" for name, value in search.items())}


def evidence_words(evidence: Evidence) -> str:
    """"HL7 OBX[*]-8 is one of H, HH (any value)": what a condition tested."""
    where = evidence.place if evidence.source == "field" else f"HL7 {evidence.path}"
    expected = evidence.expected
    if isinstance(expected, list | tuple):
        expected = ", ".join(str(value) for value in expected)
    text = f"{where} {OPS.get(evidence.op, evidence.op)}"
    if expected is not None and evidence.op not in ("exists", "missing"):
        text += f" {expected}"
    return text + ("" if evidence.quantifier == "any" else f" ({evidence.quantifier} values)")


def seen_words(evidence: Evidence) -> str:
    if not evidence.seen:
        return "nothing there"
    return ", ".join("(empty)" if value in ("", None) else str(value)
                     for value in evidence.seen[:20])


def body_document(media_type: str | None, body: str | None) -> Any:
    """A JSON body read, to show as labels and values; None for any other body."""
    if body is None or "json" not in (media_type or ""):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _leaves(nodes: Any) -> Any:
    for node in nodes:
        if node.children:
            yield from _leaves(node.children)
        else:
            yield node
