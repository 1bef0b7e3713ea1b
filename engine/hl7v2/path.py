"""HL7 paths, written the way HL7 people write them: ``PID-3[2].1.2``, ``OBX[*]-5``."""

from __future__ import annotations

import re
from typing import NamedTuple

from engine.errors import PathError

ALL = 0
"""Index value meaning ``[*]``: every occurrence or every repetition."""

_GRAMMAR = re.compile(
    r"""
    (?P<segment>[A-Za-z][A-Za-z0-9]{2})
    (?:\[(?P<occurrence>\d+|\*)\])?
    (?:-(?P<field>\d+)
        (?:\[(?P<repetition>\d+|\*)\])?
        (?:\.(?P<component>\d+)
            (?:\.(?P<subcomponent>\d+))?
        )?
    )?
    """,
    re.VERBOSE,
)


class Path(NamedTuple):
    """A parsed HL7 path. Indices are 1-based as in HL7; ``None`` means the index was
    omitted and ``ALL`` (0) means ``[*]``."""

    segment: str
    occurrence: int | None
    field: int | None
    repetition: int | None
    component: int | None
    subcomponent: int | None

    @property
    def has_wildcard(self) -> bool:
        return self.occurrence == ALL or self.repetition == ALL

    def __str__(self) -> str:
        text = self.segment + _index(self.occurrence)
        if self.field is None:
            return text
        text += f"-{self.field}{_index(self.repetition)}"
        if self.component is not None:
            text += f".{self.component}"
            if self.subcomponent is not None:
                text += f".{self.subcomponent}"
        return text


def _index(value: int | None) -> str:
    if value is None:
        return ""
    return "[*]" if value == ALL else f"[{value}]"


_CACHE: dict[str, Path] = {}


def parse_path(text: str) -> Path:
    """Parse ``text`` into a :class:`Path`; PathError explains what is wrong."""
    if not isinstance(text, str):
        raise PathError(f"an HL7 path must be a string, not {type(text).__name__}")
    found = _CACHE.get(text)
    if found is not None:
        return found
    path = _parse(text)
    if len(_CACHE) < 4096:
        _CACHE[text] = path
    return path


def _parse(text: str) -> Path:
    match = _GRAMMAR.fullmatch(text.strip())
    if match is None:
        raise PathError(
            f"{text!r} is not an HL7 path",
            hint="Write SEG[occurrence]-field[repetition].component.subcomponent, "
            "for example PID-3[2].1 or OBX[*]-5",
        )
    numbers: dict[str, int | None] = {}
    for name in ("occurrence", "field", "repetition", "component", "subcomponent"):
        raw = match.group(name)
        if raw is None:
            numbers[name] = None
        elif raw == "*":
            numbers[name] = ALL
        else:
            value = int(raw)
            if value < 1:
                raise PathError(
                    f"{text!r}: HL7 positions count from 1, so {name} {value} does not exist"
                )
            numbers[name] = value
    return Path(
        match.group("segment").upper(),
        numbers["occurrence"],
        numbers["field"],
        numbers["repetition"],
        numbers["component"],
        numbers["subcomponent"],
    )
