"""How the test panel says a route condition: in the message's own terms where the
mapping tells which HL7 field a canonical path is read from ("OBX-8 (Abnormal Flags)
is one of H, HH — saw HH → holds"), with the exact paths kept for a title."""

from __future__ import annotations

from collections.abc import Mapping

from admin.console.message_reading import OPS, seen_words
from engine.errors import SwitchboardError
from engine.hl7v2 import parse_path
from engine.hl7v2.field_names import describe
from engine.rules.conditions import Evidence
from engine.rules.field_catalog import item_noun
from engine.rules.trial import Verdict

GROUPS = {"all": "all of these hold", "any": "at least one of these holds",
          "not": "this does not hold",
          # As the route editor says them: the same words for the same rule.
          "some": "one {noun} must match these together",
          "every": "every {noun} must match these"}


def group(node: Verdict) -> str:
    """What a group of conditions asks, naming the list a some/every group is over."""
    return GROUPS[node.kind].format(noun=item_noun(node.scope or ""))


def sentence(evidence: Evidence, sources: Mapping[str, str]) -> str:
    """What the leaf tests, what it saw, and its verdict."""
    verdict = "holds" if evidence.held else "does not hold"
    return f"{test_words(evidence, sources)} — saw {seen_words(evidence)} → {verdict}"


def test_words(evidence: Evidence, sources: Mapping[str, str]) -> str:
    text = f"{subject(evidence, sources)} {OPS.get(evidence.op, evidence.op)}"
    expected = evidence.expected
    if isinstance(expected, list | tuple):
        expected = ", ".join(str(value) for value in expected)
    if expected is not None and evidence.op not in ("exists", "missing"):
        text += f" {expected}"
    return text + (" (every value)" if evidence.quantifier == "all" else "")


def subject(evidence: Evidence, sources: Mapping[str, str]) -> str:
    """The HL7 field and its name, else the canonical path as the rule names it."""
    hl7 = evidence.path if evidence.source == "hl7" else sources.get(_absolute(evidence))
    if hl7 is None:
        return evidence.place
    try:
        path = parse_path(hl7)
    except SwitchboardError:
        return hl7
    if path.field is None:
        return path.segment
    name = describe(path.segment, path.field)
    where = f"{path.segment}-{path.field}"
    return f"{where} ({name})" if name else where


def subject_title(evidence: Evidence, sources: Mapping[str, str]) -> str:
    """The exact paths, for hovering."""
    if evidence.source == "hl7":
        return f"HL7 path {evidence.path}"
    hl7 = sources.get(_absolute(evidence))
    read = f", read from {hl7}" if hl7 else ""
    return f"canonical field {evidence.place}{read}"


def _absolute(evidence: Evidence) -> str:
    """The canonical path a leaf reads, from the record (inside a some/every group its
    path is relative to the list's item)."""
    return f"{evidence.scope}.{evidence.path}" if evidence.scope else evidence.path
