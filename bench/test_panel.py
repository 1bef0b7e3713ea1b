"""Benchmark: the rule studio's test panel, over HTTP. Target: median under 150 ms
from posting a message to having its whole explanation.

A fresh SQLite store gets the shipped configuration (rules/ and catalog/, published
as version 1) and an analyst with a password. The web process is started as the
Procfile starts it (gunicorn, two workers, ``admin:create_app()``); the analyst signs
in through the console's password form, creates a draft of the published rules
through the REST API, then posts one ~3 KB HL7 v2 ORU^R01 (the corpus's glucose
result, then 15 more OBX segments, two of them flagged, some with a note) to
``/test-panel/<draft>/run`` as htmx does, ``--warm-up`` times and then
``--requests`` times, one at a time. Each is timed from the request to the last byte
of the answer, and the answer is checked for the explanation (the abnormal row's
evidence, in words). The figures are the median and p95; the draft is compiled once,
on the first post (the warm-up), and kept by its content hash after that.

    python -m bench.test_panel [--requests 200] [--warm-up 20] [--json FILE] [--keep]
"""

from __future__ import annotations

import argparse
import html
import http.cookiejar
import json
import os
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench.mllp_load import percentile
from bench.serving import (
    ROOT,
    BenchError,
    Processes,
    terminate_on_sigterm,
    wait_ready,
    workspace,
)
from tests.ports import free_port

LABEL = "test_panel"
TARGET_MEDIAN_MS = 150.0
ANALYST, PASSWORD = "bench-analyst", "a long bench password, not a real one"
CORPUS_ORU = ROOT / "tests/corpus/hl7v2/fhir-converter/ORU-R01-RMGEAD.hl7"
EVIDENCE = "OBX-8 (Abnormal Flags) is one of"
_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
RESULTS = [  # (code, name, value, units, range, flag)
    ("2823-3", "Potassium", "6.9", "mmol/L", "3.5-5.1", "HH"),
    ("2951-2", "Sodium", "139", "mmol/L", "136-145", "N"),
    ("2075-0", "Chloride", "101", "mmol/L", "98-107", "N"),
    ("2028-9", "Carbon dioxide", "24", "mmol/L", "22-29", "N"),
    ("3094-0", "Urea nitrogen", "31", "mg/dL", "7-20", "H"),
    ("2160-0", "Creatinine", "1.1", "mg/dL", "0.6-1.3", "N"),
    ("17861-6", "Calcium", "9.4", "mg/dL", "8.6-10.3", "N"),
    ("2777-1", "Phosphate", "3.6", "mg/dL", "2.5-4.5", "N"),
    ("19123-9", "Magnesium", "2.0", "mg/dL", "1.7-2.2", "N"),
    ("1751-7", "Albumin", "4.1", "g/dL", "3.5-5.0", "N"),
    ("2885-2", "Protein", "7.0", "g/dL", "6.0-8.3", "N"),
    ("1975-2", "Bilirubin", "0.8", "mg/dL", "0.1-1.2", "N"),
    ("6768-6", "Alkaline phosphatase", "88", "U/L", "44-147", "N"),
    ("1742-6", "Alanine aminotransferase", "25", "U/L", "7-56", "N"),
    ("1920-8", "Aspartate aminotransferase", "22", "U/L", "10-40", "N"),
]


def message() -> str:
    """The corpus ORU with more results after its glucose: about 3 KB, as pasted text
    (one segment a line)."""
    lines = CORPUS_ORU.read_bytes().decode().replace("\r\n", "\r").strip("\r").split("\r")
    for number, (code, name, value, units, span, flag) in enumerate(RESULTS, start=2):
        lines.append(f"OBX|{number}|NM|{code}^{name}^LN||{value}|{units}|{span}|{flag}|||F|||"
                     f"20020215093000+0600||Riverside core laboratory, chemistry bench 2")
        if number % 2:
            lines.append(f"NTE|{number}||Analysed on the chemistry line; {name.lower()} "
                         "reported by the laboratory information system")
    return "\n".join(lines) + "\n"


class Client:
    """One browser: a cookie jar, the CSRF token of the last page, loopback only."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPCookieProcessor(jar))
        self.token = ""

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=60) as response:
            page = response.read().decode()
        found = _CSRF.search(page)
        self.token = found.group(1) if found else self.token
        return page

    def post(self, path: str, form: dict[str, str],
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        data = urllib.parse.urlencode({"csrf_token": self.token, **form}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        with self.opener.open(request, timeout=60) as response:
            return int(response.status), response.read()


def prepare(url: str) -> str:
    """Migrate, publish the shipped configuration, add the analyst; their API token."""
    from engine.rule_versions import bootstrap
    from engine.security.users import UserStore
    from engine.store.database import open_engine
    from engine.store.migrate import upgrade

    engine = open_engine(url)
    try:
        upgrade(engine)
        bootstrap(engine, ROOT)
        users = UserStore(engine)
        token = users.add(ANALYST, "analyst", "bench", PASSWORD)
        users.close()
        assert token is not None
        return token
    finally:
        engine.dispose()


def start_web(processes: Processes, url: str, work: Path) -> tuple[Any, int, float]:
    """gunicorn as the Procfile runs it, on the shipped configuration and a free port;
    (process, port, seconds until it answered)."""
    port = free_port()
    env = dict(os.environ, SWITCHBOARD_DATABASE_URL=url, SWITCHBOARD_CONFIG=str(ROOT),
               SWITCHBOARD_INSTANCE=str(work / "instance"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")])))
    gunicorn = Path(sys.executable).with_name("gunicorn")
    web = processes.start("web", [str(gunicorn), "--bind", f"127.0.0.1:{port}",
                                  "--workers", "2", "admin:create_app()"],
                          work / "web.log", cwd=ROOT, env=env)
    return web, port, wait_ready(web, f"http://127.0.0.1:{port}/healthz")


def sign_in(client: Client) -> None:
    client.get("/sign-in/")
    client.post("/sign-in/", {"username": ANALYST, "password": PASSWORD})
    if "Sign out" not in client.get("/test-panel/"):
        raise BenchError("the analyst could not sign in to the console")


def create_draft(client: Client, token: str) -> int:
    request = urllib.request.Request(
        client.base + "/api/rule-sets/versions", method="POST",
        data=json.dumps({"summary": "test panel benchmark"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with client.opener.open(request, timeout=60) as response:
        return int(json.loads(response.read())["version"])


def timed_run(client: Client, version: int, text: str) -> float:
    """Milliseconds from the post to the last byte of the explanation."""
    started = time.perf_counter()
    status, body = client.post(f"/test-panel/{version}/run", {"message": text},
                               {"HX-Request": "true"})
    elapsed = (time.perf_counter() - started) * 1e3
    if status != 200 or EVIDENCE not in html.unescape(body.decode()):
        raise BenchError(f"the panel answered {status} without the explanation")
    return elapsed


def measure(args: argparse.Namespace, work: Path, processes: Processes) -> dict[str, Any]:
    url = f"sqlite:///{work / 'switchboard.db'}"
    token = prepare(url)
    web, port, ready = start_web(processes, url, work)
    try:
        client = Client(port)
        sign_in(client)
        version = create_draft(client, token)
        client.get(f"/test-panel/{version}")
        text = message()
        first = [timed_run(client, version, text) for _ in range(args.warm_up)]
        timings = sorted(timed_run(client, version, text) for _ in range(args.requests))
    finally:
        processes.stop(web)
    return {"message_bytes": len(text.encode()), "requests": args.requests,
            "warm_up": args.warm_up, "web_ready_s": round(ready, 2),
            "first_ms": round(first[0], 1) if first else None,
            "median_ms": round(statistics.median(timings), 2),
            "p95_ms": round(percentile(timings, 95) or 0.0, 2),
            "max_ms": round(timings[-1], 2)}


def report(result: dict[str, Any]) -> None:
    verdict = "meets" if result["median_ms"] < TARGET_MEDIAN_MS else "MISSES"
    print(f"Test panel over HTTP: a {result['message_bytes']:,}-byte ORU^R01 explained "
          f"against a draft of the shipped rules (target: median < {TARGET_MEDIAN_MS:g} ms)")
    print(f"  median {result['median_ms']:.1f} ms  p95 {result['p95_ms']:.1f} ms  "
          f"max {result['max_ms']:.1f} ms over {result['requests']} posts, after "
          f"{result['warm_up']} (the first, compiling the draft: {result['first_ms']} ms)"
          f"  {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the logs and the store")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warm_up < 1:
        parser.error("--requests and --warm-up must be at least 1")
    terminate_on_sigterm()
    processes = Processes(LABEL)
    try:
        with workspace(args.keep, LABEL) as work:
            try:
                result = measure(args, work, processes)
            finally:
                processes.stop_all()
    except KeyboardInterrupt:
        print(f"{LABEL}: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    report(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["median_ms"] < TARGET_MEDIAN_MS else 1


if __name__ == "__main__":
    sys.exit(main())
