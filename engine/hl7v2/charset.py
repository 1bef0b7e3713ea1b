"""HL7 character set names (MSH-18, table 0211) mapped to Python codecs."""

from __future__ import annotations

import codecs

# Table 0211 names as senders write them. Keys are upper-cased with runs of spaces
# squeezed, because feeds disagree on case and spacing ("UNICODE UTF-8", "unicode utf-8").
_TABLE_0211 = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR100": "iso8859-1",
    "ISO IR101": "iso8859-2",
    "ISO IR109": "iso8859-3",
    "ISO IR110": "iso8859-4",
    "ISO IR144": "iso8859-5",
    "ISO IR127": "iso8859-6",
    "ISO IR126": "iso8859-7",
    "ISO IR138": "iso8859-8",
    "ISO IR148": "iso8859-9",
    "ISO IR192": "utf-8",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "GB 18030-2000": "gb18030",
    "BIG-5": "big5",
    "KS X 1001": "euc-kr",
    "ISO IR87": "iso2022-jp",
    "JAS2020": "iso2022-jp",
    "JIS X 0202": "iso2022-jp",
    "ISO 2022-1994": "iso2022-jp",
}

DEFAULT_CODEC = "utf-8"


def codec_for(charset: str) -> str | None:
    """The Python codec for an MSH-18 value, or None when Switchboard does not know it.

    Only ASCII-compatible codecs are returned: the header itself must be readable as
    ASCII to find MSH-18 at all, so UTF-16/32 cannot be declared there.
    """
    key = " ".join(charset.upper().split())
    codec = _TABLE_0211.get(key)
    if codec is None:
        return None
    return codecs.lookup(codec).name
