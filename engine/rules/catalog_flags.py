"""What compliance should look at in the catalog, beyond what an entry lacks
(:meth:`~engine.rules.catalog_entry.Connection.missing`): entries whose classification
says less than their data scope lets through, and entries citing one agreement between
them (not wrong by itself, but the agreement must cover each). Also whether an entry
holds patient data at all. Pure: over parsed entries, the whole catalog at once, as an
agreement is shared across entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from engine.rules.catalog_entry import (
    AgreementKind,
    Classification,
    Connection,
    direct_identifiers_admitted,
    identifiers_beyond_limited_data_set,
)

FlagKind = Literal["identifiers-in-limited", "identifiers-in-de-identified",
                   "shared-agreement"]

# Each direct identifier (engine.rules.catalog_entry.DIRECT_IDENTIFIER_PATHS) in words.
IDENTIFIER_WORDS: Final = {
    "patient.identifiers": "identifiers such as the MRN",
    "patient.names": "names",
    "patient.addresses": "street address",
    "patient.telecom": "phone or email",
    "patient.birth_date": "birth date",
    "patient.mothers_maiden_name": "mother's maiden name",
    "patient.account_number": "account number",
    "encounter.visit_number": "visit number",
    "merge.prior_identifiers": "former identifiers",
    "merge.prior_account_number": "former account number",
    "merge.prior_visit_number": "former visit number",
}
# Classifications that are patient data whatever the scope: a limited data set is still
# PHI under HIPAA.
PATIENT_DATA_CLASSES: Final = frozenset({Classification.PHI, Classification.LIMITED})


@dataclass(frozen=True)
class Flag:
    """One thing to check about an entry, in words a compliance officer reads."""

    kind: FlagKind
    words: str
    identifiers: tuple[str, ...] = ()  # the identifier paths let through
    reference: str | None = None  # the agreement shared
    others: tuple[str, ...] = ()  # the other connections citing it, by id

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "words": self.words, "identifiers": list(self.identifiers),
                "reference": self.reference, "others": list(self.others)}


def holds_patient_data(entry: Connection) -> bool:
    """Whether the entry may carry patient data: classified PHI or a limited data set,
    or its data scope lets a direct identifier of the patient through whatever it is
    classified as."""
    return (entry.classification in PATIENT_DATA_CLASSES
            or bool(direct_identifiers_admitted(entry.data_scope)))


def catalog_flags(entries: Iterable[Connection]) -> dict[str, list[Flag]]:
    """Each entry's flags by its id (entries without any are left out), in a fixed
    order: its classification first, then a shared agreement."""
    entries = list(entries)
    names = {entry.id: entry.name for entry in entries}
    flags: dict[str, list[Flag]] = {}
    for entry in entries:
        found = [*_classification_flags(entry), *_shared_agreement_flags(entry, entries,
                                                                         names)]
        if found:
            flags[entry.id] = found
    return flags


def _classification_flags(entry: Connection) -> list[Flag]:
    kind: FlagKind
    if entry.classification is Classification.LIMITED:
        found = identifiers_beyond_limited_data_set(entry.data_scope)
        said, kind = "a limited data set", "identifiers-in-limited"
    elif entry.classification is Classification.DE_IDENTIFIED:
        found = direct_identifiers_admitted(entry.data_scope)
        said, kind = "de-identified", "identifiers-in-de-identified"
    else:
        return []
    identifiers = _unique(identifier for _entry, identifier in found)
    if not identifiers:
        return []
    words = (f"Classified as {said}, but its data scope lets through fields that "
             "identify the patient: "
             f"{', '.join(IDENTIFIER_WORDS.get(i, i) for i in identifiers)}. Classify it "
             "as PHI, or narrow its data scope.")
    return [Flag(kind, words, identifiers=tuple(identifiers))]


def _shared_agreement_flags(entry: Connection, entries: Sequence[Connection],
                            names: Mapping[str, str]) -> list[Flag]:
    reference = _reference(entry)
    if reference is None:
        return []
    others = tuple(other.id for other in entries
                   if other.id != entry.id and _reference(other) == reference)
    if not others:
        return []
    shown = (entry.agreement.reference or "").strip() if entry.agreement else reference
    words = (f"Shares agreement {shown} with "
             f"{_listed([f'“{names[other]}”' for other in others])}: check that the "
             f"agreement covers {'both' if len(others) == 1 else 'each of them'}.")
    return [Flag("shared-agreement", words, reference=shown, others=others)]


def _reference(entry: Connection) -> str | None:
    """The agreement's reference as compared: without case or surrounding spaces."""
    agreement = entry.agreement
    if agreement is None or agreement.kind is AgreementKind.NONE:
        return None
    return (agreement.reference or "").strip().casefold() or None


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _listed(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"
