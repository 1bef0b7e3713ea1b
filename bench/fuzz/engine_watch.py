"""What the fuzzer reads about the serve process from outside: its counters on
/metrics, its resident memory (with its children's) from /proc, and its log."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.serving import descendants

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def read_metrics(base: str, token: str | None = None) -> Samples:
    """Every sample on ``base``/metrics, by (name, sorted labels); ``token`` is sent as
    a bearer token where /metrics is protected by one."""
    request = urllib.request.Request(f"{base}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with _HTTP.open(request, timeout=30) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (sample, keys), value in samples.items()
               if sample == name and wanted <= set(keys))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    found: Counter[str] = Counter()
    for (sample, keys), value in samples.items():
        if sample == name:
            found[dict(keys).get(label, "")] += int(value)
    return dict(found)


def resident_bytes(pid: int) -> int:
    """VmRSS of ``pid`` and of every live descendant (the pipeline workers)."""
    return sum(resident_by_process(pid).values())


def resident_by_process(pid: int) -> dict[int, int]:
    """VmRSS of ``pid`` and of each live descendant, by process id."""
    pids = [pid, *descendants(pid)]
    rss: dict[int, int] = {}
    for each in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[each] = int(line.split()[1]) * 1024
    return rss


def log_problems(log: Path) -> dict[str, int]:
    """Tracebacks and error-level records in the serve log, counted by what they say
    (the logger, the event and the error's type; never message content)."""
    found: Counter[str] = Counter()
    with log.open("rb") as lines:
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if "Traceback (most recent call last)" in line:
                found["traceback"] += 1
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                    found[f"{entry.get('logger')}: {entry.get('event')} "
                          f"({entry.get('error', '')})"] += 1
    return dict(found)
