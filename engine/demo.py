"""The demonstration ``switchboard demo`` runs until the engine service exists: every
sample message is MLLP-framed, deframed from a stream in uneven reads, parsed,
acknowledged as its header asks, and re-encoded, with a one-line report each.

It prints message types, control ids and counts, never field contents (PHI).
"""

from __future__ import annotations

import time
from pathlib import Path

from engine.errors import FrameTooLargeError, SwitchboardError
from engine.hl7v2 import Message, parse
from engine.hl7v2.ack import AckError, accept_ack, ack_modes, original_ack, reject
from engine.hl7v2.mllp import FrameDecoder, encode_frame

_SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "hl7v2"


def run_demo(folder: Path | None = None) -> int:
    folder = folder or _SAMPLES
    files = sorted(folder.rglob("*.hl7"))
    if not files:
        print(f"No .hl7 files under {folder}; give a folder: switchboard demo FOLDER")
        return 1
    stream = b"".join(encode_frame(path.read_bytes()) for path in files)
    started = time.perf_counter()
    frames = _deframe(stream, read_size=1_000)
    print(f"Switchboard demo: {len(frames)} MLLP frames from {len(files)} files in {folder}")
    print(f"{'file':42} {'type':18} {'version':8} {'segs':>4}  ack")
    failures = 0
    for path, frame in zip(files, frames, strict=True):
        line, ok = _report(frame)
        failures += not ok
        print(f"{path.name[:42]:42} {line}")
    elapsed = time.perf_counter() - started
    print(f"{len(frames) - failures} accepted, {failures} rejected, in {elapsed * 1000:.1f} ms")
    return 0


def _deframe(stream: bytes, read_size: int) -> list[bytes]:
    decoder = FrameDecoder()
    frames: list[bytes] = []
    for start in range(0, len(stream), read_size):
        for item in decoder.feed(stream[start : start + read_size]):
            if isinstance(item, FrameTooLargeError):
                raise item
            frames.append(item)
    return frames


def _report(frame: bytes) -> tuple[str, bool]:
    try:
        message = parse(frame)
    except SwitchboardError as error:
        nak = reject(frame, error)
        code = nak.get("MSA-1") if nak is not None else "none"
        return f"{'(unreadable)':18} {'':8} {'':>4}  {code}: {error}", False
    assert message.encode() == frame, "an unedited message must encode to its bytes"
    ack = _acknowledge(message)
    code = ack.get("MSA-1") if ack is not None else "none (MSH-15 NE)"
    kind = message.get_raw("MSH-9") or "?"
    return f"{kind[:18]:18} {message.version:8} {len(message):>4}  {code}", True


def _acknowledge(message: Message) -> Message | None:
    problem = None if message.get("MSH-10") else AckError(101, "MSH-10 is empty", "MSH", 1, 10)
    if ack_modes(message).enhanced:
        return accept_ack(message, "CE" if problem else "CA", problem)
    return original_ack(message, "AE" if problem else "AA", problem)
