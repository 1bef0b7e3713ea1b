"""The fuzzing harness (issue 17): ``python -m bench.fuzz [--inputs N] [--seed S]``.

A real ``switchboard serve`` on SQLite, started on free ports with one MLLP listener
(``ehr-adt-feed``, a 2 s idle timeout and a 64 KiB frame limit), HTTP ingest for HL7 v2
(``http-feed``) and FHIR R4 (``fhir-feed``), and one route sending every message to an
HTTP destination the harness serves (:mod:`bench.fuzz.sink`).

What is sent (:mod:`bench.fuzz.plans`, :mod:`bench.fuzz.mutations`): Hypothesis draws
session plans, each one connection's inputs and how they are written and ended; an
input is one frame or partial frame over MLLP, or one request over HTTP, and the
volume counts inputs, not examples. Senders play the plans concurrently
(:mod:`bench.fuzz.mllp_session`, :mod:`bench.fuzz.http_session`).

The invariants (:mod:`bench.fuzz.run`): no crash (serve alive, its log without a
traceback or an error-level record, no HTTP 5xx); no hang (each input answered within
5 s, or its connection closed, every close counted by serve on /metrics as
``switchboard_mllp_closed_total`` and at least as many closes counted for the
listener's own reasons as the senders saw); no close for an internal error; resident
memory of serve and its worker processes grown by less than 20 MiB from the end of
warm-up to the end of the run; an ordinary message ACKed and at the HTTP destination
within 5 s after the run; at least half the inputs mutations of valid messages and at
least a quarter routed.

How deep inputs went is read from serve's own counters, deltas over the run, taken once
the pipeline and deliveries have drained and before the end-to-end message:

- reached the parser: ``switchboard_received_total`` (every frame or request body
  handed to the journal, which parses each, HL7 v2 or FHIR, before deciding whether to
  take it) less the oversize frames (journaled without content, never parsed), counted
  as ``switchboard_mllp_closed_total{reason="oversize"}``. Requests refused before the
  journal (401, and 415 to an HL7 v2 connection) and frames cut off are not in it; a
  FHIR connection journals a body of the wrong media type as rejected, unread, so it
  is counted though no parser saw it.
- reached routing: ``switchboard_routed_total``, the messages the pipeline parsed,
  normalised and routed, with their route decision committed (journal status
  ``routed``). Those that failed on the way (``switchboard_failed_total``) are not
  counted, even the ones that failed at or after routing.
"""
