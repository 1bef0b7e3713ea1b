"""Switchboard's MLLP load generator: asyncio, N connections, M messages.

Messages are taken round-robin from a folder of ``.hl7`` files. Each is made ready once:
the UTF-8 BOM stripped, line endings turned into ``\\r``, blank lines dropped, MSH-15 and
MSH-16 blanked so that every receiver owes an original-mode ACK (a sample saying
``NE`` would otherwise get no ACK at all from a receiver that honours enhanced mode, and
a lockstep sender would wait for it forever). Every message gets its own MSH-10, a
random per-run prefix and a sequence number: the corpus reuses control ids, and a
receiver that drops duplicates would otherwise drop most of the load.

Two ways to offer load:

- lockstep (the default): each connection sends a message, waits for its ACK, then
  sends the next. This measures throughput: the msgs/s is what the receiver sustains.
- paced (``--rate R``): message ``i`` is due at ``start + i / R`` and is sent on
  connection ``i mod N`` when due, whether or not earlier ACKs have come back (open
  loop per connection; MLLP answers in order on a connection, so ACKs are matched
  first in, first out). Latency is measured from when a message was due, not from when
  it happened to be written, so a receiver that falls behind cannot hide its queue.

Every ACK's MSA-2 is checked against the control id sent; MSA-1 codes are counted.
The report gives sent, acked, the AA count, elapsed seconds, msgs/s and ACK latency
p50/p99 in milliseconds.

    python -m bench.mllp_load HOST:PORT [--messages M] [--connections N] [--rate R]
                              [--time-limit S] [--corpus DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\r"
DEFAULT_CORPUS = (
    Path(__file__).resolve().parent.parent / "tests" / "corpus" / "hl7v2" / "fhir-converter"
)
CONNECT_TIMEOUT = 10.0
ACK_TIMEOUT = 30.0
READ_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class Template:
    """A ready message with its MSH-10 cut out: ``prefix + control id + suffix``."""

    name: str
    prefix: bytes
    suffix: bytes

    def frame(self, control_id: bytes) -> bytes:
        return START_BLOCK + self.prefix + control_id + self.suffix + END_BLOCK


def template(name: str, raw: bytes) -> Template | None:
    """The message in ``raw`` made ready to send, or None when it has no MSH segment."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    lines = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    segments = [line for line in lines if line.strip()]
    if not segments or not segments[0].startswith(b"MSH") or len(segments[0]) < 8:
        return None
    separator = segments[0][3:4]
    fields = segments[0].split(separator)  # fields[n - 1] is MSH-n
    fields += [b""] * (16 - len(fields))
    fields[14] = fields[15] = b""  # MSH-15, MSH-16: original-mode ACK
    while len(fields) > 12 and not fields[-1]:
        fields.pop()
    rest = b"".join(b"\r" + segment for segment in segments[1:]) + b"\r"
    return Template(
        name,
        separator.join(fields[:9]) + separator,
        separator + separator.join(fields[10:]) + rest,
    )


def load_corpus(folder: str | Path) -> list[Template]:
    """Every usable ``.hl7`` file of ``folder``, in name order."""
    templates = []
    for path in sorted(Path(folder).glob("*.hl7")):
        ready = template(path.name, path.read_bytes())
        if ready is None:
            print(f"mllp_load: skipping {path.name}: no MSH segment", file=sys.stderr)
        else:
            templates.append(ready)
    if not templates:
        raise ValueError(f"no usable .hl7 files in {folder}")
    return templates


def percentile(ordered: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence (``share`` in 0..100)."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * share // 100))  # ceil without floats going wrong
    return ordered[min(len(ordered), int(rank)) - 1]


def read_ack(frame: bytes) -> tuple[bytes, bytes] | None:
    """(MSA-1, MSA-2) of an ACK frame, or None when it has no MSA segment."""
    body = frame[frame.find(START_BLOCK) + 1:-len(END_BLOCK)]
    if not body.startswith(b"MSH") or len(body) < 4:
        return None
    separator = body[3:4]
    start = body.find(b"\rMSA" + separator)
    if start < 0:
        return None
    end = body.find(b"\r", start + 1)
    fields = body[start + 1:end if end > 0 else len(body)].split(separator)
    fields += [b""] * (3 - len(fields))
    return fields[1], fields[2].split(body[4:5] or b"^")[0]


@dataclass
class _Tally:
    sent: int = 0
    acked: int = 0
    mismatched: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    # paced load cut short by the time limit: for each message due but never answered,
    # how long it had been due when the run gave up (a lower bound on its latency)
    censored: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    first_send: float | None = None
    last_ack: float | None = None

    def ack(self, frame: bytes, expected: bytes, latency: float, now: float) -> None:
        self.acked += 1
        self.last_ack = now
        self.latencies.append(latency)
        read = read_ack(frame)
        if read is None:
            self.codes["none"] += 1
            self.mismatched += 1
            return
        code, control_id = read
        self.codes[code.decode("ascii", "replace")] += 1
        if control_id != expected:
            self.mismatched += 1


class _Load:
    def __init__(self, host: str, port: int, messages: int, connections: int,
                 templates: Sequence[Template], rate: float | None, id_prefix: str,
                 ack_timeout: float, time_limit: float | None) -> None:
        self.host, self.port = host, port
        self.messages, self.connections = messages, connections
        self.templates = templates
        self.rate = rate
        self.id_prefix = id_prefix.encode("ascii")
        self.ack_timeout = ack_timeout
        self.time_limit = time_limit
        self.tally = _Tally()
        self.next_index = 0
        self.start = 0.0
        self.deadline = float("inf")

    def message(self, index: int) -> tuple[bytes, bytes]:
        control_id = self.id_prefix + str(index).encode("ascii")
        return control_id, self.templates[index % len(self.templates)].frame(control_id)

    async def run(self) -> None:
        streams = await asyncio.gather(*(self._connect() for _ in range(self.connections)))
        self.start = time.perf_counter()
        if self.time_limit is not None:
            self.deadline = self.start + self.time_limit
        try:
            await asyncio.gather(*(
                self._lockstep(*stream) if self.rate is None else self._paced(number, *stream)
                for number, stream in enumerate(streams)
            ))
        finally:
            for _, writer in streams:
                writer.close()
            for _, writer in streams:
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=READ_LIMIT), CONNECT_TIMEOUT)

    async def _lockstep(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        tally = self.tally
        try:
            while self.next_index < self.messages and time.perf_counter() < self.deadline:
                index = self.next_index
                self.next_index += 1
                control_id, frame = self.message(index)
                sent = time.perf_counter()
                if tally.first_send is None:
                    tally.first_send = sent
                writer.write(frame)
                tally.sent += 1
                ack = await asyncio.wait_for(reader.readuntil(END_BLOCK), self.ack_timeout)
                now = time.perf_counter()
                tally.ack(ack, control_id, now - sent, now)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            tally.errors.append(_describe(error))

    async def _paced(self, number: int, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        assert self.rate is not None
        indices = range(number, self.messages, self.connections)
        in_flight: deque[tuple[bytes, float]] = deque()
        receiving = asyncio.create_task(self._receive(reader, in_flight, len(indices)))
        try:
            for position, index in enumerate(indices):
                due = self.start + index / self.rate
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                if receiving.done() or time.perf_counter() >= self.deadline:
                    # the connection failed or time is up: what is left was due, unanswered
                    self._give_up([self.start + i / self.rate for i in indices[position:]])
                    break
                control_id, frame = self.message(index)
                in_flight.append((control_id, due))
                if self.tally.first_send is None:
                    self.tally.first_send = time.perf_counter()
                writer.write(frame)
                self.tally.sent += 1
                try:
                    await asyncio.wait_for(writer.drain(), self._remaining())
                except TimeoutError:  # the receiver stopped reading and time is up
                    self._give_up([self.start + i / self.rate for i in indices[position + 1:]])
                    break
            await receiving
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            self.tally.errors.append(_describe(error))
        finally:
            receiving.cancel()

    async def _receive(self, reader: asyncio.StreamReader,
                       in_flight: deque[tuple[bytes, float]], expected: int) -> None:
        tally = self.tally
        try:
            for _ in range(expected):
                remaining = self.deadline - time.perf_counter()
                if remaining <= 0:
                    break
                ack = await asyncio.wait_for(reader.readuntil(END_BLOCK),
                                             min(self.ack_timeout, remaining))
                now = time.perf_counter()
                if not in_flight:
                    tally.errors.append("an ACK arrived for nothing sent")
                    return
                control_id, due = in_flight.popleft()
                tally.ack(ack, control_id, now - due, now)
        except TimeoutError as error:
            if time.perf_counter() < self.deadline:
                tally.errors.append(_describe(error))
        except (OSError, asyncio.IncompleteReadError) as error:
            tally.errors.append(_describe(error))
        finally:
            self._give_up([due for _, due in in_flight])
            in_flight.clear()

    def _remaining(self) -> float | None:
        """Seconds left before the time limit (None: no limit)."""
        if self.deadline == float("inf"):
            return None
        return max(self.deadline - time.perf_counter(), 0.001)

    def _give_up(self, due_times: Sequence[float]) -> None:
        """Record messages that were due but will not be answered in this run."""
        now = min(time.perf_counter(), self.deadline)
        self.tally.censored.extend(now - due for due in due_times if due < now)

    def result(self) -> dict[str, Any]:
        tally = self.tally
        end = tally.last_ack if tally.last_ack is not None else time.perf_counter()
        elapsed = max(end - self.start, 1e-9)
        ordered = sorted(tally.latencies + tally.censored)
        p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
        return {
            "host": self.host, "port": self.port, "connections": self.connections,
            "mode": "lockstep" if self.rate is None else "paced",
            "offered_msgs_per_s": self.rate, "messages": self.messages,
            "sent": tally.sent, "acked": tally.acked, "aa": tally.codes.get("AA", 0),
            "ack_codes": dict(tally.codes), "mismatched": tally.mismatched,
            "errors": tally.errors[:20], "error_count": len(tally.errors),
            # > 0: the time limit cut the run short and the percentiles are lower bounds
            "unanswered_when_time_ran_out": len(tally.censored),
            "elapsed_s": round(elapsed, 4),
            "msgs_per_s": round(tally.acked / elapsed, 1),
            "p50_ms": None if p50 is None else round(p50 * 1e3, 3),
            "p99_ms": None if p99 is None else round(p99 * 1e3, 3),
            "id_prefix": self.id_prefix.decode("ascii"),
            # perf_counter() of the first send, for callers that time what follows it
            "first_send_perf_counter": tally.first_send,
        }


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out waiting for an ACK"
    if isinstance(error, asyncio.IncompleteReadError):
        return "connection closed before the ACK was complete"
    return f"{type(error).__name__}: {error}"


def new_id_prefix() -> str:
    """A control-id prefix no earlier run used, so no message looks like a duplicate."""
    return f"SB{os.urandom(4).hex()}-"


async def run_load(host: str, port: int, messages: int, connections: int,
                   corpus: str | Path | Sequence[Template], rate: float | None = None,
                   *, id_prefix: str | None = None, ack_timeout: float = ACK_TIMEOUT,
                   time_limit: float | None = None) -> dict[str, Any]:
    """Send ``messages`` over ``connections`` connections and report what came back.

    ``corpus`` is a folder of ``.hl7`` files or templates from :func:`load_corpus`;
    ``rate`` switches from lockstep to paced load at that many msgs/s in total.
    ``time_limit`` (seconds from the first send) ends the run early: lockstep stops
    sending; paced load stops sending and waiting, and counts every message that was
    due but not answered with the time it had waited so far, so an overloaded receiver
    yields latency percentiles that are lower bounds rather than a run that never ends.
    Connection failures and ACK timeouts end that connection and are reported in
    ``errors``; they never raise, except when no connection can be opened at all."""
    if messages < 0 or connections < 1:
        raise ValueError("messages must be >= 0 and connections >= 1")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive")
    templates = load_corpus(corpus) if isinstance(corpus, str | Path) else list(corpus)
    load = _Load(host, port, messages, connections, templates, rate,
                 id_prefix or new_id_prefix(), ack_timeout, time_limit)
    await load.run()
    result = load.result()
    result["corpus_files"] = len(templates)
    return result


def describe(result: dict[str, Any]) -> str:
    """Two lines for a person."""
    codes = ", ".join(f"{code}={count}" for code, count in sorted(result["ack_codes"].items()))
    offered = result["offered_msgs_per_s"]
    mode = "lockstep" if offered is None else f"paced at {offered:,.0f} msgs/s"
    unanswered = result["unanswered_when_time_ran_out"]
    cut = (f", {unanswered} unanswered when time ran out (latency figures are lower "
           "bounds)" if unanswered else "")
    return (
        f"{result['host']}:{result['port']}  {mode}, {result['connections']} connections: "
        f"sent {result['sent']}, acked {result['acked']} ({codes or 'none'}), "
        f"mismatched {result['mismatched']}, errors {result['error_count']}"
        f"{cut}\n"
        f"  {result['msgs_per_s']:,.0f} msgs/s over {result['elapsed_s']:.2f} s; "
        f"ACK latency p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms"
    )


def _target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=_target, metavar="HOST:PORT")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rate", type=float, help="offered load in msgs/s (paced)")
    parser.add_argument("--ack-timeout", type=float, default=ACK_TIMEOUT)
    parser.add_argument("--time-limit", type=float, help="seconds before giving up")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    host, port = args.target
    try:
        result = asyncio.run(run_load(host, port, args.messages, args.connections,
                                      args.corpus, args.rate, ack_timeout=args.ack_timeout,
                                      time_limit=args.time_limit))
    except (OSError, TimeoutError, ValueError) as error:
        print(f"mllp_load: {_describe(error)}", file=sys.stderr)
        return 2
    result.pop("first_send_perf_counter")
    print(describe(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    complete = result["aa"] == args.messages and not result["mismatched"]
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
