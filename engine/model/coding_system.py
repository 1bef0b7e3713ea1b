"""Whether text sent where a coding system goes (CWE-3, CE-3) names one.

A coding system is a name from HL7 table 0396 (LN, SCT, L, 99zzz, HL70078) or an OID
or URI: never text with spaces. Senders do put a description there (the HL7 example
``1554-5^GLUCOSE^POST 12H CFST:MCNC:PT:SER/PLAS:QN``); taken as a system it would be
carried on as one, and a receiver would read the test's name as where its code comes
from."""

from __future__ import annotations

NOT_A_CODING_SYSTEM = "not a coding system name (it holds spaces); left out"


def is_coding_system(text: str) -> bool:
    return bool(text) and not any(character.isspace() for character in text)
