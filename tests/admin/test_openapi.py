"""The OpenAPI document the app serves: valid OpenAPI 3.1, naming every route of the
app, with a bearer token on every operation but the health probes and itself."""

from __future__ import annotations

from openapi_spec_validator import validate

from admin import create_app
from admin.console import COOKIELESS_BLUEPRINTS
from engine.message_log import PARAMETERS
from tests.queue_rows import ROOT


def test_the_served_document_is_valid_and_covers_every_route(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'sb.db'}",
                      "CONFIG_ROOT": str(ROOT), "TESTING": True})
    try:
        response = app.test_client().get("/api/openapi.json")
        assert response.status_code == 200
        document = response.get_json()
        validate(document)
        # The console's HTML pages are not the API; its role matrix covers them.
        routes = {rule.rule for rule in app.url_map.iter_rules()
                  if rule.endpoint.split(".")[0] in COOKIELESS_BLUEPRINTS}
        assert len(document["paths"]) == len(routes)
        rules = document["paths"]["/api/rule-sets/versions/{version}/approve"]["post"]
        assert rules["security"] == [{"bearer": []}]
        assert {"403", "409"} <= set(rules["responses"])
        for path in ("/api/rule-sets/rollback", "/api/rule-sets/diff",
                     "/api/rule-sets/previews/{preview_id}", "/api/exceptions",
                     "/api/tasks/{task_id}/approve", "/api/messages"):
            assert path in document["paths"], path
        for path, largest in (("/api/tasks/{task_id}", 2**63 - 1),
                              ("/api/rule-sets/versions/{version}", 2**31 - 1)):
            [parameter] = document["paths"][path]["get"]["parameters"]
            assert parameter["schema"] == {"type": "integer", "minimum": 1,
                                           "maximum": largest}, path
        # The message log's search parameters, as engine.message_log takes them.
        listed = {p["name"]: p for p in document["paths"]["/api/messages"]["get"]["parameters"]}
        assert set(listed) == {"search", "page", "per_page"}
        assert all(p["in"] == "query" and not p["required"] for p in listed.values())
        # One exploded object, so that which parameters go together can be said.
        search = listed["search"]
        assert (search["style"], search["explode"]) == ("form", True)
        members = search["schema"]["properties"]
        assert set(members) == set(PARAMETERS)
        assert members["sort"]["enum"] == ["-received_at", "received_at"]
        assert members["path"]["enum"] == ["OBX-3.1", "PV1-3.1", "MSH-4"]
        assert "indexed HL7 path" in members["path"]["description"]
        assert search["schema"]["dependentRequired"] == {
            "patient_authority": ["patient"], "path": ["value"], "value": ["path"]}
        groups = document["paths"]["/api/exceptions/signatures"]["get"]
        query = {p["name"]: p for p in groups["parameters"]}
        assert {"status", "connection", "error_class", "assignee", "signature", "sort",
                "page", "per_page"} <= set(query)
        assert query["sort"]["schema"]["default"] == "-count"
        listed = document["paths"]["/api/exceptions"]["get"]["parameters"]
        assert "-escalate_at" in next(p for p in listed if p["name"] == "sort")["schema"]["enum"]
        assert document["paths"]["/healthz"]["get"]["security"] == []
        assert document["paths"]["/ingest/{connection_id}"]["post"]["security"] == [
            {"sourceToken": []}]
    finally:
        app.extensions["switchboard"].close()
