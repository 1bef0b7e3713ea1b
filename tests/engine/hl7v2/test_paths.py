"""Path addressing and value semantics, one table row per rule in the package docstring."""

from __future__ import annotations

import pytest

from engine.errors import PathError
from engine.hl7v2 import ALL, Path, parse, parse_path

MESSAGE = parse(
    "MSH|^~\\&|HIS|GENHOSP^1.2.3^ISO|LAB||20240102030405+0100||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||123^^^MRN&1.2&ISO^MR~456^^^SSN||DOE^JOHN||\"\"|M|||1 Main St\\.br\\Flat 2\r"
    "OBR|1||F1|CBC^Blood count\r"
    "OBX|1|NM|HGB^Haemoglobin||13.5|g/dL|12\\T\\16~x\r"
    "OBX|2|ST|NOTE||A\\F\\B\\S\\C\\R\\D\\E\\E|\r"
    "OBX|3|NM|WBC||\\X4D\\\\XC3A9\\x\r"
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("PID", Path("PID", None, None, None, None, None)),
        ("PID-3", Path("PID", None, 3, None, None, None)),
        ("PID-3.1", Path("PID", None, 3, None, 1, None)),
        ("PID-3.1.2", Path("PID", None, 3, None, 1, 2)),
        ("PID-3[2].1", Path("PID", None, 3, 2, 1, None)),
        ("OBX[3]-5", Path("OBX", 3, 5, None, None, None)),
        ("OBX[*]-5", Path("OBX", ALL, 5, None, None, None)),
        ("PID-3[*]", Path("PID", None, 3, ALL, None, None)),
        (" zpd-1 ", Path("ZPD", None, 1, None, None, None)),
    ],
)
def test_path_grammar(text, expected):
    assert parse_path(text) == expected


@pytest.mark.parametrize("text", ["PID-3.1", "OBX[*]-5", "PID-3[2].4.2", "OBX[3]"])
def test_path_prints_back(text):
    assert str(parse_path(text)) == text


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("PID.3", "is not an HL7 path"),
        ("PI-3", "is not an HL7 path"),
        ("PID-", "is not an HL7 path"),
        ("PID-3..1", "is not an HL7 path"),
        ("PID-0", "count from 1"),
        ("OBX[0]-5", "count from 1"),
        ("PID-3[1].0", "count from 1"),
    ],
)
def test_bad_paths_explain_themselves(text, fragment):
    with pytest.raises(PathError, match=fragment):
        parse_path(text)


@pytest.mark.parametrize(
    "path, expected",
    [
        ("MSH-1", "|"),  # field separator, numbered as HL7 does
        ("MSH-2", "^~\\&"),  # encoding characters, not split
        ("MSH-3", "HIS"),
        ("MSH-4", "GENHOSP"),  # composite -> first primitive
        ("MSH-4.2", "1.2.3"),
        ("MSH-9.3", "ORU_R01"),
        ("PID-3", "123"),  # first repetition, first primitive
        ("PID-3.4", "MRN"),  # component holding subcomponents -> first one
        ("PID-3.4.2", "1.2"),
        ("PID-3[2].1", "456"),
        ("PID-3[2].4", "SSN"),
        ("PID-5.2", "JOHN"),
        ("PID-2", ""),  # present, empty
        ("PID-3.2", ""),  # empty component between others
        ("PID-7", ""),  # explicit null reads as empty
        ("PID-11", "1 Main St\nFlat 2"),
        ("OBX-5", "13.5"),  # first OBX is the default
        ("OBX[2]-5", "A|B^C~D\\E"),
        ("OBX[3]-5", "Méx"),
        ("OBX-7", "12&16"),
        ("OBX-7[2]", "x"),
        ("OBX[2]-6", ""),
        ("OBR-4.2", "Blood count"),
    ],
)
def test_get(path, expected):
    assert MESSAGE.get(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "ZZZ-1",  # no such segment
        "OBX[4]-5",  # no fourth OBX
        "PID-99",  # past the last field
        "PID-3[3]",  # past the last repetition
        "PID-5.3",  # past the last component
        "PID-3.4.4",  # past the last subcomponent
        "MSH-2.2",  # MSH-2 has no components
        "OBX[2]-7",  # OBX[2]-6 is the last field sent (empty)
    ],
)
def test_get_absent_is_none(path):
    assert MESSAGE.get(path) is None


@pytest.mark.parametrize(
    "path, expected",
    [("PID-7", True), ("PID-2", False), ("PID-99", False), ("PID-8", False)],
)
def test_is_null(path, expected):
    assert MESSAGE.is_null(path) is expected


@pytest.mark.parametrize(
    "path, expected",
    [
        ("OBX[*]-5", ["13.5", "A|B^C~D\\E", "Méx"]),
        ("OBX[*]-3.2", ["Haemoglobin"]),  # OBX[2] and OBX[3] have no OBX-3.2
        ("PID-3", ["123", "456"]),  # every repetition when none is named
        ("PID-3.4", ["MRN", "SSN"]),
        ("PID-3[2].1", ["456"]),
        ("PID-3[*].1", ["123", "456"]),
        ("OBX[*]-7", ["12&16", "x"]),  # OBX[2] and OBX[3] contribute nothing
        ("ZZZ[*]-1", []),
        ("OBX-5", ["13.5"]),  # first OBX only unless [*]
    ],
)
def test_get_all(path, expected):
    assert MESSAGE.get_all(path) == expected


@pytest.mark.parametrize(
    "path, expected",
    [
        ("PID-3", "123^^^MRN&1.2&ISO^MR"),
        ("PID-3[*]", "123^^^MRN&1.2&ISO^MR~456^^^SSN"),
        ("PID-3.4", "MRN&1.2&ISO"),
        ("OBX[2]-5", "A\\F\\B\\S\\C\\R\\D\\E\\E"),
        ("OBR", "OBR|1||F1|CBC^Blood count"),
        ("PID-99", None),
        ("ZZZ", None),
    ],
)
def test_get_raw(path, expected):
    assert MESSAGE.get_raw(path) == expected


def test_get_all_raw():
    assert MESSAGE.get_all("PID-3", raw=True) == ["123^^^MRN&1.2&ISO^MR", "456^^^SSN"]
    assert MESSAGE.get_all("OBX[*]", raw=True)[1].startswith("OBX|2|")


@pytest.mark.parametrize(
    "call",
    [
        lambda: MESSAGE.get("OBX[*]-5"),
        lambda: MESSAGE.get("PID"),
        lambda: MESSAGE.get_raw("OBX[*]-5"),
        lambda: MESSAGE.get_all("PID"),
        lambda: MESSAGE.is_null("PID-3[*]"),
        lambda: MESSAGE.get(["PID-3"]),  # type: ignore[arg-type]
        lambda: MESSAGE.get(None),  # type: ignore[arg-type]
    ],
)
def test_misuse_of_wildcards_is_a_path_error(call):
    with pytest.raises(PathError):
        call()
