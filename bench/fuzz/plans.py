"""What the fuzzer sends, drawn by Hypothesis: session plans, each one connection's
inputs with how they are written and how the connection ends.

Hypothesis draws the plans only (``phases=[Phase.generate]``, no database, no
deadline: nothing is shrunk or replayed here); one example is one connection's session
carrying many inputs, so the volume is counted in inputs, not examples. The drawing
runs in a thread of its own and hands each plan over through a bounded queue: it waits
when the senders are behind, and stops once the inputs asked for are planned."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from bench.fuzz.mutations import FHIR_EDITS, GENTLE, HARSH, Edit

MLLP, HTTP = "mllp", "http"
HTTP_SESSIONS_PERCENT = 7
# Kinds of input: a mutation of a corpus message (valid), of a hostile-corpus message,
# a random frame, an unchanged corpus message, and a FHIR resource mutated or not.
CORPUS, HOSTILE, RANDOM, VALID, FHIR, FHIR_VALID = (
    "corpus", "hostile", "random", "valid", "fhir", "fhir-valid")
VALID_MUTATIONS = frozenset({CORPUS, FHIR})
# How a session's frames are written: one and wait for its answer; several in one
# write; each frame in pieces (several reads on the listener's side); pieces with pauses.
LOCKSTEP, PIPELINED, SPLIT, SLOW = "lockstep", "pipelined", "split", "slow"
# How a session ends: a polite close after the last answer; a frame cut off by a close
# (FIN) or a reset (RST); a frame cut off then silence past the idle timeout; a frame
# cut off then abandoned for a new one (a new start block); a frame over the limit.
CLOSE, DROP_FIN, DROP_RST, STALL, RESTART, OVERSIZE = (
    "close", "drop_fin", "drop_rst", "stall", "restart", "oversize")
# HTTP requests that do not reach the ingestor: no token, the wrong media type.
OK, NO_TOKEN, WRONG_TYPE = "ok", "no_token", "wrong_type"


@dataclass(frozen=True)
class InputPlan:
    kind: str
    seed: int  # which message of its corpus (modulo their number)
    edits: tuple[Edit, ...]
    fresh: bool  # a new control id and patient, so it is neither a duplicate nor held
    request: str = OK  # HTTP only


@dataclass(frozen=True)
class SessionPlan:
    transport: str
    fhir: bool  # HTTP: FHIR R4 JSON to the FHIR feed, else HL7 v2 to the HL7 feed
    inputs: tuple[InputPlan, ...]
    writing: str
    piece: int  # bytes per write for SPLIT and SLOW
    pause_ms: int  # SLOW: between pieces
    batch: int  # PIPELINED: frames per write
    noise: bool  # bytes outside frames between frames (MLLP)
    ending: str
    cut: int  # where the last frame is cut for the endings that cut one

    @property
    def size(self) -> int:
        """Inputs the session sends: its messages, and the frame its ending cuts off or
        makes oversize."""
        return len(self.inputs) + (self.ending != CLOSE)


WORDS_PER_INPUT = 4  # one for what the input is, three for its edits
_WORD = st.integers(0, 2**64 - 1)
_MIX = 0x9E3779B97F4A7C15


def mixed(word: int) -> int:
    """``word`` scrambled: Hypothesis favours small and boundary numbers, which is what
    an edit's place and value should get, but not what the odds of a kind should."""
    return ((word ^ 0x5DEECE66D) * _MIX) >> 7 & (2**57 - 1)


def edit_of(word: int, operators: tuple[str, ...]) -> Edit:
    """One edit from one 64-bit word: its operator, place (a, b) and value."""
    return Edit(operators[word % 64 % len(operators)], word >> 6 & 0xFFFF,
                word >> 22 & 0xFFFF, word >> 38)


def input_plan(words: tuple[int, ...], fhir: bool) -> InputPlan:
    """One input from :data:`WORDS_PER_INPUT` words drawn by Hypothesis."""
    head, *rest = words
    roll, seed = mixed(head) % 100, head >> 8 & 0x3FF
    edits = 1 + (head >> 18) % len(rest)
    fresh = mixed(head) >> 8 & 31 != 0  # now and then the same ids again: duplicates
    if fhir:
        kind = FHIR if roll < 85 else FHIR_VALID
        chosen = [edit_of(word, FHIR_EDITS) for word in rest[:edits]] if kind == FHIR else []
    elif roll < 55:
        kind, chosen = CORPUS, [edit_of(word, GENTLE) for word in rest[:edits]]
    elif roll < 68:
        kind, chosen = CORPUS, [edit_of(word, GENTLE + HARSH) for word in rest[:edits]]
    elif roll < 82:
        kind, chosen = HOSTILE, [edit_of(word, GENTLE + HARSH) for word in rest[:edits - 1]]
    elif roll < 92:
        kind, chosen = RANDOM, [Edit("random", 0, rest[0] % 4_000, rest[0] >> 12)]
    else:
        kind, chosen = VALID, []
    return InputPlan(kind, seed, tuple(chosen), fresh)


@st.composite
def session_plans(draw: st.DrawFn) -> SessionPlan:
    # HTTP ingest costs the server several times what MLLP does per input: fewer
    # sessions, so that the volume is reached in the time there is.
    transport = HTTP if mixed(draw(_WORD)) % 100 < HTTP_SESSIONS_PERCENT else MLLP
    fhir = transport == HTTP and draw(st.booleans())
    writing = draw(st.sampled_from((LOCKSTEP, LOCKSTEP, PIPELINED, PIPELINED, SPLIT, SLOW)))
    count = draw(st.integers(1, 4 if writing == SLOW else 60))
    words = draw(st.lists(_WORD, min_size=count * WORDS_PER_INPUT,
                          max_size=count * WORDS_PER_INPUT))
    inputs = [input_plan(tuple(words[at:at + WORDS_PER_INPUT]), fhir)
              for at in range(0, len(words), WORDS_PER_INPUT)]
    rare = mixed(draw(_WORD))
    if transport == HTTP:
        inputs = [replace(plan, request=(NO_TOKEN, WRONG_TYPE)[number % 2])
                  if (rare >> number) % 64 == 0 else plan
                  for number, plan in enumerate(inputs)]
        writing = LOCKSTEP if writing == PIPELINED else writing
    endings = (CLOSE,) * 8 + (DROP_FIN, DROP_RST, RESTART, OVERSIZE)
    ending = draw(st.sampled_from(endings))
    if transport == MLLP and rare % 400 == 0:
        ending = STALL  # rare: each one holds its connection for the idle timeout
    if transport == HTTP and ending not in (CLOSE, DROP_FIN):
        ending = CLOSE
    return SessionPlan(
        transport, fhir, tuple(inputs), writing,
        piece=draw(st.integers(1, 600)), pause_ms=draw(st.integers(1, 40)),
        batch=draw(st.integers(2, 10)), noise=rare >> 20 & 7 == 0,
        ending=ending, cut=draw(st.integers(1, 10_000)))


class _Stopped(Exception):
    """Raised inside an example to end Hypothesis' run early."""


def produce(inputs: int, seed: int, put: Callable[[SessionPlan], None],
            stop: threading.Event) -> None:
    """Draw session plans until they carry ``inputs`` inputs in all, handing each to
    ``put`` (which may wait); the last is cut to fit. Returns early once ``stop`` is set."""
    planned = 0
    round_number = 0
    while planned < inputs and not stop.is_set():
        # Enough examples for the rest at the mean session size; another round (the
        # next seed) if Hypothesis' sizes ran small.
        examples = max(10, (inputs - planned) // 15)

        @settings(max_examples=examples, phases=[Phase.generate], database=None,
                  deadline=None, suppress_health_check=list(HealthCheck),
                  verbosity=Verbosity.quiet)
        @hypothesis_seed(seed * 1_000 + round_number)
        @given(session_plans())
        def draw_one(plan: SessionPlan) -> None:
            nonlocal planned
            if planned >= inputs or stop.is_set():
                raise _Stopped
            if planned + plan.size > inputs:
                keep = inputs - planned - (plan.ending != CLOSE)
                plan = replace(plan, inputs=plan.inputs[:max(keep, 0)],
                               ending=plan.ending if keep >= 0 else CLOSE)
                if not plan.inputs and plan.ending == CLOSE:
                    plan = replace(plan, inputs=(InputPlan(VALID, 0, (), True),))
            planned += plan.size
            put(plan)

        try:
            draw_one()
        except _Stopped:
            return
        round_number += 1
