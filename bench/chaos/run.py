"""One chaos run on one store: the sink, the store (a SQLite file, or a private
PostgreSQL cluster, never a shared server), ``switchboard serve`` (and on PostgreSQL
two ``switchboard engine`` processes besides), the load, each planned fault at its
milestone, then the wait until every ACKed message has reached the sink (the operator
retrying any dead letter left), and the verdict."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from bench.chaos import plan
from bench.chaos.injection import Injector, Wait
from bench.chaos.load import Load, wait_for_acks
from bench.chaos.operator_script import add_operator, retry_dead_letters
from bench.chaos.report import verdict
from bench.chaos.settings import Settings
from bench.chaos.sink import ChaosSink, read_record
from bench.chaos.store_probe import dead_letters
from tests.delivery_config import delivery_config
from tests.ports import free_port
from tests.postgres_cluster import PrivateCluster
from tests.serve_process import ServeProcess

SQLITE, POSTGRES = "sqlite", "postgres"

# A destination that is down, or failing (5xx), is retried for far longer than any
# outage of the run; a conflict (409) dead-letters at its second attempt.
POLICIES = {"id": "chaos-delivery", "policies": [
    {"connections": ["*"], "error_classes": ["transport_error", "timeout"],
     "max_attempts": 1000,
     "backoff": {"kind": "exponential", "initial": "500ms", "factor": 2, "max_delay": "2s"},
     "dead_letter": {"owner_role": "operator"},
     "escalation": {"after": "1h", "notify_role": "admin"}},
    {"connections": ["*"], "error_classes": ["*"], "max_attempts": 2,
     "backoff": {"kind": "fixed", "delay": "500ms"},
     "dead_letter": {"owner_role": "operator"},
     "escalation": {"after": "1h", "notify_role": "admin"}}]}


def chaos_config(folder: Path, sink_url: str, mllp_port: int) -> Path:
    config = delivery_config(folder, sink_url, mllp_port=mllp_port)
    (config / "rules" / "policies" / "test.yaml").write_text(
        yaml.safe_dump(POLICIES, sort_keys=False), encoding="utf-8")
    return config


def run_store(store: str, settings: Settings, folder: Path, wait: Wait) -> dict[str, Any]:
    """Run the whole chaos on ``store`` in ``folder``; the report (``missed`` lists
    the targets it misses)."""
    folder.mkdir(parents=True, exist_ok=True)
    postgres = store == POSTGRES
    planned = plan.plan(settings.seed, settings.messages, settings.spacing, settings.kills,
                        settings.engine_kills, postgres)
    began = time.monotonic()
    cluster = PrivateCluster() if postgres else None
    sink = ChaosSink(folder / "sink.jsonl")
    processes: list[ServeProcess] = []
    load: Load | None = None
    try:
        if cluster is not None:
            cluster.start()
        url = cluster.url if cluster is not None else f"sqlite:///{folder / 'switchboard.db'}"
        sink.start()
        mllp = free_port()
        config = chaos_config(folder / "config", sink.url, mllp)
        common = ("--delivery-workers", str(settings.delivery_workers),
                  "--delivery-lease", str(settings.delivery_lease))
        serve = ServeProcess(config, url, folder / "serve.log", "--pipeline-workers",
                             str(settings.pipeline_workers), *common)
        processes.append(serve)
        serve.start(settings.limit)
        engine_ports = [free_port() for _ in range(2 if postgres else 0)]
        engines = [ServeProcess(config, url, folder / f"engine-{number}.log",
                                "--mllp-port", str(port), "--pipeline-workers",
                                str(settings.engine_pipeline_workers), *common,
                                command="engine")
                   for number, port in enumerate(engine_ports)]
        processes.extend(engines)
        _start_together([*engines, _Operator(url)], settings.limit)
        # On PostgreSQL two of the four connections go to the engines, one each.
        ports = [mllp, engine_ports[0], mllp, engine_ports[1]] if postgres else [mllp]
        load = Load(ports, settings.messages, settings.patients, settings.connections)
        injector = Injector(settings, url, sink, load, serve, engines, cluster, wait)
        load.start()
        faults = []
        for index, fault in enumerate(planned):
            load.allow(fault.milestone)
            wait_for_acks(load, fault.milestone, settings.limit, wait)
            following = planned[index + 1].milestone if index + 1 < len(planned) else None
            load.allow(following or settings.messages)
            faults.append(injector.inject(fault))
        load.allow(settings.messages)
        wait_for_acks(load, settings.messages, settings.limit, wait)
        acked_at = time.monotonic()
        retried_after = _wait_delivered(load, sink, url, settings, wait)
        finals = {"store": store, "seed": settings.seed, "messages": settings.messages,
                  "patients": settings.patients, "connections": settings.connections,
                  "refused_by_engine": load.refused, "retried_after": retried_after,
                  "dead_letters_in_store": dead_letters(url),
                  "load_seconds": round(acked_at - began, 1),
                  "wall_seconds": round(time.monotonic() - began, 1)}
        (folder / "acks.jsonl").write_text(
            "".join(json.dumps({"control_id": c, "at": t}) + "\n" for c, t in load.acks),
            encoding="utf-8")
        (folder / "faults.json").write_text(json.dumps(faults, indent=1), encoding="utf-8")
        return verdict(read_record(sink.record), [c for c, _ in load.acks], faults, planned,
                       finals)
    finally:
        if load is not None:
            load.stop()
        for process in processes:
            with contextlib.suppress(AssertionError):
                process.stop()
        sink.close()
        if cluster is not None:
            cluster.destroy()


class _Operator:
    """Adding the operator user, started beside the engines."""

    def __init__(self, url: str) -> None:
        self.url = url

    def start(self, limit: float) -> None:
        add_operator(self.url)


def _start_together(parts: list[Any], limit: float) -> None:
    """Start each part on a thread of its own (process starts are mostly waiting for
    imports); any failure is raised once all have ended."""
    failures: list[BaseException] = []

    def start(part: Any) -> None:
        try:
            part.start(limit)
        except BaseException as error:  # raised below, on the caller's thread
            failures.append(error)

    threads = [threading.Thread(target=start, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def _wait_delivered(load: Load, sink: ChaosSink, url: str, settings: Settings,
                    wait: Wait) -> int:
    """Wait until every ACKed message is at the sink, the operator retrying any dead
    letter still open; how many such retries. Gives up (the report counts the lost)
    after ``settings.limit``."""
    acked = {control_id for control_id, _ in load.acks}
    retried = [0]

    def delivered() -> bool:
        arrived = {r["control_id"] for r in read_record(sink.record) if r["status"] == 200}
        if acked <= arrived:
            return True
        if dead_letters(url, "open"):
            retried[0] += retry_dead_letters(url)
        return False

    with contextlib.suppress(AssertionError):
        wait(delivered, settings.limit, "every ACKed message at the sink", every=0.5)
    return retried[0]
