"""Benchmark: the compiled, indexed route evaluator against the naive one, in one run.

1,000 generated rows over 22 message type/event combinations, each with 3-6 conditions
in a realistic mix (routing on the sending facility or application with eq/in, regexes
on codes, numeric and date comparisons, ``any`` over lists such as
``results[*].abnormal_flags[*]``, presence tests, the odd nested any/not). A seeded
stream of canonical records is routed by ``RouteTable.evaluate`` and by
``RouteTable.evaluate_naive`` (every row in order, conditions interpreted); both must
give the same decisions before anything is timed. The contenders take turns within every
round, so the machine's noise hits them alike; the report gives the median messages per
second and the median of the per-round ratios.

    python -m bench.route_eval [--rounds N] [--seconds S] [--json FILE]
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

from bench import harness
from engine.rules.route_table import RouteTable, compile_routes

SEED = 20240601
ROWS = 1000
RECORDS = 2000
COMBOS = [
    ("ADT", "A01"), ("ADT", "A02"), ("ADT", "A03"), ("ADT", "A04"), ("ADT", "A05"),
    ("ADT", "A08"), ("ADT", "A11"), ("ADT", "A13"), ("ADT", "A40"), ("ORU", "R01"),
    ("ORM", "O01"), ("OML", "O21"), ("SIU", "S12"), ("SIU", "S13"), ("SIU", "S14"),
    ("SIU", "S15"), ("REF", "I12"), ("REF", "I14"), ("MDM", "T02"), ("MDM", "T11"),
    ("VXU", "V04"), ("DFT", "P03"),
]
# How often each combination arrives: results and updates dominate real feeds.
TRAFFIC = [4, 1, 2, 1, 1, 8, 1, 1, 1, 14, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1]
FACILITIES = ["NORTH", "SOUTH", "EAST", "WEST", "CITY", "CHILDRENS", "ONCOLOGY", "REHAB",
              "CLINIC-A", "CLINIC-B", "CLINIC-C", "HOSPICE"]
APPLICATIONS = ["LAB", "RIS", "PAS", "SCHED", "PORTAL", "HIE", "PHARM", "DOCS"]
FLAGS = ["H", "HH", "L", "LL", "A", "AA", "N"]
CODES = ["GLU", "K", "NA", "CREAT", "HGB", "WBC", "PLT", "TROP", "INR", "TSH", "CRP", "ALT"]
CLASSES = ["inpatient", "outpatient", "emergency", "preadmit", "recurring"]
SERVICES = ["MED", "SUR", "CAR", "PED", "OBS", "ONC", "PSY"]
DESTINATIONS = ["ehr-fhir", "lab-archive", "hie-out", "portal", "billing", "pharmacy",
                "registry", "radiology", "outreach", "research", "public-health", "dw"]


# ---- rows ---------------------------------------------------------------------------------


def leaf(path: str, op: str, value: Any = None, quantifier: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"field": path, "op": op}
    if value is not None:
        found["value"] = value
    if quantifier:
        found["quantifier"] = quantifier
    return found


def routing_key(rng: random.Random) -> dict[str, Any]:
    """What real tables route on first: who sent the message."""
    if rng.random() < 0.75:
        return leaf("message.sending_facility", "eq", rng.choice(FACILITIES))
    if rng.random() < 0.5:
        return leaf("message.sending_facility", "in", rng.sample(FACILITIES, 2))
    return leaf("message.sending_application", "eq", rng.choice(APPLICATIONS))


def clinical_test(rng: random.Random, message_type: str | None) -> dict[str, Any]:
    """One condition on the clinical content, chosen to suit the message type."""
    pools: dict[str | None, list[Callable[[], dict[str, Any]]]] = {
        "ORU": [
            lambda: leaf("results[*].abnormal_flags[*]", "in", rng.sample(FLAGS[:6], 3)),
            lambda: leaf("results[*].code", "matches", f"^({'|'.join(rng.sample(CODES, 3))})$"),
            lambda: leaf("results[*].value.number", "ge", rng.choice([5, 7.5, 10, 100, 250])),
            lambda: leaf("results[*].status", "in", ["F", "C"], "all"),
            lambda: leaf("results[*].observed_at", "ge", "2024-03-01T00:00"),
        ],
        "ADT": [
            lambda: leaf("encounter.class", "in", rng.sample(CLASSES, 2)),
            lambda: leaf("encounter.hospital_service", "eq", rng.choice(SERVICES)),
            lambda: leaf("encounter.admit_at", "ge", "2024-02-15T08:00+01:00"),
            lambda: leaf("patient.deceased", "eq", True),
            lambda: leaf("patient.addresses[*].state", "ne", rng.choice(["MA", "NY", "CA"])),
        ],
        "SIU": [
            lambda: leaf("appointments[*].start", "lt", "2024-06-01"),
            lambda: leaf("appointments[*].duration_minutes", "gt", rng.choice([15, 30, 60])),
            lambda: leaf("appointments[*].type.code", "in", ["NEW", "FU", "PROC"]),
        ],
        "ORM": [
            lambda: leaf("orders[*].priority", "eq", rng.choice(["S", "A", "R"])),
            lambda: leaf("orders[*].code", "matches", f"^({'|'.join(rng.sample(CODES, 4))})"),
        ],
        "REF": [
            lambda: leaf("referrals[*].priority", "eq", "urgent"),
            lambda: leaf("referrals[*].category", "in", ["cardiology", "oncology", "ortho"]),
        ],
        "MDM": [lambda: leaf("documents[*].type", "in", ["DS", "CN", "OP", "RAD"])],
    }
    common: list[Callable[[], dict[str, Any]]] = [
        lambda: leaf("patient.birth_date", rng.choice(["lt", "ge"]),
                     rng.choice(["1950-01-01", "2006-06-30", "2018"])),
        lambda: leaf("patient.identifiers[*].value", "exists"),
        lambda: leaf("patient.primary_facility", "in", rng.sample(FACILITIES, 3)),
        lambda: leaf("patient.gender", "eq", rng.choice(["female", "male"])),
        lambda: leaf("message.processing_id", "eq", "P"),
        lambda: {"not": leaf("patient.names[*].family", "matches", "^(TEST|ZZZ)")},
        lambda: {"any": [leaf("encounter.class", "eq", "emergency"),
                         leaf("patient.birth_date", "ge", "2010-01-01")]},
    ]
    pool = pools.get(message_type, []) * 2 + common
    return rng.choice(pool)()


def generate_rows(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows = []
    for number in range(count):
        message_type, event = rng.choice(COMBOS)
        draw = rng.random()
        row: dict[str, Any] = {"id": f"row-{number}"}
        if draw < 0.90:
            siblings = [e for t, e in COMBOS if t == message_type]
            events = [event] if rng.random() < 0.8 else sorted({event, rng.choice(siblings)})
            row["match"] = {"type": message_type, "event": events}
        elif draw < 0.98:
            row["match"] = {"type": message_type}
        else:
            message_type = None
        tests = [routing_key(rng)] if rng.random() < 0.85 else []
        count = rng.randint(3, 6)
        while len(tests) < count:
            tests.append(clinical_test(rng, message_type))
        row["when"] = {"all": tests}
        row["to"] = rng.sample(DESTINATIONS, rng.randint(1, 2))
        if rng.random() < 0.05:
            row["checkpoint"] = {"mode": rng.choice(["hold", "notify"]),
                                 "queue": "nurse-review", "kind": "abnormal-result-review"}
        rows.append(row)
    return rows


def generate_tables(rng: random.Random, count: int = ROWS) -> list[dict[str, Any]]:
    """The rows, split into one table per message type the way analysts keep them."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for row in generate_rows(rng, count):
        name = str(row.get("match", {}).get("type", "any")).lower()
        tables.setdefault(name, []).append(row)
    return [{"id": name, "rows": rows} for name, rows in tables.items()]


# ---- records ------------------------------------------------------------------------------


def generate_record(rng: random.Random) -> dict[str, Any]:
    message_type, event = rng.choices(COMBOS, TRAFFIC)[0]
    record: dict[str, Any] = {
        "message": {"source_format": "hl7v2", "type": message_type, "event": event,
                    "sending_application": rng.choice(APPLICATIONS),
                    "sending_facility": rng.choice(FACILITIES),
                    "control_id": f"C{rng.randrange(10**9)}", "processing_id": "P",
                    "sent_at": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                               f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00+01:00"},
        "patient": patient(rng),
        "encounter": encounter(rng),
        "orders": [], "results": [], "appointments": [], "referrals": [], "documents": [],
        "merge": {}, "tasks": [],
    }
    filler = {"ORU": results, "ORM": orders, "OML": orders, "SIU": appointments,
              "REF": referrals, "MDM": documents}.get(message_type)
    if filler is not None:
        section, items = filler(rng)
        record[section] = items
    return record


def patient(rng: random.Random) -> dict[str, Any]:
    return {
        "identifiers": [{"value": str(rng.randrange(10**7)), "assigning_authority": "MRN",
                         "type": "MR"}],
        "names": [{"family": rng.choice(["DOE", "SMITH", "NGUYEN", "TEST", "GARCIA"]),
                   "given": rng.choice(["JANE", "JOHN", "ALEX"])}],
        "birth_date": f"{rng.randint(1930, 2023)}-{rng.randint(1, 12):02d}-"
                      f"{rng.randint(1, 28):02d}",
        "gender": rng.choice(["female", "male", "unknown"]),
        "addresses": [{"city": "Springfield", "state": rng.choice(["MA", "NY", "CA", "TX"])}],
        "primary_facility": rng.choice(FACILITIES),
        "deceased": rng.random() < 0.02,
    }


def encounter(rng: random.Random) -> dict[str, Any]:
    return {
        "visit_number": f"V{rng.randrange(10**6)}", "class": rng.choice(CLASSES),
        "hospital_service": rng.choice(SERVICES),
        "admit_at": f"2024-{rng.randint(1, 4):02d}-{rng.randint(1, 28):02d}T10:00"
                    + rng.choice(["", "+01:00", "-05:00"]),
        "location": {"point_of_care": "W1", "room": "12", "bed": "A"},
    }


def results(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    items = []
    for set_id in range(1, rng.randint(1, 8) + 1):
        items.append({
            "set_id": str(set_id), "code": rng.choice(CODES),
            "value": rng.choice([{"type": "NM", "number": round(rng.uniform(0, 300), 1)},
                                 {"type": "NM", "text": str(rng.randint(1, 20))}]),
            "units": "mmol/L",
            "abnormal_flags": rng.choice([[], ["N"], ["H"], ["L"], ["HH", "A"], ["LL"]]),
            "status": rng.choice(["F", "F", "F", "C", "P"]),
            "observed_at": f"2024-{rng.randint(1, 6):02d}-{rng.randint(1, 28):02d}T08:30",
        })
    return "results", items


def orders(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    return "orders", [{"control": "NW", "code": rng.choice(CODES),
                       "priority": rng.choice(["S", "A", "R", "R"])}
                      for _ in range(rng.randint(1, 3))]


def appointments(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    return "appointments", [{
        "start": f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T09:00",
        "duration_minutes": rng.choice([15, 30, 45, 60, 90]),
        "type": {"code": rng.choice(["NEW", "FU", "PROC", "TEL"])},
    }]


def referrals(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    return "referrals", [{"priority": rng.choice(["routine", "urgent"]),
                          "category": rng.choice(["cardiology", "oncology", "derm"])}]


def documents(rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    return "documents", [{"type": rng.choice(["DS", "CN", "OP", "RAD", "LAB"]),
                          "status": "AU"}]


# ---- timing -------------------------------------------------------------------------------


def build(seed: int = SEED) -> tuple[RouteTable, list[dict[str, Any]]]:
    rng = random.Random(seed)
    table = compile_routes(generate_tables(rng))
    return table, [generate_record(rng) for _ in range(RECORDS)]


def run(rounds: int, seconds: float) -> dict[str, object]:
    table, records = build()
    fired = 0
    candidates = 0
    for record in records:  # the contenders must agree before either is timed
        decision = table.evaluate(record)
        assert decision == table.evaluate_naive(record), record
        fired += len(decision.rows)
        candidates += len(table.candidates(record))
    contenders = {"compiled": table.evaluate, "naive": table.evaluate_naive}
    samples = harness.interleaved_rounds(contenders, records, rounds, seconds)
    return {
        "benchmark": "route evaluation, collect hit policy",
        "rows": len(table.rows),
        "type_event_combinations": len(COMBOS),
        "records_in_stream": len(records),
        "mean_rows_fired": fired / len(records),
        "mean_rows_tested_after_index": candidates / len(records),
        **harness.timing(rounds, seconds, samples),
        "median_ratio_compiled_over_naive": harness.median_ratio(samples, "compiled", "naive"),
    }


def report(result: dict[str, object], rounds: int, seconds: float) -> None:
    medians = result["median_msgs_per_s"]
    assert isinstance(medians, dict)
    print(f"{result['benchmark']}: {result['rows']} rows over "
          f"{result['type_event_combinations']} type/event combinations, "
          f"{result['records_in_stream']} records, {harness.describe_rounds(rounds, seconds)}")
    print(f"  rows fired per message {result['mean_rows_fired']:.2f}, rows tested after the "
          f"index {result['mean_rows_tested_after_index']:.1f}")
    harness.print_medians(medians, 9)
    print(f"  compiled is {result['median_ratio_compiled_over_naive']:.1f}x naive "
          f"(median per-round ratio)")


def main(argv: list[str] | None = None) -> int:
    return harness.command_line(__doc__.splitlines()[0], run, report, argv)


if __name__ == "__main__":
    sys.exit(main())
