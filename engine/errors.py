"""The one error hierarchy of Switchboard.

Every error the engine can act on derives from :class:`SwitchboardError`. The HL7 v2
toolkit raises only these: a parser that leaks ``ValueError`` or ``IndexError`` makes
the caller guess whether to retry, reject or page someone.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Root of every error Switchboard raises on purpose.

    ``location`` names where in the message the problem is, the way HL7 people say it
    (``PID-3``, ``segment 4 (OBX)``); ``occurrence`` which of the message's segments
    with that ID (ERR-2.2); ``hint`` says what to do next.
    """

    def __init__(
        self,
        message: str,
        *,
        segment: str | None = None,
        segment_number: int | None = None,
        field: int | None = None,
        component: int | None = None,
        occurrence: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = message
        self.segment = segment
        self.segment_number = segment_number
        self.field = field
        self.component = component
        self.occurrence = occurrence
        self.hint = hint
        super().__init__(self._render())

    @property
    def location(self) -> str:
        parts = []
        if self.segment_number is not None:
            seg = f" ({self.segment})" if self.segment else ""
            parts.append(f"segment {self.segment_number}{seg}")
        elif self.segment:
            parts.append(self.segment)
        if self.field is not None:
            component = f".{self.component}" if self.component is not None else ""
            parts.append(f"{self.segment or '?'}-{self.field}{component}")
        return ", ".join(parts)

    def _render(self) -> str:
        text = f"{self.location}: {self.reason}" if self.location else self.reason
        return f"{text}. {self.hint}" if self.hint else text


class ParseError(SwitchboardError):
    """The bytes are not an HL7 v2 message Switchboard can read."""


class HeaderError(ParseError):
    """The message parses, but its header lacks what Switchboard needs to take it (a
    required field) or holds more than it can keep. ``ack_code`` is the table 0357
    code its ERR carries: 101 required field missing, 104 value too long."""

    def __init__(self, message: str, *, ack_code: int, **where: object) -> None:
        self.ack_code = ack_code
        super().__init__(message, **where)  # type: ignore[arg-type]


class PathError(SwitchboardError):
    """An HL7 path (``PID-3[2].1``) is malformed, or names a position that cannot be
    used for the requested operation."""


class EditError(SwitchboardError):
    """An edit would produce a message that is not valid HL7 v2."""


class FramingError(SwitchboardError):
    """An MLLP stream or frame is not valid."""


class FrameTooLargeError(FramingError):
    """An MLLP frame grew past the configured limit; its content was not kept."""

    def __init__(self, size: int, limit: int, head: bytes = b"") -> None:
        self.size = size
        self.limit = limit
        # The first bytes of the frame, kept only so that the MSH can be read to
        # address a reject; never logged.
        self.head = head
        super().__init__(
            f"MLLP frame of at least {size} bytes exceeds the limit of {limit} bytes",
            hint="Reject the message (AR) and ask the sender to split or shrink it",
        )


class MediaTypeError(SwitchboardError):
    """A body arrived as a media type its connection's catalog entry does not take: it
    is refused unread."""
