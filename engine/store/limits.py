"""How long a value taken from a message may be, in one place: the store's columns
are declared with these lengths, and ingest checks a message's header against the same
numbers before anything is written. PostgreSQL refuses a longer value and SQLite would
keep it: checked first, both stores give the same answer (an AR naming the field).

The lengths are those HL7 v2.5+ gives the fields (HD 227, ST 199), or more; the largest
numbers are those both stores can hold.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = 64  # a catalog connection id
PEER = 255  # an address and port, or a drop folder's file name (at most 255 bytes)
SENDING_APPLICATION = 227  # MSH-3 (HD)
SENDING_FACILITY = 227  # MSH-4 (HD)
CONTROL_ID = 199  # MSH-10 (ST)
MESSAGE_TYPE = 40  # MSH-9.1, or a FHIR resource type
EVENT = 16  # MSH-9.2
PATIENT_KEY = 128
VERSION_ID = 64  # FHIR meta.versionId, an id
# The largest value both stores hold: an id (BIGINT, and SQLite's INTEGER is as wide)
# and a rule-set version number (INTEGER, 32 bits on PostgreSQL). Larger numbers from a
# request are refused before a query sees them: the drivers raise on them.
MAX_ID = 2**63 - 1
MAX_VERSION = 2**31 - 1


def storable_text(text: str) -> str:
    """``text`` as both stores can hold it in a text column: bytes that did not decode
    (surrogates) and NULs written as escapes. For Switchboard's own words that may
    quote a value, such as an error's reason."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class HeaderLimit:
    """A header field the journal indexes, and the most characters its column holds."""

    path: str  # as HL7 people write it: MSH-9.2
    column: str
    length: int


# What the journal keeps of an HL7 v2 header, in the order ingest checks it.
HL7V2_HEADER = (
    HeaderLimit("MSH-3", "sending_application", SENDING_APPLICATION),
    HeaderLimit("MSH-4", "sending_facility", SENDING_FACILITY),
    HeaderLimit("MSH-9.1", "message_type", MESSAGE_TYPE),
    HeaderLimit("MSH-9.2", "event", EVENT),
    HeaderLimit("MSH-10", "control_id", CONTROL_ID),
)
