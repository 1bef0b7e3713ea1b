"""The web process over real HTTP on 127.0.0.1, on SQLite and PostgreSQL: bearer-token
authentication and roles on every API route, HTTP ingest per source connection, the
message timeline and the exception queue, health and metrics."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from admin import create_app
from engine.hl7v2 import parse
from engine.log_format import QUIETED, quiet_libraries
from engine.pipeline import Pipeline
from engine.rule_versions import bootstrap
from engine.security.users import UserStore
from engine.store.models import Delivery, JournalEntry
from tests.samples import CORPUS
from tests.store_template import migrated

ROOT = Path(__file__).resolve().parents[2]
PARTNER_TOKEN = "partner-secret-token-for-tests"
PORTAL_TOKEN = "portal-secret-token-for-tests"
PORTAL_BUNDLE = {
    "resourceType": "Bundle", "type": "collection",
    "identifier": {"system": "urn:portal:submissions", "value": "S-1001"},
    "meta": {"lastUpdated": "2026-11-24T09:00:00+00:00"},
    "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111", "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MRN-7731"}],
            "name": [{"family": "Quintero", "given": ["Rosa"]}],
            "gender": "female", "birthDate": "1961-04-02"}},
        {"fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222", "resource": {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                 "display": "Heart rate"}]},
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "effectiveDateTime": "2026-11-24T08:55:00+00:00",
            "valueQuantity": {"value": 128, "unit": "/min"}}},
    ],
}


class Web:
    def __init__(self, base: str, tokens: dict[str, str]) -> None:
        self.base = base
        self.tokens = tokens

    def call(self, method: str, path: str, *, as_user: str | None = None,
             token: str | None = None, body: bytes | None = None,
             content_type: str | None = None) -> tuple[int, dict, dict]:
        request = urllib.request.Request(self.base + path, data=body, method=method)
        bearer = token or (self.tokens[as_user] if as_user else None)
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, dict(response.headers), _json(raw)
        except urllib.error.HTTPError as error:
            with error:  # closed now: a leaked socket fails whichever test collects it
                return error.code, dict(error.headers), _json(error.read())


def _json(raw: bytes) -> dict:
    try:
        return json.loads(raw)
    except ValueError:
        return {"text": raw.decode()}


@pytest.fixture
def web(engine, monkeypatch) -> Iterator[Web]:
    migrated(engine)
    bootstrap(engine, ROOT)
    users = UserStore(engine)
    tokens = {name: users.add(name, role, "test")
              for name, role in (("olive", "operator"), ("cora", "clinician"),
                                 ("adam", "admin"))}
    monkeypatch.setenv("SWITCHBOARD_PARTNER_REFERRALS_TOKEN", PARTNER_TOKEN)
    monkeypatch.setenv("SWITCHBOARD_PORTAL_FHIR_TOKEN", PORTAL_TOKEN)
    url = engine.url.render_as_string(hide_password=False)
    app = create_app({"DATABASE_URL": url, "CONFIG_ROOT": str(ROOT), "TESTING": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Web(f"http://127.0.0.1:{server.server_port}", tokens)
    finally:
        server.shutdown()
        app.extensions["switchboard"].close()


def post_hl7(web: Web, name: str, token: str = PARTNER_TOKEN):
    return web.call("POST", "/ingest/partner-referrals", token=token,
                    body=(CORPUS / name).read_bytes(), content_type="application/hl7-v2")


def test_every_api_route_needs_a_token_and_a_role(web):
    for path in ("/api/messages", "/api/exceptions", "/api/messages/nope"):
        status, headers, body = web.call("GET", path)
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
        assert web.call("GET", path, token="sb_not-a-token")[0] == 401
        status, _, body = web.call("GET", path, as_user="cora")  # clinician
        assert status == 403 and "operator" in body["reason"]
    assert web.call("GET", "/api/messages", as_user="olive")[0] == 200
    assert web.call("GET", "/api/messages", as_user="adam")[0] == 200


def test_http_ingest_journals_and_the_api_shows_the_timeline(web, engine):
    status, _, body = post_hl7(web, "fhir-converter/REF-I12-01.hl7")
    assert status == 202 and body["status"] == "received"
    message_id = body["message_id"]
    again = post_hl7(web, "fhir-converter/REF-I12-01.hl7")
    assert again[0] == 202 and again[2]["status"] == "duplicate"
    Pipeline(engine).run_once()
    status, _, detail = web.call("GET", f"/api/messages/{message_id}", as_user="olive")
    assert status == 200
    assert [s["stage"] for s in detail["timeline"]][:2] == ["journaled", "parsed"]
    assert {d["destination"] for d in detail["deliveries"]} == {
        "referral-tool", "analytics-warehouse"}
    # Issue 14, item 5: each delivery says why it waits and when it goes again.
    for delivery in detail["deliveries"]:
        assert {"status", "attempts", "error_class", "last_error",
                "next_attempt_at"} <= set(delivery)
    assert detail["tasks"][0]["queue"] == "referral-intake"
    assert "McWILLIAMS" not in json.dumps(detail)  # no message content in the API
    listed = web.call("GET", "/api/messages?type=REF&status=routed", as_user="olive")[2]
    assert [m["message_id"] for m in listed["items"]] == [message_id]
    assert listed["total"] == 1


def test_the_api_finds_messages_by_a_delivery_s_status(web, engine):
    message_id = post_hl7(web, "fhir-converter/REF-I12-01.hl7")[2]["message_id"]
    Pipeline(engine).run_once()
    with engine.begin() as connection:
        connection.execute(Delivery.__table__.update().where(
            Delivery.destination == "referral-tool").values(status="dead"))

    def listed(query: str) -> list[str]:
        return [m["message_id"] for m in web.call(
            "GET", f"/api/messages?{query}", as_user="olive")[2]["items"]]

    assert listed("destination=referral-tool&delivery_status=failed") == [message_id]
    assert listed("destination=analytics-warehouse&delivery_status=failed") == []
    status, _, refused = web.call("GET", "/api/messages?delivery_status=lost", as_user="olive")
    assert status == 400 and "unknown delivery_status" in refused["reason"]


def post_fhir(web: Web, document: dict, content_type: str = "application/fhir+json"):
    return web.call("POST", "/ingest/portal-fhir", token=PORTAL_TOKEN,
                    body=json.dumps(document).encode(), content_type=content_type)


def test_fhir_ingest_journals_normalises_routes_and_encodes(web, engine):
    status, _, body = post_fhir(web, PORTAL_BUNDLE)
    assert status == 202 and body["status"] == "received"
    message_id = body["message_id"]
    resent = json.loads(json.dumps(PORTAL_BUNDLE))
    resent["meta"]["lastUpdated"] = "2026-11-24T09:05:00+00:00"  # a re-send, not new
    again = post_fhir(web, resent)
    assert again[0] == 202 and again[2]["status"] == "duplicate"
    changed = json.loads(json.dumps(PORTAL_BUNDLE))
    changed["entry"][1]["resource"]["valueQuantity"]["value"] = 64
    conflict = post_fhir(web, changed)
    assert conflict[0] == 202 and conflict[2]["status"] == "conflict"
    assert Pipeline(engine).run_once() == 1
    detail = web.call("GET", f"/api/messages/{message_id}", as_user="olive")[2]
    assert detail["status"] == "routed"
    assert [s["stage"] for s in detail["timeline"]] == [
        "journaled", "parsed", "normalised", "routed", "minimised", "encoded",
        "intents_recorded"]
    deliveries = {d["destination"]: d for d in detail["deliveries"]}
    assert "analytics-warehouse" in deliveries
    with Session(engine) as session:
        row = session.scalars(select(Delivery).where(
            Delivery.destination == "analytics-warehouse")).one()
        entry = session.scalars(select(JournalEntry).where(
            JournalEntry.message_id == message_id)).one()
    assert (entry.format, entry.message_type) == ("fhir-r4", "Bundle")
    assert row.media_type == "application/json"
    encoded = json.loads(row.body)
    assert encoded == row.payload  # canonical JSON of the minimised record
    assert encoded["results"][0]["code"] == "8867-4"
    assert "MRN-7731" not in row.body and "Quintero" not in row.body  # de-identified


def test_fhir_ingest_rejects_with_reasons_and_no_content(web):
    """Each answered with an OperationOutcome (tests/admin/test_fhir_ingest.py has the
    statuses in full) and journaled as rejected, the wrong media type too."""
    broken = json.loads(json.dumps(PORTAL_BUNDLE))
    broken["entry"][0]["resource"]["birthDate"] = "02/04/1961-SECRET"
    status, _, body = post_fhir(web, broken)
    assert status == 422 and body["extension"][0]["valueString"]
    assert body["issue"][0]["expression"] == ["Bundle.entry[0].resource.birthDate"]
    assert "SECRET" not in json.dumps(body)
    status, _, body = post_fhir(web, {"resourceType": "Questionnaire"})
    assert status == 422 and "Questionnaire" in body["issue"][0]["diagnostics"]
    status, _, body = web.call("POST", "/ingest/portal-fhir", token=PORTAL_TOKEN,
                               body=b"{not json", content_type="application/fhir+json")
    assert status == 400 and "not JSON" in body["issue"][0]["diagnostics"]
    status, _, body = web.call("POST", "/ingest/portal-fhir", token=PORTAL_TOKEN,
                               body=b"MSH|^~\\&|", content_type="application/hl7-v2")
    assert status == 415 and "fhir-r4" in body["issue"][0]["diagnostics"]
    exceptions = web.call("GET", "/api/exceptions", as_user="olive")[2]
    assert exceptions["total"] == 4
    assert {item["connection"] for item in exceptions["items"]} == {"portal-fhir"}
    assert "SECRET" not in json.dumps(exceptions)


MALFORMED_AUTHORIZATION = {
    "non-ASCII, UTF-8": "Bearer partner-secret-tökén".encode(),
    "non-ASCII, Latin-1": b"Bearer partner-secret-t\xf6k\xe9n",
    "non-ASCII, token prefix": "Bearer sb_ünïcode".encode(),
    "control character": b"Bearer partner-secret\x01token",
    "delete character": b"Bearer partner-secret\x7ftoken",
    "escape sequence": b"Bearer \x1b[2Jpartner",
    "over-long": b"Bearer sb_" + b"A" * 8_000,
    "empty": b"Bearer ",
    "scheme only": b"Bearer",
    "blank": b"",
    "wrong scheme": b"Basic cGFydG5lcjpzZWNyZXQ=",
    "no scheme": PARTNER_TOKEN[:8].encode(),
}


@pytest.mark.parametrize("method, path", [
    ("POST", "/ingest/partner-referrals"), ("GET", "/api/messages"),
    ("POST", "/api/tasks/1/approve"),
])
def test_a_malformed_bearer_token_is_401_with_a_reason(web, method, path):
    """Issue 13, defect 9: a non-ASCII token made HTTP ingest answer 500 (its token
    comparison raised). Sent as raw bytes over a socket, as a client could."""
    answers = {}
    for case, authorization in MALFORMED_AUTHORIZATION.items():
        connection = http.client.HTTPConnection(web.base.removeprefix("http://"), timeout=30)
        try:
            connection.putrequest(method, path)
            connection.putheader("Authorization", authorization)
            connection.putheader("Content-Type", "application/hl7-v2")
            connection.putheader("Content-Length", "3")
            connection.endheaders(b"MSH")
            response = connection.getresponse()
            body = _json(response.read())
            answers[case] = (response.status, bool(body.get("reason")),
                             "Bearer" in (response.getheader("WWW-Authenticate") or ""))
        finally:
            connection.close()
    assert answers == {case: (401, True, True) for case in MALFORMED_AUTHORIZATION}


def test_ingest_rejects_with_reasons(web):
    assert post_hl7(web, "fhir-converter/REF-I12-01.hl7", token="wrong")[0] == 401
    status, _, body = web.call("POST", "/ingest/partner-referrals", token=PARTNER_TOKEN,
                               body=b"PID|1||123", content_type="application/hl7-v2")
    assert status == 400 and "must start with an MSH segment" in body["reason"]
    assert body["message_id"]
    status, _, body = web.call("POST", "/ingest/partner-referrals", token=PARTNER_TOKEN,
                               body=b"x", content_type="text/plain")
    assert status == 415
    exceptions = web.call("GET", "/api/exceptions?error_class=validation", as_user="olive")[2]
    assert exceptions["total"] == 1
    assert exceptions["items"][0]["connection"] == "partner-referrals"
    assert exceptions["items"][0]["owner_role"] == "analyst"  # the validation policy's
    assert "Partners retry" in exceptions["items"][0]["recovery_procedure"]


def test_ingest_says_nothing_about_a_connection_before_a_valid_token(web, monkeypatch):
    """Issue 14, item 12: without a valid token, an unknown id answered 404, a known
    one whose token variable is unset 403, and the others 401, so a caller could tell
    which connections exist. Every such request is one 401, whatever the id."""
    monkeypatch.delenv("SWITCHBOARD_PORTAL_FHIR_TOKEN")
    answers = {}
    for case, connection, token in (
            ("unknown connection", "no-such-feed", PARTNER_TOKEN),
            ("unknown, no token", "no-such-feed", None),
            ("outbound connection", "ehr-fhir", PARTNER_TOKEN),
            ("token variable unset", "portal-fhir", PARTNER_TOKEN),
            ("token variable unset, no token", "portal-fhir", None),
            ("wrong token", "partner-referrals", "wrong"),
            ("no token", "partner-referrals", None)):
        status, headers, body = web.call("POST", f"/ingest/{connection}", token=token,
                                         body=b"MSH", content_type="application/hl7-v2")
        answers[case] = (status, body, "Bearer" in headers.get("WWW-Authenticate", ""))
    first = answers["unknown connection"]
    assert first[0] == 401 and first[2]
    assert answers == {case: first for case in answers}
    # A valid token still reaches the connection's own checks.
    assert web.call("POST", "/ingest/partner-referrals", token=PARTNER_TOKEN, body=b"x",
                    content_type="text/plain")[0] == 415


def test_ingest_rejects_a_byte_invalid_in_pid_3_with_its_location(web):
    """Defect 2: 0xFF in PID-3 answered 500 over HTTP ingest. It is a 400 that names
    the field, without quoting it, and the message is journaled as rejected."""
    message = (CORPUS / "fhir-converter/REF-I12-01.hl7").read_bytes()
    pid_3 = parse(message).get_raw("PID-3[1].1").encode()
    bad = message.replace(b"|" + pid_3, b"|" + pid_3[:2] + b"\xff" + pid_3[2:], 1)
    status, _, body = web.call("POST", "/ingest/partner-referrals", token=PARTNER_TOKEN,
                               body=bad, content_type="application/hl7-v2")
    assert status == 400, body
    assert "PID-3" in body["reason"] and "not valid" in body["reason"]
    assert pid_3.decode() not in body["reason"]
    messages = web.call("GET", "/api/messages", as_user="olive")[2]["items"]
    assert [m["status"] for m in messages] == ["rejected"]


def test_pagination_and_bad_parameters(web):
    for number in range(3):
        message = parse((CORPUS / "fhir-converter/REF-I12-01.hl7").read_bytes())
        message.set("MSH-10", f"PAGE{number}")
        web.call("POST", "/ingest/partner-referrals", token=PARTNER_TOKEN,
                 body=message.encode(), content_type="application/hl7-v2")
    first = web.call("GET", "/api/messages?per_page=2&page=1", as_user="olive")[2]
    second = web.call("GET", "/api/messages?per_page=2&page=2", as_user="olive")[2]
    assert (first["total"], len(first["items"]), len(second["items"])) == (3, 2, 1)
    assert [m["control_id"] for m in first["items"] + second["items"]] == [
        "PAGE2", "PAGE1", "PAGE0"]
    assert web.call("GET", "/api/messages?page=0", as_user="olive")[0] == 400
    status, _, body = web.call("GET", "/api/messages?since=2026-01-01", as_user="olive")
    assert status == 400 and "UTC offset" in body["reason"]


def test_the_api_searches_by_the_parameters_the_message_log_takes(web, engine):
    ingest = "/ingest/partner-referrals"
    for number, code in enumerate(("2345-7", "718-7", "2345-7")):
        message = parse((CORPUS / "fhir-converter/ORU-R01-01.hl7").read_bytes())
        message.set("MSH-10", f"LAB{number}")
        message.set("OBX-3.1", code)
        assert web.call("POST", ingest, token=PARTNER_TOKEN, body=message.encode(),
                        content_type="application/hl7-v2")[0] == 202
    Pipeline(engine).run_once()
    status, _, body = web.call("GET", "/api/messages?path=OBX-3.1&value=2345-7"
                               "&sort=received_at", as_user="olive")
    assert status == 200
    assert [m["control_id"] for m in body["items"]] == ["LAB0", "LAB2"]
    assert (body["total"], body["total_exact"]) == (2, True)
    assert web.call("GET", "/api/messages?control_id=LAB1", as_user="olive")[2]["total"] == 1
    status, _, body = web.call("GET", "/api/messages?colour=red", as_user="olive")
    assert status == 400 and "unknown filter 'colour'" in body["reason"]
    status, _, body = web.call("GET", "/api/messages?path=OBX-5&value=1", as_user="olive")
    assert status == 400 and "OBX-3.1, PV1-3.1, MSH-4" in body["hint"]


def test_health_and_metrics_need_no_token(web):
    assert web.call("GET", "/healthz")[2] == {"status": "alive"}
    status, _, body = web.call("GET", "/readyz")
    assert status == 200 and body["checks"] == {"database": True, "http_ingest": True}
    post_hl7(web, "fhir-converter/REF-I12-01.hl7")
    text = web.call("GET", "/metrics")[2]["text"]
    assert 'switchboard_received_total{connection="partner-referrals"}' in text


def test_each_request_is_logged_without_its_query_string(web, caplog):
    quiet_libraries()  # as switchboard serve and web configure their logging
    try:
        with caplog.at_level(logging.INFO):
            status, _, _ = web.call(
                "GET", "/api/messages?patient=MRN-7731&patient_authority=X", as_user="olive")
    finally:
        for name in QUIETED:
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert status == 200
    (record,) = [r for r in caplog.records if r.name == "switchboard.web"]
    assert (record.method, record.path, record.status) == ("GET", "/api/messages", 200)
    assert "MRN-7731" not in caplog.text
    assert all("MRN-7731" not in str(vars(r)) for r in caplog.records)
