"""Writes the hostile-input corpus: one HL7 v2 message per file, each aimed at one
weakness, and ``expected.json``, what Switchboard is meant to answer to each.

    python -m tests.hostile.make_corpus

Each message has its own MSH-10 and patient, so none is a resend of another. The
expectations are Switchboard's stated behaviour (issue 13), written here by hand:
``ack`` the MSA-1 an MLLP sender gets, ``err`` its ERR-2 (segment^sequence^field or
^component), ``status`` the journal entry's status once the pipeline has run,
``exceptions`` the error classes opened for it, ``delivered`` whether it reaches the
test sink. HTTP ingest answers 202 for AA and 400 for AR, with the same journal,
exceptions and deliveries.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.hl7v2.charset import _TABLE_0211
from engine.store import limits

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs"

# Fields the shipped mapping reads (rules/mappings), by segment: MSH-n counts MSH-1.
MAPPED = {
    "MSH": [3, 4, 5, 6, 7, 9, 10, 11, 12],
    "EVN": [1, 4, 5, 6],
    "PID": [3, 5, 6, 7, 8, 10, 11, 13, 14, 15, 16, 17, 18, 22, 29, 30],
    "PD1": [3, 4],
}
# A name each character set can write, in its own script where it has one.
SAMPLES = {
    "iso8859-1": "Müller", "iso8859-2": "Dvořák", "iso8859-3": "Ġużeppi",
    "iso8859-4": "Šarūnas", "iso8859-5": "Иван", "iso8859-6": "علي",
    "iso8859-7": "Ελένη", "iso8859-8": "אבי", "iso8859-9": "Ğüneş",
    "iso8859-15": "Œuvre", "utf-8": "Łukasz 王芳", "gb18030": "王芳", "big5": "王芳",
    "euc_kr": "김민", "iso2022_jp": "山田", "ascii": "DOE",
}
SEPARATORS = b"|^~\\&\r\n\x0b\x1c"


@dataclass
class Case:
    name: str
    raw: bytes
    ack: str
    err: str = ""
    status: str = "routed"
    exceptions: list[str] = field(default_factory=list)
    delivered: bool = True


def fields(number: int) -> dict[str, list[bytes]]:
    """An ADT^A08 with every mapped field valued, as fields per segment (MSH-1 is the
    separator itself, so the MSH list starts at MSH-2)."""
    control = f"HOSTILE-{number:03d}".encode()
    return {
        "MSH": [b"^~\\&", b"EHR", b"RIVERSIDE", b"SB", b"RIVERSIDE", b"20261207101500",
                b"", b"ADT^A08^ADT_A01", control, b"P", b"2.5.1"],
        "EVN": [b"A08", b"20261207101500", b"", b"01", b"1234^JONES^ANN", b"20261207101500"],
        "PID": [b"1", b"", b"MRN-H%03d^^^RIVERSIDE^MR" % number, b"", b"DOE^JANE",
                b"SMITH", b"19800101", b"F", b"", b"2106-3^White^HL70005",
                b"1 MAIN ST^^SPRINGFIELD^IL^62701", b"", b"555-0100", b"555-0101",
                b"en^English^ISO639", b"M^Married^HL70002", b"CHR^Christian^HL70006",
                b"A1234", b"", b"", b"", b"N^Not Hispanic^HL70189", b"", b"", b"", b"",
                b"", b"", b"", b"N"],
        "PD1": [b"", b"", b"RIVERSIDE CLINIC", b"1234^JONES^ANN"],
    }


def encode(segments: dict[str, list[bytes]], ending: bytes = b"\r") -> bytes:
    return b"".join(name.encode() + b"|" + b"|".join(values) + ending
                    for name, values in segments.items())


def with_field(number: int, segment: str, position: int, value: bytes,
               **header: bytes) -> bytes:
    segments = fields(number)
    index = position - 2 if segment == "MSH" else position - 1
    values = segments[segment]
    values.extend([b""] * (index + 1 - len(values)))
    values[index] = value
    for name, extra in header.items():  # msh_18 etc.
        msh = segments["MSH"]
        at = int(name.removeprefix("msh_")) - 2
        msh.extend([b""] * (at + 1 - len(msh)))
        msh[at] = extra
    return encode(segments)


def cases() -> list[Case]:
    found: list[Case] = []
    number = 0

    def add(name: str, raw: bytes, ack: str, **outcome: object) -> None:
        found.append(Case(name, raw, ack, **outcome))  # type: ignore[arg-type]

    def next_number() -> int:
        nonlocal number
        number += 1
        return number

    # Bytes invalid in the declared charset (none declared: UTF-8), in every field the
    # canonical mapping reads: AR naming the field; nothing routed.
    for segment, positions in MAPPED.items():
        for position in positions:
            n = next_number()
            value = fields(n)[segment][position - 2 if segment == "MSH" else position - 1]
            bad = value[:1] + b"\xff" + value[1:]
            add(f"charset-utf8-{segment}-{position}", with_field(n, segment, position, bad),
                "AR", err=f"{segment}^1^{position}", status="rejected",
                exceptions=["validation"], delivered=False)

    # Every MSH-18 character set the parser knows: a name in it is taken and routed;
    # a byte it cannot decode is refused, naming PID-5.
    invalid_done: set[str] = set()
    for declared, codec_name in _TABLE_0211.items():
        codec = codecs.lookup(codec_name).name
        slug = declared.replace(" ", "-").replace("/", "-").lower()
        sample = SAMPLES[codec].encode(codec)
        assert not any(byte in sample for byte in SEPARATORS), (codec, sample)
        n = next_number()
        add(f"charset-{slug}-valid",
            with_field(n, "PID", 5, sample + b"^JANE", msh_18=declared.encode()), "AA")
        if codec in invalid_done:
            continue
        invalid_done.add(codec)
        for candidate in (b"\xff", b"\xa5", b"\x80"):
            try:
                candidate.decode(codec)
            except UnicodeDecodeError:
                n = next_number()
                add(f"charset-{slug}-invalid",
                    with_field(n, "PID", 5, b"DO" + candidate + b"E^JANE",
                               msh_18=declared.encode()),
                    "AR", err="PID^1^5", status="rejected", exceptions=["validation"],
                    delivered=False)
                break

    # Over-long values in every column the journal indexes: AR naming the field (104);
    # one character less is taken.
    for limit in limits.HL7V2_HEADER:
        segment, _, where = limit.path.partition("-")
        position, _, component = where.partition(".")
        for length, ack in ((limit.length + 1, "AR"), (limit.length, "AA")):
            n = next_number()
            value = (b"X" * length if limit.column != "control_id"
                     else (b"H%03d-" % n).ljust(length, b"X"))
            if limit.path == "MSH-9.1":
                value = value + b"^A08"
            elif limit.path == "MSH-9.2":
                value = b"ADT^" + value
            raw = with_field(n, "MSH", int(position), value)
            err = f"MSH^1^{position}" + (f"^^{component}" if component else "")
            if ack == "AR":
                add(f"too-long-{limit.path}", raw, ack, err=err, status="rejected",
                    exceptions=["validation"], delivered=False)
            else:
                add(f"longest-{limit.path}", raw, ack)

    # Missing or empty required fields: AR, required field missing (101).
    for path, position, value, err in (("MSH-9", 9, b"", "MSH^1^9^^1"),
                                       ("MSH-9.1", 9, b"^A08", "MSH^1^9^^1"),
                                       ("MSH-10", 10, b"", "MSH^1^10"),
                                       ("MSH-12", 12, b"", "MSH^1^12")):
        n = next_number()
        add(f"empty-{path}", with_field(n, "MSH", position, value), "AR", err=err,
            status="rejected", exceptions=["validation"], delivered=False)
    for path, keep in (("MSH-10", 8), ("MSH-12", 10)):
        n = next_number()
        segments = fields(n)
        segments["MSH"] = segments["MSH"][:keep]
        add(f"missing-{path}", encode(segments), "AR",
            err=f"MSH^1^{path.removeprefix('MSH-')}", status="rejected",
            exceptions=["validation"], delivered=False)

    # Wrong and mixed separators.
    n = next_number()
    add("separators-other-field-separator", encode(fields(n)).replace(b"|", b"#"), "AA")
    n = next_number()
    mixed = encode(fields(n))
    mixed = mixed.replace(b"\rPID|", b"\rPID#")  # PID in a separator MSH did not declare
    add("separators-pid-in-another-separator", mixed, "AA")
    n = next_number()
    add("separators-mixed-line-endings", encode(fields(n), b"\r\n").replace(
        b"\r\nPID", b"\nPID", 1), "AA")
    n = next_number()
    add("separators-no-encoding-characters",
        encode(fields(n)).replace(b"MSH|^~\\&|", b"MSH||", 1), "AR", err="MSH^1^2",
        status="rejected", exceptions=["validation"], delivered=False)

    # A byte-order mark inside the message: a character like any other in a field; at
    # the start of a segment, that line is no segment.
    n = next_number()
    add("bom-inside-a-field", with_field(n, "PID", 5, b"DOE\xef\xbb\xbf^JANE"), "AA")
    n = next_number()
    add("bom-before-a-segment", encode(fields(n)).replace(b"\rPID|", b"\r\xef\xbb\xbfPID|"),
        "AA")

    # NUL bytes: no HL7 v2 data type allows one (and PostgreSQL cannot keep one in text).
    n = next_number()
    add("nul-in-PID-5", with_field(n, "PID", 5, b"DO\x00E^JANE"), "AR", err="PID^1^5",
        status="rejected", exceptions=["validation"], delivered=False)
    n = next_number()
    add("nul-in-MSH-10", with_field(n, "MSH", 10, b"HOS\x00TILE"), "AR", err="MSH^1^10",
        status="rejected", exceptions=["validation"], delivered=False)
    n = next_number()
    add("nul-before-MSH", b"\x00" + encode(fields(n)), "AR", err="", status="rejected",
        exceptions=["validation"], delivered=False)
    return found


def main() -> None:
    INPUTS.mkdir(exist_ok=True)
    for old in INPUTS.glob("*.hl7"):
        old.unlink()
    expected = {}
    for case in cases():
        (INPUTS / f"{case.name}.hl7").write_bytes(case.raw)
        outcome = asdict(case)
        del outcome["name"], outcome["raw"]
        expected[case.name] = outcome
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(expected)} inputs to {INPUTS}")


if __name__ == "__main__":
    main()
