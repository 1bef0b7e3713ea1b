"""The encounter's episode of care as an EpisodeOfCare resource (the v2-to-FHIR
PV1[Encounter] map, row 54: Encounter.episodeOfCare names an EpisodeOfCare by PV1-54),
with the patient's diagnoses (DG1[EpisodeOfCare]) whose Conditions the Bundle holds.

The IG assigns no status, and FHIR's value set has no "unknown": the status carries a
data-absent-reason.
"""

from __future__ import annotations

from engine.fhir.elements import Json, absent, compact, identifier, items, section
from engine.fhir.entries import Context

__all__ = ["add_episode_of_care"]


def add_episode_of_care(context: Context) -> None:
    encounter = section(context.record, "encounter")
    number = identifier(encounter.get("episode_identifier"))
    if not number.get("value"):
        return
    entries = context.entries
    made = {entry["fullUrl"] for entry in entries.entries}
    conditions = [{"condition": {"reference": url}}
                  for index, _ in items(context.record, "diagnoses")
                  if (url := entries.url(f"diagnosis/{index}")) in made]
    episode = context.made["episode_of_care"] = entries.add("episode_of_care", compact({
        "resourceType": "EpisodeOfCare",
        "identifier": [number],
        "_status": absent(),
        "diagnosis": conditions,
        "patient": context.subject or absent(),
    }))
    _link_encounter(context, episode)


def _link_encounter(context: Context, episode: Json) -> None:
    """Encounter.episodeOfCare, where the Bundle holds the encounter."""
    if not context.encounter:
        return
    for entry in context.entries.entries:
        if entry["fullUrl"] == context.encounter.get("reference"):
            entry["resource"]["episodeOfCare"] = [episode]
