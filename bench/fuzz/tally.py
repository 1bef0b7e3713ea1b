"""What the senders saw: every input's outcome, counted, and the inputs that broke an
invariant, kept byte for byte so they can be replayed."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.fuzz.plans import VALID_MUTATIONS, InputPlan, SessionPlan

KEPT_FINDINGS = 50  # reproducers written per run; the rest are only counted


@dataclass
class Finding:
    """An input that broke an invariant: what happened, and the bytes to replay it."""

    invariant: str
    detail: str
    transport: str
    payload: bytes
    plan: str


@dataclass
class Tally:
    inputs: int = 0
    valid_mutations: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # "mllp AA", "http 202", ...
    kinds: Counter[str] = field(default_factory=Counter)
    writings: Counter[str] = field(default_factory=Counter)
    endings: Counter[str] = field(default_factory=Counter)  # sessions, by how they ended
    connections: int = 0  # MLLP connections opened
    expected_closes: Counter[str] = field(default_factory=Counter)  # as the senders meant them
    closed_by_listener: int = 0  # connections the senders saw the listener close
    failures: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    slowest_answer: float = 0.0

    def count(self, plan: InputPlan | None, outcome: str, transport: str) -> None:
        """One input sent and what became of it (``plan`` None: a frame cut off)."""
        self.inputs += 1
        self.outcomes[f"{transport} {outcome}"] += 1
        if plan is not None:
            self.kinds[plan.kind] += 1
            if plan.kind in VALID_MUTATIONS:
                self.valid_mutations += 1

    def session(self, plan: SessionPlan) -> None:
        self.writings[f"{plan.transport} {plan.writing}"] += 1
        self.endings[f"{plan.transport} {plan.ending}"] += 1

    def answered(self, seconds: float) -> None:
        self.slowest_answer = max(self.slowest_answer, seconds)

    def fail(self, invariant: str, detail: str, transport: str, payload: bytes,
             plan: object) -> None:
        self.failures[invariant] += 1
        if len(self.findings) < KEPT_FINDINGS:
            self.findings.append(Finding(invariant, detail, transport, payload, repr(plan)))

    def write_findings(self, folder: Path) -> list[str]:
        """Each finding's bytes and description under ``folder``; their file names."""
        names = []
        for number, finding in enumerate(self.findings, 1):
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{number:03d}-{finding.invariant}-{finding.transport}"
            (folder / f"{stem}.bin").write_bytes(finding.payload)
            (folder / f"{stem}.json").write_text(json.dumps({
                "invariant": finding.invariant, "detail": finding.detail,
                "transport": finding.transport, "plan": finding.plan}, indent=1))
            names.append(stem)
        return names
