"""The integration catalog as compliance reviews it, on SQLite and PostgreSQL: the
published version's connections with their completeness and data scope in words,
filtered, sorted and paged, and the published version that last changed each one."""

from __future__ import annotations

import pytest

from engine.change_control import ChangeControl
from engine.impact_preview import PreviewRunner
from engine.integration_catalog import CatalogQuery, IntegrationCatalog, catalog_view
from engine.queues import Invalid, NotFound
from tests.queue_rows import as_, prepared

SHIPPED = 19  # catalog/connections/*.yaml
FEEDS = ["ehr-adt-feed", "lab-results-drop", "partner-referrals", "portal-fhir"]


@pytest.fixture
def catalog(engine) -> IntegrationCatalog:
    prepared(engine)
    return IntegrationCatalog(engine)


def reword(engine, connection: str, description: str) -> int:
    """A new version changing one entry's description, through review to publish."""
    control = ChangeControl(engine)
    version = control.create_draft(as_("anna"), f"Reword {connection}")["version"]
    path = f"catalog/connections/{connection}.yaml"
    [document] = [d for d in control.content(version)["documents"] if d["path"] == path]
    control.put_document(version, as_("anna"), path, "connection",
                         {**document["data"], "description": description})
    control.submit(version, as_("anna"))
    control.request_preview(version, as_("anna"), {"limit": 50})
    PreviewRunner(engine).run_pending()
    control.approve(version, as_("abe"))
    control.publish(version, as_("abe"))
    return version


def test_every_published_connection_with_what_compliance_reviews(catalog):
    page = catalog.list(CatalogQuery(), per_page=100)
    assert page.total == SHIPPED == len(page.items)
    assert [entry["id"] for entry in page.items] == sorted(e["id"] for e in page.items)
    lab = next(entry for entry in page.items if entry["id"] == "lab-system")
    assert lab["business_owner"] == {"name": "Priya Raman",
                                     "email": "priya.raman@riverside.example"}
    assert (lab["direction"], lab["format"], lab["classification"]) == (
        "outbound", "hl7v2", "phi")
    assert lab["data_scope_words"].startswith(
        "Message envelope: all fields; Patient: identifiers, names, birth date")
    assert lab["sla"] == {"availability": 99.5, "max_delivery_minutes": 2,
                          "support_hours": "24x7"}
    assert lab["agreement"]["reference"] == "ITS-IFACE-003" and lab["agreement"]["on_file"]
    assert lab["recovery_steps"][0].startswith("1. If the LIS stops acknowledging, check "
                                               "the LIS interface engine and restart")
    assert (lab["complete"], lab["missing"], lab["version"], lab["last_changed"]) == (
        True, [], 1, 1)
    # A feed only sends to Switchboard: it needs no data scope to be complete. The
    # escalations queue has none written, as the approval gate would say if a route
    # sent to it.
    incomplete = {entry["id"]: entry["missing"] for entry in page.items
                  if not entry["complete"]}
    assert incomplete == {"escalations": ["data scope"]}


def test_filters_sort_and_pages(catalog):
    def ids(**args) -> list[str]:
        return [e["id"] for e in catalog.list(CatalogQuery(**args), per_page=100).items]

    assert ids(direction="inbound") == FEEDS
    assert ids(text="priya") == ["lab-results-drop", "lab-system"]  # an owner, any case
    assert ids(text="LAB-SYS") == ["lab-system"]
    assert ids(classification="de-identified") == ["analytics-warehouse"]
    assert ids(complete="no") == ["escalations"]
    assert ids(patient_data="no") == ["analytics-warehouse", "escalations"]
    assert len(ids(patient_data="yes")) == SHIPPED - 2
    assert ids(direction="inbound", sort="-id") == FEEDS[::-1]
    names = [e["name"] for e in catalog.list(CatalogQuery(sort="name"), per_page=100).items]
    assert names == sorted(names, key=str.casefold)
    second = catalog.list(CatalogQuery(), page=2, per_page=5)
    assert (second.total, [e["id"] for e in second.items]) == (SHIPPED, ids()[5:10])
    assert catalog.entries(CatalogQuery(direction="inbound"))[0]["last_changed"] == 1


@pytest.mark.parametrize("args", [{"direction": "sideways"}, {"sort": "owner"},
                                  {"complete": "maybe"}, {"classification": "secret"},
                                  {"patient_data": "some"}])
def test_a_filter_or_sort_it_does_not_know_is_refused_by_name(args):
    with pytest.raises(Invalid, match=next(iter(args))):
        CatalogQuery.of(args)


def test_an_incomplete_entry_says_what_it_lacks():
    entry = catalog_view({"id": "new-lab", "name": "New lab", "direction": "outbound",
                          "transport": "mllp", "endpoint": {"host": "lab", "port": 1},
                          "format": "hl7v2", "classification": "phi"}, 7)
    assert (entry["complete"], entry["missing"]) == (
        False, ["business owner", "technical owner", "data scope", "recovery procedure"])
    assert CatalogQuery(complete="no").admits(entry)
    assert not CatalogQuery(complete="yes").admits(entry)
    assert entry["endpoint"] == "MLLP lab:1"


def test_last_changed_is_the_newest_published_version_that_changed_the_entry(engine, catalog):
    version = reword(engine, "lab-system", "Orders for the hospital laboratory.")
    assert catalog.show("lab-system")["changed_in"] == [version, 1]
    assert catalog.show("bed-board")["changed_in"] == [1]
    ChangeControl(engine).rollback(1, as_("abe"), "the old wording was clearer")
    shown = catalog.show("lab-system")
    assert (shown["version"], shown["last_changed"], shown["changed_in"]) == (
        version + 1, version + 1, [version + 1, version, 1])
    listed = {e["id"]: e["last_changed"] for e in catalog.list(CatalogQuery(),
                                                                per_page=100).items}
    assert listed["lab-system"] == version + 1
    assert {changed for connection, changed in listed.items()
            if connection != "lab-system"} == {1}


def test_a_connection_the_published_catalog_lacks_is_not_found(catalog):
    with pytest.raises(NotFound, match="no connection 'retired-feed'"):
        catalog.show("retired-feed")


def test_each_entry_carries_what_to_check_found_over_the_whole_catalog(catalog):
    """A page or a filter shows an entry's shared agreement even when the other entry
    citing it is not on it."""
    [south] = catalog.list(CatalogQuery(text="clinic-south")).items
    assert [(flag["kind"], flag["reference"], flag["others"]) for flag in south["flags"]] == [
        ("shared-agreement", "ITS-IFACE-012", ["ehr-referral-status"])]
    outreach = catalog.show("patient-outreach")
    assert [flag["kind"] for flag in outreach["flags"]] == ["identifiers-in-limited"]
    assert outreach["patient_data"] is True
    assert catalog.show("lab-system")["flags"] == []
