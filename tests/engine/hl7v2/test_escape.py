from __future__ import annotations

import pytest

from engine.hl7v2.escape import escape, unescape
from engine.hl7v2.separators import DEFAULT, separators_from


@pytest.mark.parametrize(
    "encoded, plain",
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("\\X41\\", "A"),
        ("\\X0D0A\\", "\r\n"),
        ("\\XC3A9\\", "é"),
        ("line\\.br\\next", "line\nnext"),
        ("\\H\\bold\\N\\", "bold"),
        ("a\\.sp2\\b", "a\n\nb"),
        ("a\\.sk3\\b", "a   b"),
        ("a\\.in+4\\b", "ab"),
        ("\\.sp999999999\\", "\n" * 100),  # capped: one escape cannot blow up memory
        ("\\.sk99999\\", " " * 100),
        ("\\.sk9999999999\\", "\\.sk9999999999\\"),  # too many digits: literal
        ("C:\\dir", "C:\\dir"),  # unterminated: literal
        ("\\Zcustom\\", "\\Zcustom\\"),  # application-defined: kept literally
        ("\\C2842\\x", "\\C2842\\x"),  # character set switch: kept literally
        ("\\X4\\", "\\X4\\"),  # odd hex digits: literal
        ("no escapes", "no escapes"),
        ("\\P\\", "\\P\\"),  # no truncation character declared
    ],
)
def test_unescape(encoded, plain):
    assert unescape(encoded, DEFAULT) == plain


def test_truncation_character_from_v27():
    seps = separators_from("|", "^~\\&#")
    assert unescape("a\\P\\b", seps) == "a#b"
    assert escape("a#b", seps) == "a\\P\\b"


def test_hex_in_declared_charset():
    assert unescape("\\XDC\\", DEFAULT, "iso8859-1") == "Ü"
    assert unescape("\\XDC\\", DEFAULT, "utf-8") == "Ü"  # not UTF-8: read as Latin-1


@pytest.mark.parametrize(
    "plain", ["a|b^c&d~e\\f", "line\nbreak", "cr\rhere", "\r\n", "plain", "", "\\E\\"]
)
def test_escape_round_trips(plain):
    encoded = escape(plain, DEFAULT)
    assert not set(encoded) & set("|^&~\r\n")
    assert unescape(encoded, DEFAULT) == plain
