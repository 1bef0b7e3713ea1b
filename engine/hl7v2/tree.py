"""A parsed message as a tree a person reads: segments, then the fields sent, their
repetitions, components and subcomponents, each named by its HL7 path
(``OBX[2]-3.1``; a first occurrence or repetition unnumbered) and by what HL7 calls it
(engine.hl7v2.field_names). Empty positions are left out; leaves hold the unescaped
value, as ``Message.get`` reads it."""

from __future__ import annotations

from dataclasses import dataclass

from engine.hl7v2.escape import unescape
from engine.hl7v2.field_names import component_name, describe
from engine.hl7v2.message import Message
from engine.hl7v2.path import Path

_HEADERS = frozenset({"MSH", "BHS", "FHS"})


@dataclass(frozen=True)
class Node:
    """One position. ``path`` names it exactly; ``where`` is the same position in any
    occurrence of its segment and any repetition of its field (how a search names
    it); ``label`` what HL7 calls it ("Patient Name, Family Name") and ``name`` the
    last part of that ("Family Name"), to show under its field; ``value`` is a leaf's
    value, None for a composite."""

    path: Path
    label: str
    value: str | None = None
    children: tuple[Node, ...] = ()
    name: str = ""

    @property
    def where(self) -> str:
        return str(self.path._replace(occurrence=None, repetition=None))

    def first_primitives(self) -> tuple[str, ...]:
        """The searches that read this leaf: its own path, and the composites whose
        first primitive it is (``OBX-3.1.1`` is what ``OBX-3.1`` and ``OBX-3`` read)."""
        found = [self.where]
        path = self.path._replace(occurrence=None, repetition=None)
        while path.subcomponent == 1 or (path.subcomponent is None and path.component == 1):
            path = (path._replace(subcomponent=None) if path.subcomponent is not None
                    else path._replace(component=None))
            found.append(str(path))
        return tuple(found)


def message_tree(message: Message) -> list[Node]:
    """Every segment of ``message``, in order."""
    seps = message.separators
    seen: dict[str, int] = {}
    segments = []
    for segment_id, text in zip(message.segment_ids, message.segment_texts(), strict=True):
        seen[segment_id] = seen.get(segment_id, 0) + 1
        occurrence = seen[segment_id]
        fields = text.split(seps.field) if seps.field else [text]
        if segment_id in _HEADERS:
            fields.insert(1, seps.field)
        base = Path(segment_id, None if occurrence == 1 else occurrence, None, None, None,
                    None)
        children = tuple(node for number, raw in enumerate(fields[1:], 1)
                         if (node := _field(message, base, number, raw)) is not None)
        segments.append(Node(base, describe(segment_id), None, children, describe(segment_id)))
    return segments


def _field(message: Message, base: Path, number: int, raw: str) -> Node | None:
    if not raw:
        return None
    path = base._replace(field=number)
    label = describe(base.segment, number)
    if number <= 2 and base.segment in _HEADERS:  # the delimiters themselves
        return Node(path, label, raw, name=label)
    seps = message.separators
    repetitions = raw.split(seps.repetition) if seps.repetition else [raw]
    if len(repetitions) == 1:
        return _composite(message, path, label, raw)
    children = tuple(node for index, text in enumerate(repetitions, 1)
                     if (node := _composite(message, path._replace(
                         repetition=None if index == 1 else index), label, text)) is not None)
    return Node(path, label, None, children, label) if children else None


def _composite(message: Message, path: Path, label: str, raw: str) -> Node | None:
    """One repetition: a leaf, or its components (and theirs)."""
    if not raw:
        return None
    seps = message.separators
    components = raw.split(seps.component) if seps.component else [raw]
    if len(components) == 1:
        return _subcomponents(message, path, label, raw, label)
    children = tuple(node for index, text in enumerate(components, 1)
                     if (node := _subcomponents(
                         message, path._replace(component=index),
                         describe(path.segment, path.field, index), text,
                         component_name(path.segment, path.field or 0, index) or ""))
                     is not None)
    return Node(path, label, None, children, label) if children else None


def _subcomponents(message: Message, path: Path, label: str, raw: str,
                   name: str) -> Node | None:
    if not raw:
        return None
    seps = message.separators
    parts = raw.split(seps.subcomponent) if seps.subcomponent else [raw]
    if len(parts) == 1:
        return Node(path, label, _value(message, raw), name=name)
    if path.component is None:
        path = path._replace(component=1)
    children = tuple(Node(path._replace(subcomponent=index), label, _value(message, text))
                     for index, text in enumerate(parts, 1) if text)
    return Node(path, label, None, children, name) if children else None


def _value(message: Message, raw: str) -> str:
    if raw == '""':
        return '""'  # the explicit null: "delete this at the receiver"
    return unescape(raw, message.separators, message.codec)
