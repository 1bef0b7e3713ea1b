"""Lookup keys: what the message log's search columns hold instead of the values searched
for (a patient identifier, a control id, the value at an indexed HL7 path).

Every key, written or searched, is made by :func:`lookup_key` and nowhere else, so that
turning the keys into keyed hashes (a secret kept outside the database) is a change to
that one function, and a re-index of the journal (engine.message_lookups). The journal's
``patient_key`` is not a lookup key: it orders a patient's deliveries, and stays as it is.
"""

from __future__ import annotations

import hashlib

PATIENT = "patient"
CONTROL_ID = "control_id"
PATH = "path:"
"""The kind of an indexed path's keys is ``path:`` and the path: ``path:OBX-3.1``."""
KIND_LENGTH = 64
KEY_LENGTH = 32


def lookup_key(kind: str, value: str) -> str:
    """The key ``value`` is found under among the keys of ``kind``. The kind is hashed
    in too, so one value under two kinds (an identifier also sent in OBX-5) gives keys
    that cannot be matched with each other."""
    text = f"{kind}\x1f{value}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(text).hexdigest()[:KEY_LENGTH]


def patient_value(identifier: str, authority: str = "") -> str:
    """What a patient is looked up by: the identifier with its assigning authority
    (PID-3.1 and PID-3.4, or a FHIR identifier's value and system), as the journal's
    patient key takes them."""
    return f"{authority}|{identifier}"


def path_kind(path: str) -> str:
    """The kind of the keys of the indexed path ``path``, written as
    engine.indexed_paths names it."""
    return PATH + path
