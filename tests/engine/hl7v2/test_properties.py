"""Property tests: hostile input raises only ParseError; generated messages round-trip,
as given and after random edits checked against a plain model of the structure."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from engine.errors import ParseError
from engine.hl7v2 import Message, parse, text_error
from engine.hl7v2.escape import escape, unescape
from engine.hl7v2.separators import Separators, separators_from
from tests.samples import CORPUS_FILES

SAMPLES = [path.read_bytes() for path in CORPUS_FILES]
PROBES = [
    "MSH-1", "MSH-2", "MSH-9", "MSH-10", "MSH-18", "PID-3", "PID-3[2].4.2", "PID-5.1",
    "OBX[*]-5", "OBX[2]-5.1.1", "PV1-3", "ZZZ-1", "PID-99[9].9.9",
]


def exercise(message: Message, raw: bytes) -> None:
    """Read the message every way a caller might; none of it may raise."""
    for path in PROBES:
        if "*" in path:
            message.get_all(path)
            message.get_all(path, raw=True)
        else:
            message.get(path)
            message.get_raw(path)
            message.is_null(path)
    message.get_all("OBX[*]", raw=True)
    assert message.encode() == raw


def parse_or_reject(raw: bytes) -> None:
    try:
        message = parse(raw)
    except ParseError:
        return
    exercise(message, raw)


@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_parse_error(raw):
    parse_or_reject(raw)


@given(st.binary(max_size=64))
def test_random_bytes_after_an_msh_prefix(tail):
    parse_or_reject(b"MSH|^~\\&|" + tail)
    parse_or_reject(b"MSH" + tail)


@given(st.sampled_from(SAMPLES), st.floats(0, 1))
def test_truncated_messages(sample, fraction):
    parse_or_reject(sample[: int(len(sample) * fraction)])


@given(st.sampled_from(SAMPLES), st.binary(min_size=1, max_size=6))
def test_wrong_separators(sample, junk):
    start = sample.index(b"MSH") + 3
    parse_or_reject(sample[:start] + junk + sample[start + 5 :])


@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(st.floats(0, 1), st.binary(max_size=4)), min_size=1, max_size=8),
)
def test_mutated_messages(sample, mutations):
    raw = bytearray(sample)
    for where, replacement in mutations:
        at = int(len(raw) * where)
        raw[at : at + len(replacement)] = replacement
    parse_or_reject(bytes(raw))


def test_one_megabyte_obx():
    big = ("A|B^C&D~E\\" * 110_000)[:1_048_576]
    encoded = escape(big, separators_from("|", "^~\\&"))
    text = (
        "MSH|^~\\&|LAB|H|EHR|H|20240101||ORU^R01|1|P|2.5.1\rPID|1||7\r"
        f"OBX|1|TX|NOTE||{encoded}|\rOBX|2|NM|X||5\r"
    )
    raw = text.encode()
    message = parse(raw)
    assert message.get("OBX-5") == big
    assert message.get("OBX[2]-5") == "5"
    exercise(message, raw)
    mangled = raw.replace(b"OBX|1|", b"OBX\x00\xff", 1)
    parse_or_reject(mangled)


# ---- generated valid messages ---------------------------------------------------------

Structure = list[list[list[list[str]]]]  # fields -> repetitions -> components -> subs

DELIMITER_SETS = [("|", "^~\\&"), ("|", "^~\\&#"), ("#", "$*@!"), ("!", "^~\\&")]
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",)), max_size=6
).filter(lambda v: v != '""')
SUBS = st.lists(TEXT, min_size=1, max_size=3)
COMPS = st.lists(SUBS, min_size=1, max_size=3)
REPS = st.lists(COMPS, min_size=1, max_size=3)
FIELDS = st.lists(REPS, min_size=0, max_size=6)
SEGMENT_IDS = st.sampled_from(["PID", "PV1", "OBX", "NTE", "ZPD", "Z01", "IN1"])
SEGMENTS = st.lists(st.tuples(SEGMENT_IDS, FIELDS), min_size=0, max_size=6)


def encode_field(field: list[list[list[str]]], seps: Separators) -> str:
    return seps.repetition.join(
        seps.component.join(
            seps.subcomponent.join(escape(sub, seps) for sub in comp) for comp in rep
        )
        for rep in field
    )


def encode_model(segments: list[tuple[str, Structure]], seps: Separators) -> str:
    header = f"MSH{seps.field}{seps.encoding_characters}" + seps.field.join(
        ["", "APP", "FAC", "", "", "20240101", "", "ADT^A01".replace("^", seps.component),
         "C1", "P", "2.5.1"]
    )
    lines = [header]
    for sid, fields in segments:
        lines.append(seps.field.join([sid] + [encode_field(f, seps) for f in fields]))
    return "\r".join(lines) + "\r"


def leaves(segments: list[tuple[str, Structure]]):
    seen: dict[str, int] = {}
    for sid, fields in segments:
        seen[sid] = seen.get(sid, 0) + 1
        for f, field in enumerate(fields, start=1):
            for r, rep in enumerate(field, start=1):
                for c, comp in enumerate(rep, start=1):
                    for s, sub in enumerate(comp, start=1):
                        yield f"{sid}[{seen[sid]}]-{f}[{r}].{c}.{s}", sub


def assert_matches(message: Message, segments, seps: Separators) -> None:
    assert message.segment_ids == ["MSH"] + [sid for sid, _ in segments]
    assert message.get("MSH-4") == "FAC"
    for path, value in leaves(segments):
        assert message.get(path) == value, path
    assert message.encode() == encode_model(segments, seps).encode()


@given(st.sampled_from(DELIMITER_SETS), SEGMENTS)
def test_generated_messages_are_accepted_and_round_trip(delimiters, segments):
    seps = separators_from(*delimiters)
    raw = encode_model(segments, seps).encode()
    message = parse(raw)
    assert message.encode() == raw
    assert_matches(message, segments, seps)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert_segment", "remove_segment", "insert_rep", "remove_rep"]),
        st.integers(0, 20), st.integers(1, 8), st.integers(1, 4), st.integers(1, 4),
        st.integers(1, 4), TEXT,
    ),
    max_size=8,
)


@given(st.sampled_from(DELIMITER_SETS), SEGMENTS, EDITS)
def test_generated_messages_round_trip_after_random_edits(delimiters, segments, edits):
    seps = separators_from(*delimiters)
    message = parse(encode_model(segments, seps).encode())
    model = [(sid, [[[list(c) for c in r] for r in f] for f in fields]) for sid, fields in segments]
    for kind, seg_pick, f, r, c, s, value in edits:
        apply_edit(message, model, kind, seg_pick, f, r, c, s, value)
    again = parse(message.encode())
    assert_matches(again, model, seps)
    assert_matches(message, model, seps)


def apply_edit(message, model, kind, seg_pick, f, r, c, s, value):
    if kind == "insert_segment" or not model:
        at = seg_pick % (len(model) + 1)
        after = "MSH" if at == 0 else occurrence_path(model, at - 1)
        message.insert_segment("NTE" + message.separators.field + escape(value, message.separators),
                               after=after)
        model.insert(at, ("NTE", [[[[value]]]]))
        return
    pos = seg_pick % len(model)
    path = occurrence_path(model, pos)
    fields = model[pos][1]
    if kind == "remove_segment":
        message.remove_segment(path)
        del model[pos]
    elif kind == "set":
        message.set(f"{path}-{f}[{r}].{c}.{s}", value)
        if value == "" and not present(fields, f, r, c, s):
            return  # clearing an absent position leaves it absent
        pad(fields, f, [[[""]]])
        pad(fields[f - 1], r, [[""]])
        pad(fields[f - 1][r - 1], c, [""])
        pad(fields[f - 1][r - 1][c - 1], s, "")
        fields[f - 1][r - 1][c - 1][s - 1] = value
    else:
        if kind == "remove_rep" and f > len(fields):
            return  # nothing to remove from an absent field
        pad(fields, f, [[[""]]])
        reps = fields[f - 1]
        if reps == [[[""]]]:
            reps.clear()  # an empty field has no repetitions to keep
        if kind == "insert_rep":
            r = min(r, len(reps) + 1)
            message.insert_repetition(f"{path}-{f}[{r}]", value)
            reps.insert(r - 1, [[value]])
        elif reps:
            r = min(r, len(reps))
            message.remove_repetition(f"{path}-{f}[{r}]")
            del reps[r - 1]
        if not reps:
            reps.append([[""]])


def present(fields, f: int, r: int, c: int, s: int) -> bool:
    level = fields
    for index in (f, r, c, s):
        if index > len(level):
            return False
        level = level[index - 1]
    return True


def pad(items: list, length: int, filler) -> None:
    while len(items) < length:
        items.append(filler if isinstance(filler, str) else _copy(filler))


def _copy(value):
    return [_copy(v) for v in value] if isinstance(value, list) else value


def occurrence_path(model, pos: int) -> str:
    sid = model[pos][0]
    return f"{sid}[{sum(1 for other, _ in model[: pos + 1] if other == sid)}]"


@given(st.sampled_from(DELIMITER_SETS), TEXT)
def test_set_then_get_is_identity(delimiters, value):
    assume(value != "")
    seps = separators_from(*delimiters)
    message = parse(encode_model([("PID", [])], seps))
    message.set("PID-5[2].3.2", value)
    assert parse(message.encode()).get("PID-5[2].3.2") == value


@given(st.sampled_from(DELIMITER_SETS), st.text(st.characters(blacklist_categories=("Cs",))))
def test_escape_then_unescape_is_identity(delimiters, value):
    seps = separators_from(*delimiters)
    encoded = escape(value, seps)
    structural = seps.field + seps.component + seps.repetition + seps.subcomponent + "\r\n"
    assert not any(ch in encoded for ch in structural)
    assert unescape(encoded, seps) == value


@given(st.text(alphabet=st.sampled_from("\\XFSTREHNP.brspk0123456789aZ|^&~+-"), max_size=60))
def test_unescape_never_raises_on_any_escape_soup(text):
    unescape(text, separators_from("|", "^~\\&#"))


# Every MSH-18 name Switchboard reads (table 0211), and byte runs that stress the
# stateful and multibyte decoders: escape sequences whole and broken, lead bytes alone.
CHARSET_NAMES = ["", "8859/1", "UNICODE UTF-8", "GB 18030-2000", "BIG-5", "KS X 1001",
                 "ISO 2022-1994", "ISO IR87"]
CODEC_STRESS = st.lists(
    st.sampled_from([b"\x1b$B", b"\x1b(B", b"\x1b(J", b"\x1b$@", b"\x1b~", b"\x1b",
                     b";3", b"~(", b"\x80", b"\xa4", b"\xff", b"|", b"^"])
    | st.binary(max_size=6),
    max_size=24,
).map(b"".join)


@given(st.sampled_from(CHARSET_NAMES), CODEC_STRESS)
def test_any_bytes_in_each_declared_charset_are_parsed_or_refused_with_a_place(
        charset, tail):
    raw = (b"MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5||||||" + charset.encode()
           + b"\rPID|1||7||" + tail + b"\r")
    try:
        message = parse(raw)
    except ParseError:
        return
    exercise(message, raw)
    error = text_error(message)
    if any(warning.code == "undecodable-bytes" for warning in message.warnings):
        assert error is not None and error.segment in ("MSH", "PID")
