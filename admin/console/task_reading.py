"""How a task's payload reads on its page, in words a nurse uses: a person's name, a
result's value (engine.model.observation_value's shape) with its flags named, whether
a result is abnormal or critical (and so the order results are read in), a reference
range as a range, and the canonical record's keys as labels."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from engine.result_flags import is_abnormal as is_abnormal
from engine.result_flags import is_critical as is_critical

# HL7 v2 table 0078 (interpretation codes), in plain words.
FLAGS = {
    "L": "Low", "H": "High", "LL": "Critically low", "HH": "Critically high",
    "LU": "Very low", "HU": "Very high", "<": "Below the instrument's range",
    ">": "Above the instrument's range", "N": "Normal", "A": "Abnormal",
    "AA": "Critically abnormal", "U": "Gone up a lot", "D": "Gone down a lot",
    "B": "Better", "W": "Worse", "S": "Susceptible", "R": "Resistant", "I": "Intermediate",
    "MS": "Moderately susceptible", "VS": "Very susceptible", "POS": "Positive",
    "NEG": "Negative", "IND": "Indeterminate", "DET": "Detected", "ND": "Not detected",
    "RR": "Reactive", "WR": "Weakly reactive", "NR": "Not reactive",
}
TEXT_TYPES = frozenset({"TX", "ST", "FT"})
"""HL7 v2 data types of a value in words."""
PERSON_KEYS = frozenset({"id", "family", "given", "middle", "prefix", "suffix",
                         "assigning_authority"})
# Sent as "70-105", "70_105" (an escaped separator) or "70 - 105": low, high.
_RANGE = re.compile(r"^\s*(-?[\d.]+)\s*[-_–]\s*(-?[\d.]+)\s*$")
LABELS = {"birth_date": "Date of birth", "gender": "Sex", "identifiers": "Identifiers",
          "telecom": "Phone and email", "control_id": "Control id", "sent_at": "Sent",
          "id": "Id", "dob": "Date of birth",
          "placer_id": "Order number (ordering system)", "filler_id": "Order number (lab)",
          "specimen_collected_at": "Specimen collected", "ordered_at": "Ordered"}
_MOMENT = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?"
                     r"(Z|[+-]\d{2}:\d{2})?$")


def flag_words_short(flag: str) -> str:
    """A flag in words alone, for a list: "Critically high"."""
    return FLAGS.get(flag, flag)


def flag_words(flag: str) -> str:
    """A flag in words, with the code beside it: "High (H)"."""
    words = FLAGS.get(flag)
    return f"{words} ({flag})" if words else flag


def in_reading_order(results: Iterable[Any]) -> list[Any]:
    """The results as a nurse reads them: critical first, then the other abnormal ones,
    then the rest, each group in the order the lab sent it."""
    return sorted(results, key=lambda result: 0 if is_critical(result)
                  else 1 if is_abnormal(result) else 2)


def range_text(reference_range: Any) -> str:
    """A reference range as it reads on a chart: "70–105"; anything else as sent."""
    if reference_range is None:
        return ""
    text = str(reference_range)
    found = _RANGE.match(text)
    return f"{found.group(1)}–{found.group(2)}" if found else text




def value_text(value: Any) -> str:
    """A result's value as it reads: "182", "< 5", "10 to 20", "1:128", a code's
    display with the code, a time, or what an attachment is."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    if "number" in value:
        comparator = value.get("comparator")
        return f"{comparator} {value['number']}" if comparator else str(value["number"])
    if "low" in value or "high" in value:
        return f"{value.get('low', '')} to {value.get('high', '')}".strip()
    if "numerator" in value or "denominator" in value:
        return f"{value.get('numerator', '')}:{value.get('denominator', '')}"
    if isinstance(value.get("code"), dict):
        code = value["code"]
        display, plain = code.get("display"), code.get("code")
        return f"{display} ({plain})" if display and plain else str(display or plain or "")
    for key in ("text", "datetime"):
        if key in value:
            return str(value[key])
    if "attachment" in value:
        return "an attachment, kept in the original message"
    return ""


def person_name(name: Any) -> str:
    """A name as a chart heads it: "EVERYWOMAN, EVE E"."""
    if not isinstance(name, dict):
        return "" if name is None else str(name)
    given = " ".join(str(name[key]) for key in ("given", "middle") if name.get(key))
    family = str(name.get("family") or "")
    text = ", ".join(part for part in (family, given) if part)
    return " ".join(part for part in (str(name.get("prefix") or ""), text,
                                      str(name.get("suffix") or "")) if part)


def when(value: Any) -> str | None:
    """A date and time from the record as people read it ("2026-12-07 05:30, UTC+06:00"),
    or None when ``value`` is not one."""
    found = _MOMENT.match(value) if isinstance(value, str) else None
    if found is None:
        return None
    day, clock, zone = found.groups()
    if zone in (None, ""):
        return f"{day} {clock}"
    return f"{day} {clock} UTC" if zone in ("Z", "+00:00") else f"{day} {clock}, UTC{zone}"


def is_note(result: Any) -> bool:
    """Whether a result is the lab's note in words (a text value with no flag, such as
    "sample haemolysed; repeat advised"): shown above the values it may bear on, not
    last in their table (found in the nurses' check: it was easy to miss)."""
    value = result.get("value") if isinstance(result, dict) else None
    return isinstance(value, dict) and value.get("type") in TEXT_TYPES \
        and bool(value.get("text")) and not is_abnormal(result)


def ordering_doctor(payload: Any) -> str | None:
    """The first order's ordering provider, as a chart names them."""
    orders = payload.get("orders") if isinstance(payload, dict) else None
    for order in orders or ():
        doctor = order.get("ordering_provider") if isinstance(order, dict) else None
        if is_person(doctor):
            return person_name(doctor)
    return None


def is_person(value: Any) -> bool:
    """Whether a part of the record names a person (a doctor, a nurse): read as a name,
    not as its parts."""
    return isinstance(value, dict) and bool(value) and set(value) <= PERSON_KEYS and \
        bool(value.get("family") or value.get("given"))


def person_text(person: dict[str, Any]) -> str:
    """A person as a chart names them: "DR SMITH, JOHN (1234)"."""
    name = person_name(person)
    return f"{name} ({person['id']})" if person.get("id") else name


def label(key: Any) -> str:
    """A record key as a label: ``ordering_provider`` reads "Ordering provider"."""
    text = str(key)
    return LABELS.get(text) or text.replace("_", " ").capitalize()
