"""An input plan made into the bytes sent, and whether the sender can count on an
answer for each (an MLLP frame in original mode is owed exactly one ACK)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from bench.fuzz.mutations import mutate_fhir, mutate_hl7, random_frame, with_fhir_ids, with_ids
from bench.fuzz.plans import CORPUS, FHIR, FHIR_VALID, HOSTILE, RANDOM, VALID, InputPlan
from bench.fuzz.seeds import Seeds
from engine.hl7v2 import parse, read_header
from engine.hl7v2.ack import ack_modes


@dataclass(frozen=True)
class Input:
    plan: InputPlan
    payload: bytes


class InputMaker:
    """Makes each plan's bytes; every fresh input gets a control id and a patient no
    other input of the run has."""

    def __init__(self, seeds: Seeds, run_id: str) -> None:
        self._seeds = seeds
        self._donors = [seed.segments for seed in seeds.corpus]
        self._run_id = run_id
        self._numbers = count(1)

    def make(self, plan: InputPlan) -> Input:
        number = next(self._numbers)
        control_id = f"FZ{self._run_id}-{number}".encode()
        patient = f"FZP{self._run_id}-{number}".encode()
        if plan.kind in (FHIR, FHIR_VALID):
            _name, document = self._seeds.fhir[plan.seed % len(self._seeds.fhir)]
            if plan.fresh:
                document = with_fhir_ids(document, control_id.decode())
            return Input(plan, mutate_fhir(document, plan.edits))
        if plan.kind == RANDOM:
            edit = plan.edits[0]
            return Input(plan, random_frame(edit.v, edit.b))
        pool = self._seeds.hostile if plan.kind == HOSTILE else self._seeds.corpus
        segments = pool[plan.seed % len(pool)].segments
        if plan.fresh:
            segments = tuple(with_ids(segments, control_id, patient))
        assert plan.kind in (CORPUS, HOSTILE, VALID)
        return Input(plan, mutate_hl7(segments, plan.edits, self._donors))


def ack_certain(payload: bytes) -> bool:
    """Whether an HL7 v2 frame is owed exactly one ACK at once: original mode as
    Switchboard reads MSH-15 and MSH-16, whether it reads the header alone (a message it
    rejects) or the whole message. Enhanced mode may owe none (MSH-15 NE, ER, SU) or a
    later application ACK too; the sender sends such a frame last and reads until the
    listener closes."""
    for read in (read_header, parse):
        try:
            if ack_modes(read(payload)).enhanced:
                return False
        except Exception:  # what Switchboard does with it, its own logs say
            continue
    return True
