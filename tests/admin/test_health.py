"""/healthz, /readyz and /metrics carry no PHI and no identifiers (issue 17): after
traffic that names a patient, a control id, free text, a user and a peer, none of it
appears in what the probes answer. ``switchboard serve`` runs on real sockets."""

from __future__ import annotations

import re

from engine.connectors.mllp.client import BlockingMllpClient
from engine.hl7v2 import parse
from engine.security.users import UserStore
from engine.store.database import open_engine
from tests.admin.test_probe_access import PROBES, config, get
from tests.in_process_serve import serving
from tests.serve_process import api_call
from tests.waiting import wait_until

MRN, NAME, CONTROL_ID = "MRN-ZX4471", ("QUIMBY", "ZEPHYRINE"), "CTRL-QX81"
NOTE = "Marmalade intolerance noted by Dr Ostrander"
REJECTED_MRN, USER = "MRN-RJ5519", "quimby.zed"
REGISTRATION = (f"MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500||ADT^A04^ADT_A01|"
                f"{CONTROL_ID}|P|2.5.1\rEVN|A04|20261124101500\r"
                f"PID|1||{MRN}^^^RIVERSIDE^MR||{NAME[0]}^{NAME[1]}||19800101|F|||"
                f"12 Orchard Lane^^Exeter\rPV1|1|O\rNTE|1||{NOTE}\r").encode()
# No MSH-9: read as far as MSH-10, then refused (AR).
UNREADABLE = (f"MSH|^~\\&|EHR|RIVERSIDE|SB|RIVERSIDE|20261124101500|||CTRL-RJ1|P|2.5.1\r"
              f"PID|1||{REJECTED_MRN}^^^RIVERSIDE^MR||{NAME[0]}^{NAME[1]}\r").encode()


def _metric(port: int, name: str) -> float:
    text = get(port, "/metrics")[2].decode()
    return sum(float(value) for value in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.M))


def test_the_probes_name_no_patient_message_user_or_peer(tmp_path):
    folder, url = config(tmp_path)
    store = open_engine(url)
    with serving(folder, url, health_port=0) as serve:
        users = UserStore(store)
        operator = users.add("olive", "operator", "test")
        clinician = users.add(USER, "clinician", "test")
        assert operator and clinician
        with BlockingMllpClient("127.0.0.1", serve.mllp, timeout=30) as client:
            assert parse(client.send(REGISTRATION)).get("MSA-1") == "AA"
            assert parse(client.send(UNREADABLE)).get("MSA-1") == "AR"
        # The user, in the audit trail's security events: a denial and a bad token.
        assert get(serve.web, "/api/exceptions/1/retry", clinician, "POST")[0] == 403
        assert get(serve.web, f"/api/messages?patient={MRN}", "not-a-token")[0] == 401
        assert _metric(serve.health, "switchboard_security_events_total") >= 1
        wait_until(lambda: _metric(serve.health, "switchboard_routed_total") >= 1,
                   what="the registration to be routed")
        wait_until(lambda: _metric(serve.health, "switchboard_retried_total") >= 1,
                   what="a delivery to the closed sink to be retried")
        # The traffic did carry them: the store has the message by its control id.
        found = api_call(serve.web, operator, f"/api/messages?control_id={CONTROL_ID}")
        assert found["total"] == 1
        answers = {path: get(serve.health, path) for path in PROBES}
    store.dispose()
    assert all(status in (200, 503) for status, _, _ in answers.values()), answers
    assert b"switchboard_received_total" in answers["/metrics"][2]
    text = b"\n".join(body for _, _, body in answers.values()).decode()
    for identifier in (MRN, "ZX4471", *NAME, "Orchard", CONTROL_ID, "QX81", "CTRL-RJ1",
                       "Marmalade", "Ostrander", REJECTED_MRN, USER, "olive", "127.0.0.1",
                       operator, clinician, "not-a-token"):
        assert identifier.lower() not in text.lower(), identifier
