"""The delimiters a message declares in MSH-1 and MSH-2."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field

from engine.errors import ParseError

_FORBIDDEN = frozenset("\r\n\t \x0b\x1c")


def _unusable(char: str) -> bool:
    # Delimiters must be printable ASCII: anything else is either data or a line break.
    return char.isalnum() or char in _FORBIDDEN or not "!" <= char <= "~"


@dataclass(frozen=True)
class Separators:
    """Field separator (MSH-1) and encoding characters (MSH-2), in HL7 order:
    component, repetition, escape, subcomponent and, from v2.7, truncation.

    A character a message does not declare is ``''``: that level is then never split.
    """

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""
    escape_table: dict[str, str] = dataclass_field(default_factory=dict, compare=False, repr=False)
    unescape_table: dict[str, str] = dataclass_field(
        default_factory=dict, compare=False, repr=False
    )
    escape_translation: dict[int, str] = dataclass_field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        esc = self.escape
        pairs = [
            (self.field, "F"),
            (self.component, "S"),
            (self.repetition, "R"),
            (self.subcomponent, "T"),
            (self.truncation, "P"),
            (self.escape, "E"),
        ]
        if esc:
            for char, code in pairs:
                if char:
                    self.escape_table[char] = f"{esc}{code}{esc}"
                    self.unescape_table[code] = char
            self.escape_table["\n"] = f"{esc}.br{esc}"
            self.escape_table["\r"] = f"{esc}X0D{esc}"
        self.escape_translation.update(
            {ord(char): code for char, code in self.escape_table.items()}
        )

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written."""
        return (
            self.component + self.repetition + self.escape + self.subcomponent
            + self.truncation
        )

    @property
    def delimiters(self) -> str:
        return self.field + self.encoding_characters


_CACHE: dict[tuple[str, str], Separators] = {}


def separators_from(field_sep: str, encoding: str) -> Separators:
    """Separators for MSH-1 ``field_sep`` and MSH-2 ``encoding``; ParseError if unusable."""
    key = (field_sep, encoding)
    found = _CACHE.get(key)
    if found is not None:
        return found
    _check(field_sep, encoding)
    chars = list(encoding) + [""] * (5 - len(encoding))
    seps = Separators(field_sep, chars[0], chars[1], chars[2], chars[3], chars[4])
    if len(_CACHE) < 256:
        _CACHE[key] = seps
    return seps


def _check(field_sep: str, encoding: str) -> None:
    if _unusable(field_sep):
        raise ParseError(
            f"MSH-1 field separator {field_sep!r} must be a printable delimiter such as '|'",
            segment="MSH", segment_number=1, field=1,
        )
    if not 1 <= len(encoding) <= 5:
        raise ParseError(
            f"MSH-2 encoding characters {encoding!r} must be 1 to 5 delimiters such as '^~\\&'",
            segment="MSH", segment_number=1, field=2,
        )
    for char in encoding:
        if _unusable(char) or char == field_sep:
            raise ParseError(
                f"MSH-2 encoding character {char!r} cannot be a delimiter: it must not be a "
                "letter, digit, space, segment terminator or the field separator",
                segment="MSH", segment_number=1, field=2,
            )
    if len(set(encoding)) != len(encoding):
        raise ParseError(
            f"MSH-2 encoding characters {encoding!r} repeat a delimiter",
            segment="MSH", segment_number=1, field=2,
        )


DEFAULT = separators_from("|", "^~\\&")
