"""MLLP framing: wrap HL7 v2 messages for a TCP stream and take them back out.

MLLP (the Minimal Lower Layer Protocol of HL7 v2) sends each message as a block
``<VT 0x0B> message <FS 0x1C><CR 0x0D>`` on a plain byte stream; TCP keeps no
message boundaries, so the receiver must find the blocks itself. This module does
that without I/O: :func:`encode_frame` wraps one message, and a
:class:`FrameDecoder` is fed whatever each socket read returned and answers, in
stream order, every frame it completed: the payload as ``bytes`` (without VT, FS
and CR), or, for a frame that grew past ``max_frame_bytes``, a
:class:`~engine.errors.FrameTooLargeError` *returned, not raised*, so that frames
before and after it in the same read are not lost. The error carries the first
``head_bytes`` of the payload so the caller can read MSH and address a reject; the
rest of that frame is dropped as it arrives, so memory stays bounded by the limit
plus one read. Bytes outside frames (other than whitespace) and partial frames
abandoned by a sender that starts again with a new VT are dropped and counted in
``discarded_bytes``. ``feed`` never raises on any input.
"""

from __future__ import annotations

from typing import TypeAlias

from engine.errors import FrameTooLargeError, FramingError

__all__ = [
    "END_BLOCK",
    "START_BLOCK",
    "TRAILER",
    "FrameDecoder",
    "encode_frame",
]

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
TRAILER = b"\r"

_VT = 0x0B
_FS = 0x1C
# Senders pad between frames with line endings or spaces; that is noise, not garbage
# worth reporting. It also covers the CR that follows FS when FS and CR arrive in
# different reads, and senders that end a frame with FS alone.
_INTERFRAME_WHITESPACE = b" \t\r\n"

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
DEFAULT_HEAD_BYTES = 4096

Decoded: TypeAlias = bytes | FrameTooLargeError


def encode_frame(payload: bytes) -> bytes:
    """Wrap one HL7 v2 message in an MLLP block: ``VT payload FS CR``.

    Raises :class:`FramingError` if the payload holds a VT or FS byte: the receiver
    would take it for the start or end of a block and split the message.
    """
    for byte, name, role, escape in ((_VT, "VT (0x0B)", "start", "\\X0B\\"),
                                     (_FS, "FS (0x1C)", "end", "\\X1C\\")):
        offset = payload.find(byte)
        if offset >= 0:
            raise FramingError(
                f"HL7 message contains a {name} byte at offset {offset}; MLLP uses it "
                f"to mark the {role} of a block, so the receiver would split the message",
                hint="Remove the control character or escape it in the message "
                f"(for example as {escape})",
            )
    return START_BLOCK + payload + END_BLOCK + TRAILER


class FrameDecoder:
    """Incremental MLLP deframer for one connection; see the module docstring.

    ``discarded_bytes`` counts bytes dropped outside frames and in abandoned partial
    frames (oversize frames are reported by their error and in ``oversize_frames``).
    """

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        head_bytes: int = DEFAULT_HEAD_BYTES,
    ) -> None:
        if max_frame_bytes < 0:
            raise ValueError(f"max_frame_bytes must be >= 0, not {max_frame_bytes}")
        if head_bytes < 0:
            raise ValueError(f"head_bytes must be >= 0, not {head_bytes}")
        self.max_frame_bytes = max_frame_bytes
        self.head_bytes = head_bytes
        self.discarded_bytes = 0
        self.oversize_frames = 0
        self._buffer = bytearray()
        self._in_frame = False
        # Set once an oversize frame has been reported: its remaining bytes are
        # dropped until its FS (or a restarting VT) instead of being buffered.
        self._skipping = False

    @property
    def pending_bytes(self) -> int:
        """Payload bytes buffered for the frame in progress."""
        return len(self._buffer)

    @property
    def at_frame_boundary(self) -> bool:
        """True when no frame is in progress, so closing the connection loses nothing."""
        return not self._in_frame

    def feed(self, data: bytes) -> list[Decoded]:
        """Consume one read; return completed payloads and oversize errors in order."""
        out: list[Decoded] = []
        pos = 0
        while pos < len(data):
            if not self._in_frame:
                pos = self._between_frames(data, pos)
            elif self._skipping:
                pos = self._skip_oversize(data, pos)
            else:
                pos = self._in_payload(data, pos, out)
        return out

    def _between_frames(self, data: bytes, pos: int) -> int:
        start = data.find(_VT, pos)
        end = len(data) if start < 0 else start
        self._count_garbage(data[pos:end])
        if start < 0:
            return end
        self._start_frame()
        return start + 1

    def _count_garbage(self, chunk: bytes) -> None:
        self.discarded_bytes += len(chunk.translate(None, _INTERFRAME_WHITESPACE))

    def _start_frame(self) -> None:
        self._buffer.clear()
        self._in_frame = True
        self._skipping = False

    def _end_frame(self) -> None:
        self._buffer.clear()
        self._in_frame = False
        self._skipping = False

    def _in_payload(self, data: bytes, pos: int, out: list[Decoded]) -> int:
        fs = data.find(_FS, pos)
        end = len(data) if fs < 0 else fs
        restart = data.find(_VT, pos, end)
        if restart >= 0:
            # The sender gave up on this frame and began another: the partial frame,
            # its VT included, can never be completed.
            self.discarded_bytes += 1 + len(self._buffer) + (restart - pos)
            self._start_frame()
            return restart + 1
        if len(self._buffer) + (end - pos) > self.max_frame_bytes:
            out.append(self._oversize(data, pos, end))
            if fs < 0:
                self._skipping = True
                self._buffer.clear()
                return end
            self._end_frame()
            return fs + 1
        if fs < 0:
            self._buffer += memoryview(data)[pos:end]
            return end
        out.append(self._take_payload(data, pos, fs))
        return fs + 1

    def _take_payload(self, data: bytes, pos: int, fs: int) -> bytes:
        if self._buffer:
            self._buffer += memoryview(data)[pos:fs]
            payload = bytes(self._buffer)
        else:
            # The whole frame arrived in this read: one copy instead of two.
            payload = bytes(data[pos:fs])
        self._end_frame()
        return payload

    def _oversize(self, data: bytes, pos: int, end: int) -> FrameTooLargeError:
        size = len(self._buffer) + (end - pos)
        head = bytes(self._buffer[: self.head_bytes])
        missing = self.head_bytes - len(head)
        if missing > 0:
            head += data[pos : min(end, pos + missing)]
        self.oversize_frames += 1
        return FrameTooLargeError(size, self.max_frame_bytes, head=head)

    def _skip_oversize(self, data: bytes, pos: int) -> int:
        fs = data.find(_FS, pos)
        restart = data.find(_VT, pos, len(data) if fs < 0 else fs)
        if restart >= 0:
            self._start_frame()
            return restart + 1
        if fs < 0:
            return len(data)
        self._end_frame()
        return fs + 1
