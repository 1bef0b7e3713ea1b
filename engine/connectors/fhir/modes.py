"""The transaction Bundle of a delivery, reshaped for the catalog entry's FHIR mode.

Pure: a Bundle in (as :func:`engine.fhir.encode_bundle` makes it, every resource with a
deterministic id or a conditional create), a new Bundle out; the input is not changed.

- ``conditional-update``: still a transaction, so the server resolves the entries'
  ``urn:uuid`` references to what it stores; each resource with an identifier that has a
  system is ``PUT <Type>?identifier=system|value`` (the server updates the one resource
  it finds, or creates it) and sent without its id, as FHIR's upsert requires; any other
  resource is put at its deterministic id.
- ``message``: a Bundle of type message for ``$process-message``: the MessageHeader
  first, no request elements. A message carries no conditional create, so a resource the
  encoder left to one (a Patient known by a system-bearing identifier) is given an id
  made from that identifier: the same patient has the same id in every message, and a
  message processed twice names the same resources.
"""

from __future__ import annotations

import copy
import uuid
from collections import Counter
from typing import Any

from engine.fhir.entries import search_value

__all__ = ["ModeError", "conditional_update", "message"]

Json = dict[str, Any]
_URN = "urn:uuid:"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://switchboard.invalid/fhir/identified")


class ModeError(ValueError):
    """The Bundle cannot be sent in this mode; the text names entries by place only."""


def conditional_update(bundle: Json) -> Json:
    """The transaction with each entry's request made a conditional update on its
    resource's first system-bearing identifier, or a put at its id."""
    reshaped = copy.deepcopy(bundle)
    entries = _entries(reshaped)
    urls = [_conditional_url(entry["resource"]) for entry in entries]
    repeated = {url for url, count in Counter(urls).items() if url and count > 1}
    for index, (entry, url) in enumerate(zip(entries, urls, strict=True)):
        resource = entry["resource"]
        if url and url not in repeated:
            resource.pop("id", None)
            entry["request"] = {"method": "PUT", "url": url}
        else:
            # Two entries with one identifier would be one resource on the server: each
            # is put at its own id instead, as the transaction mode puts it.
            _give_id(entry, index)
            entry["request"] = {"method": "PUT",
                                "url": f"{resource['resourceType']}/{resource['id']}"}
    return reshaped


def message(bundle: Json) -> Json:
    """The message Bundle: MessageHeader first, then the other entries in order."""
    entries = _entries(copy.deepcopy(bundle))
    headers = [index for index, entry in enumerate(entries)
               if entry["resource"].get("resourceType") == "MessageHeader"]
    if not headers:
        raise ModeError("the Bundle has no MessageHeader (the record names no message "
                        "event or sending application)")
    first = headers[0]
    ordered = [entries[first], *entries[:first], *entries[first + 1:]]
    for index, entry in enumerate(ordered):
        identified = _conditional_url(entry["resource"])
        if identified and "id" not in entry["resource"]:
            entry["resource"]["id"] = str(uuid.uuid5(_NAMESPACE, identified))
        _give_id(entry, index)
        entry.pop("request", None)
    reshaped: Json = {"resourceType": "Bundle"}
    if "identifier" in bundle:
        reshaped["identifier"] = copy.deepcopy(bundle["identifier"])
    reshaped["type"] = "message"
    reshaped["entry"] = ordered
    return reshaped


def _entries(bundle: Json) -> list[Json]:
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        raise ModeError("Bundle.entry is not a list")
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise ModeError(f"Bundle.entry[{index}] has no resource with a resourceType")
    return entries


def _conditional_url(resource: Json) -> str | None:
    """``<Type>?identifier=system|value`` for the first identifier with both, else None."""
    found = resource.get("identifier")
    for identifier in found if isinstance(found, list) else []:
        system = identifier.get("system") if isinstance(identifier, dict) else None
        value = identifier.get("value") if isinstance(identifier, dict) else None
        if isinstance(system, str) and system and isinstance(value, str) and value:
            return (f"{resource['resourceType']}?identifier="
                    f"{search_value(system)}|{search_value(value)}")
    return None


def _give_id(entry: Json, index: int) -> None:
    """An entry without an id takes its fullUrl's uuid, as the encoder's puts do."""
    resource = entry["resource"]
    if isinstance(resource.get("id"), str):
        return
    full_url = entry.get("fullUrl")
    if not (isinstance(full_url, str) and full_url.startswith(_URN)):
        raise ModeError(f"Bundle.entry[{index}] has neither an id nor a urn:uuid fullUrl")
    resource["id"] = full_url.removeprefix(_URN)
