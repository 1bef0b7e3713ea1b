r"""Switchboard's HL7 v2 toolkit: parse, read, edit, acknowledge and frame messages.

Parsing
    ``parse(bytes | str) -> Message`` honours the separators declared in MSH-1 and
    MSH-2, accepts CR, LF and CRLF segment endings (mixed, too) and a UTF-8 byte-order
    mark, and decodes with the MSH-18 character set (UTF-8 when none is declared).
    Bytes that do not decode are kept as they were and recorded in
    ``message.warnings``; they never raise. ``text_error(message)`` says where they
    are, for callers that must not build text from them. A line that does not start with a segment
    ID is kept as part of the segment before it (a line break inside free text), also
    with a warning. Parsing is lazy: segments are found at once, fields are split only
    when read. ``message.encode()`` returns exactly the original bytes until the
    message is edited. Anything that is not an HL7 v2 message raises ``ParseError``,
    and nothing else.

Paths, written the way HL7 people write them
    ``PID-3`` field, ``PID-3.1`` component, ``PID-3.1.2`` subcomponent,
    ``PID-3[2].1`` second repetition (the first is the default), ``OBX[3]-5`` third
    OBX (the first is the default), ``OBX[*]-5`` every OBX, ``PID-3[*]`` every
    repetition. Positions count from 1. ``MSH-1`` is the field separator and ``MSH-2``
    the encoding characters, exactly as HL7 numbers them, so ``MSH-9`` is the message
    type.

Reading
    ``get(path)`` returns the unescaped value. A position holding a composite returns
    its first primitive (``get('PID-3')`` on ``123^^^MRN`` is ``'123'``), as HAPI's
    Terser and python-hl7 do. It returns ``''`` for a position that is present but
    empty and ``None`` for one the message does not contain (a missing segment, or a
    field, repetition, component or subcomponent past the last one sent).
    The explicit null ``""`` reads as ``''`` too; ``is_null(path)`` tells it apart.
    ``get_all(path)`` returns a list: ``[*]`` expands segments or repetitions, and an
    omitted repetition means every repetition; absent positions contribute nothing.
    ``get_raw(path)`` returns the encoded text of the position with its separators and
    escapes; a segment path gives the whole segment, ``PID-3[*]`` the whole field.

Escapes
    ``\F\ \S\ \T\ \R\ \E\`` become the delimiters, ``\Xhh..\`` the bytes it names
    (decoded with the message's character set), ``\.br\`` a line feed. See
    ``engine.hl7v2.escape`` for the formatting commands and what is kept literally.

Editing
    ``set(path, value)`` writes where ``get`` reads, escaping the value;
    ``set_raw(path, encoded)`` replaces a whole position. ``insert_repetition``,
    ``remove_repetition``, ``insert_segment``, ``replace_segment`` and
    ``remove_segment`` change the structure. Positions past the end are created.

Acknowledgements and MLLP
    ``engine.hl7v2.ack`` builds original- and enhanced-mode ACKs;
    ``engine.hl7v2.mllp`` frames and deframes MLLP streams.
"""

from engine.hl7v2.message import Message, ParseWarning, parse, read_header, text_error
from engine.hl7v2.path import ALL, Path, parse_path
from engine.hl7v2.separators import Separators

__all__ = [
    "ALL", "Message", "ParseWarning", "Path", "Separators",
    "parse", "parse_path", "read_header", "text_error",
]
