"""The HL7 v2 encoder: positions, minimum necessary, escaping, orders with their
results, errors, and the documented losses."""

from __future__ import annotations

import copy
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.encoders.hl7v2 import NOT_ROUND_TRIPPED, REVERSE_TABLES, EncodeError, encode_hl7v2
from engine.errors import SwitchboardError
from engine.hl7v2 import Message, parse
from engine.hl7v2.mllp import encode_frame
from engine.model.canonical import canonical_paths
from engine.model.canonical_path import parse_canonical_path
from engine.model.hl7_time import hl7_to_iso
from engine.rules.minimise import compile_scope
from engine.rules.source import read_rule_source
from tests.engine.encoders.roundtrip import (
    ROOT,
    convert,
    encode,
    encode_and_convert,
    written,
)

ADT = {
    "message": {"source_format": "hl7v2", "type": "ADT", "event": "A01",
                "structure": "ADT_A01", "processing_id": "P"},
    "patient": {
        "identifiers": [
            {"value": "MRN-1", "assigning_authority": "RIVERSIDE", "type": "MR"},
            {"value": "999-00-1234", "type": "SS"},
        ],
        "names": [{"family": "DOE", "given": "JANE", "middle": "Q", "use_code": "L",
                   "use": "official"}],
        "birth_date": "1980-01-02",
        "sex_code": "F",
        "gender": "female",
        "addresses": [{"line1": "1 Main St", "city": "Springfield", "state": "IL",
                       "postal_code": "62701", "type": "H"}],
    },
    "encounter": {"visit_number": "V100", "class_code": "I", "class": "IMP",
                  "location": {"point_of_care": "4E", "room": "401", "bed": "B"},
                  "attending": {"id": "D1", "family": "HOUSE", "given": "GREG"}},
    "orders": [], "results": [
        {"code": "8867-4", "display": "Heart rate", "system": "LN",
         "value": {"type": "NM", "number": 72}, "units": "/min", "reference_range": "60-100",
         "abnormal_flags": ["N"], "status_code": "F", "status": "final",
         "observed_at": "2024-01-02T03:04:05+01:00"},
    ],
    "appointments": [], "referrals": [], "documents": [], "merge": {}, "tasks": [],
}


def encoded(record) -> Message:
    return parse(encode(record))


# ---- positions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, expected",
    [
        ("MSH-9", "ADT^A01^ADT_A01"),
        ("MSH-10", "SB000042"),
        ("MSH-11", "P"),
        ("MSH-12", "2.5.1"),
        ("EVN-1", "A01"),
        ("PID-3[1]", "MRN-1^^^RIVERSIDE^MR"),
        ("PID-3[2]", "999-00-1234^^^^SS"),
        ("PID-5", "DOE^JANE^Q^^^^L"),
        ("PID-7", "19800102"),
        ("PID-8", "F"),
        ("PID-11", "1 Main St^^Springfield^IL^62701^^H"),
        ("PV1-2", "I"),
        ("PV1-3", "4E^401^B"),
        ("PV1-7", "D1^HOUSE^GREG"),
        ("PV1-19", "V100"),
        ("OBX-2", "NM"),
        ("OBX-3", "8867-4^Heart rate^LN"),
        ("OBX-5", "72"),
        ("OBX-6", "/min"),
        ("OBX-7", "60-100"),
        ("OBX-8", "N"),
        ("OBX-11", "F"),
        ("OBX-14", "20240102030405+0100"),
    ],
)
def test_each_field_goes_where_the_mapping_reads_it(path, expected):
    assert encoded(ADT).get_raw(path) == expected


def test_segments_follow_the_usual_structure():
    assert encoded(ADT).segment_ids == ["MSH", "EVN", "PID", "PV1", "OBX"]


def test_the_envelope_is_the_new_hop():
    text = encode_hl7v2(
        ADT, control_id="C-9", sent_at=datetime(2024, 1, 2, 3, 4, 5),
        sending_application="SB", sending_facility="RH", receiving_application="LIS",
        receiving_facility="LAB", version="2.3",
    )
    message = parse(text)
    assert message.get_raw("MSH-3") == "SB" and message.get_raw("MSH-6") == "LAB"
    assert message.control_id == "C-9" and message.get("MSH-12") == "2.3"
    assert message.get("MSH-7").startswith("20240102030405")
    assert message.get("EVN-2") == message.get("MSH-7")  # EVN-2 is required
    assert message.get("MSH-15") is None and message.get("MSH-18") is None


@pytest.mark.parametrize(
    "field, value, normalised, code_path, code",
    [
        ("patient", "gender", "female", "PID-8", "F"),
        ("patient", "gender", "other", "PID-8", "O"),
        ("encounter", "class", "IMP", "PV1-2", "I"),
        ("encounter", "class", "AMB", "PV1-2", "O"),
        ("encounter", "class", "FLD", "PV1-2", None),  # no v2 code: nothing is written
    ],
)
def test_a_normalised_value_without_its_code_is_written_as_the_code(
    field, value, normalised, code_path, code
):
    record = {"message": ADT["message"], field: {value: normalised}}
    assert encoded(record).get(code_path) == code


def test_the_code_as_sent_wins_over_the_normalised_value():
    # A ambiguous sex maps to "other"; the code as sent is what goes back.
    record = {"message": ADT["message"], "patient": {"gender": "other", "sex_code": "A"}}
    assert encoded(record).get("PID-8") == "A"
    record = {"message": ADT["message"], "patient": {"sex_code": "A", "gender": "other"}}
    assert encoded(record).get("PID-8") == "A"


def test_reverse_tables_invert_the_official_concept_maps():
    tables = read_rule_source(ROOT).tables
    for table_id, reverse in REVERSE_TABLES.items():
        first_code: dict[str, str] = {}
        for code, value in tables[table_id].entries.items():
            first_code.setdefault(value, code)
        assert reverse == first_code, table_id


@pytest.mark.parametrize(
    "iso, dtm",
    [
        ("2024", "2024"),
        ("2024-01", "202401"),
        ("2024-01-02", "20240102"),
        ("2024-01-02T03", "2024010203"),
        ("2024-01-02T03:04", "202401020304"),
        ("2024-01-02T03:04:05.1234", "20240102030405.1234"),
        ("2024-01-02T03:04-05:30", "202401020304-0530"),
        ("2024-01-02T03:04:05+00:00", "20240102030405+0000"),
    ],
)
def test_times_go_back_to_dtm_at_their_precision(iso, dtm):
    message = encoded({"message": ADT["message"], "patient": {"birth_date": iso}})
    assert message.get("PID-7") == dtm
    assert hl7_to_iso(dtm) == iso


@pytest.mark.parametrize("value, text", [
    ({"type": "NM", "number": 72}, "72"), ({"type": "NM", "number": 7.5}, "7.5"),
    ({"type": "NM", "number": -0.25}, "-0.25"), ({"type": "NM", "number": 1e-05}, "0.00001"),
    ({"type": "NM", "number": 1e16}, "10000000000000000"),
    ({"type": "NM", "text": "<5"}, "<5"),
])
def test_numbers_are_written_as_nm(value, text):
    record = {"message": ADT["message"], "results": [{"value": value}]}
    message = encoded(record)
    assert (message.get("OBX-2"), message.get_raw("OBX-5")) == ("NM", text)
    assert convert(encode(record))["results"][0]["value"] == value


@pytest.mark.parametrize("value, obx_5", [
    ({"type": "SN", "number": 182}, "^182"),
    ({"type": "SN", "comparator": ">=", "number": 1.5}, ">=^1.5"),
    ({"type": "SN", "low": 10, "high": 20}, "^10^-^20"),
    ({"type": "SN", "numerator": 1, "denominator": 128}, "^1^:^128"),
    ({"type": "SN", "text": "2+"}, "^2^+"),
    ({"type": "ST", "text": "A^B & C"}, "A\\S\\B \\T\\ C"),
    ({"type": "TX", "text": "one\ntwo"}, "one\\.br\\two"),
    ({"type": "FT", "text": "Critical\n\nvalue"}, "Critical\\.br\\\\.br\\value"),
    ({"type": "CWE", "code": {"code": "27268008", "display": "Salmonella", "system": "SCT"},
      "text": "Salmonella species"}, "27268008^Salmonella^SCT^^^^^^Salmonella species"),
    ({"type": "CWE", "text": "Bacterial culture"}, "^^^^^^^^Bacterial culture"),
    ({"type": "CE", "code": {"code": "V01", "display": "Not VFC Eligible",
                             "system": "HL70064"}}, "V01^Not VFC Eligible^HL70064"),
    ({"type": "DT", "datetime": "2021-08-18"}, "20210818"),
    ({"type": "TS", "datetime": "2015-08-18T06:06:05-05:00"}, "20150818060605-0500"),
    ({"type": "HD", "text": "1.2.840.317.5947431.51"}, "1.2.840.317.5947431.51"),
    ({"type": "FN", "text": "182"}, "182"),
    ({"type": "RP", "attachment": {"pointer": "https://testurl.com", "application": "PACS",
                                   "data_type": "image", "subtype": "PICT"}},
     "https://testurl.com^PACS^image^PICT"),
    # The content of an ED stays in the message it came in: none is written.
    ({"type": "ED", "attachment": {"application": "LAB", "data_type": "AP", "subtype": "PDF",
                                   "encoding": "Base64"}}, "LAB^AP^PDF^Base64"),
    ({"text": "free"}, "free"),
])
def test_each_value_goes_to_obx_5_as_its_type_reads_it(value, obx_5):
    record = {"message": {"type": "ORU", "event": "R01"}, "results": [{"value": value}]}
    message = encoded(record)
    assert (message.get("OBX-2"), message.get_raw("OBX-5")) == (value.get("type", ""), obx_5)
    assert encode_and_convert(record)["results"] == record["results"]


# ---- minimum necessary ---------------------------------------------------------------


def test_a_narrow_scope_writes_nothing_else():
    narrow = compile_scope(["message", "patient.identifiers"]).project(ADT)
    message = encoded(narrow)
    assert message.segment_ids == ["MSH", "EVN", "PID"]
    assert message.get_all("PID-3[*].1") == ["MRN-1", "999-00-1234"]
    for path in ("PID-5", "PID-7", "PID-8", "PID-11"):
        assert message.get(path) is None
    # Nothing of the record apart from the identifiers is in the text at all.
    text = encode(narrow)
    for value in ("DOE", "19800102", "Springfield", "V100", "HOUSE", "8867-4"):
        assert value not in text


@pytest.mark.parametrize(
    "record, segments",
    [
        ({"message": {"type": "ORU", "event": "R01"}}, ["MSH"]),
        ({"message": {"type": "ORU"}, "patient": {}, "encounter": {}, "orders": [],
          "results": [], "merge": {}}, ["MSH"]),
        # None (kept by the minimiser inside a selected subtree) is nothing, too.
        ({"message": {"type": "ORU"}, "patient": {"gender": None, "names": [{}]},
          "encounter": {"location": {"room": None}}}, ["MSH"]),
        # Placeholders the minimiser keeps to hold list positions give no segment.
        ({"message": {"type": "ORU"}, "results": [{}, {"code": "K"}]}, ["MSH", "OBX"]),
        ({"message": {"type": "ADT", "event": "A08"}}, ["MSH", "EVN"]),
    ],
)
def test_absent_sections_give_no_segment(record, segments):
    assert encoded(record).segment_ids == segments


def test_the_record_is_not_changed():
    record = copy.deepcopy(ADT)
    encode(record)
    assert record == ADT


# ---- escaping ----------------------------------------------------------------------

AWKWARD = [
    "O|BRIEN", "A^B", "C~D", "E&F", "back\\slash", "C:\\dir\\file", "\\F\\ literal",
    "two\nlines", "cr\rhere", "crlf\r\nend", "\n", '""', '"', "  padded  ",
    "Zoë Ñandú", "中文", "\x0bvt\x1cfs", "|^~\\&\r\n",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_survive_the_round_trip(value):
    record = {
        "message": ADT["message"],
        "patient": {"identifiers": [{"value": value}], "names": [{"family": value}]},
        "results": [{"value": {"type": "ST", "text": value}, "units": value}],
    }
    text = encode(record)
    encode_frame(text.encode("utf-8"))  # no VT or FS reaches the MLLP frame
    message = parse(text.encode("utf-8"))
    assert message.segment_ids == ["MSH", "EVN", "PID", "OBX"]
    again = convert(text.encode("utf-8"))
    assert again["patient"] == record["patient"]
    assert again["results"] == record["results"]


def test_non_ascii_text_declares_utf8():
    text = encode({"message": ADT["message"], "patient": {"names": [{"family": "Zoë"}]}})
    assert parse(text.encode("utf-8")).get("MSH-18") == "UNICODE UTF-8"
    assert encoded(ADT).get("MSH-18") is None


def test_document_text_keeps_its_blank_and_trailing_lines():
    text = "Line 1\n\n  indented | piped\nlast\n"
    record = {"message": {"type": "MDM", "event": "T02"},
              "documents": [{"id": "D1", "type": "DS", "text": text}]}
    again = encode_and_convert(record)
    assert again["documents"] == record["documents"]


# ---- orders and results ------------------------------------------------------------


@pytest.mark.parametrize(
    "orders, results, segments",
    [
        ([], [{"code": "A"}], ["OBX"]),
        ([{"placer_id": "P1", "code": "CBC"}], [{"code": "A", "order_placer_id": "P1"}],
         ["ORC", "OBR", "OBX"]),
        # Results before the order they follow keep their places in both lists.
        ([{"placer_id": "P1"}, {"placer_id": "P2"}],
         [{"code": "A", "order_placer_id": "P2"}, {"code": "B", "order_placer_id": "P1"}],
         ["ORC", "OBR", "ORC", "OBR", "OBX", "OBR", "OBX"]),
        ([{"placer_id": "P1"}, {"placer_id": "P2"}],
         [{"code": "A", "order_placer_id": "P1"}, {"code": "B", "order_placer_id": "P1"}],
         ["ORC", "OBR", "OBX", "OBX", "ORC", "OBR"]),
        # A result of an order the record does not hold: an OBR with just its ids,
        # where the result comes (the ORC mapping reads only the OBR after an ORC).
        ([{"placer_id": "P1"}], [{"code": "A", "order_placer_id": "P9",
                                  "order_filler_id": "F9"}],
         ["OBR", "OBX", "ORC", "OBR"]),
        # An order with no ids takes the results that name none.
        ([{"code": "CBC"}], [{"code": "A"}], ["ORC", "OBR", "OBX"]),
    ],
)
def test_results_follow_their_orders(orders, results, segments):
    record = {"message": {"type": "ORU", "event": "R01"}, "orders": orders,
              "results": results}
    assert encoded(record).segment_ids == ["MSH", *segments]
    again = encode_and_convert(record)
    assert (again["orders"], again["results"]) == (orders, results)


PLACERS = st.sampled_from([None, "P1", "P2", "P3"])


@given(
    st.lists(st.fixed_dictionaries({"placer_id": PLACERS, "code": st.sampled_from(["X", "Y"])}),
             min_size=1, max_size=4),
    st.lists(st.fixed_dictionaries({"order_placer_id": PLACERS,
                                    "code": st.sampled_from(["A", "B"])}), max_size=6),
)
def test_any_interleaving_of_orders_and_results_round_trips(orders, results):
    orders = [{k: v for k, v in order.items() if v} for order in orders]
    results = [{k: v for k, v in result.items() if v} for result in results]
    record = {"message": {"type": "ORU", "event": "R01"}, "orders": orders,
              "results": results}
    again = encode_and_convert(record)
    assert (again["orders"], again["results"]) == (orders, results)


# ---- property: any text, anywhere ----------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


@given(family=TEXT, given_name=TEXT, identifier=TEXT, city=TEXT, value=TEXT, note=TEXT)
def test_any_text_round_trips_and_keeps_the_segment_structure(
    family, given_name, identifier, city, value, note
):
    record = {
        "message": {"type": "ORU", "event": "R01"},
        "patient": {"identifiers": [{"value": identifier, "type": "MR"}],
                    "names": [{"family": family, "given": given_name}],
                    "addresses": [{"city": city}]},
        "orders": [{"placer_id": identifier, "display": note}],
        "results": [{"order_placer_id": identifier, "value": {"type": "ST", "text": value},
                     "reference_range": note}],
    }
    text = encode(record)
    assert text.count("\r") == 5 and "\n" not in text
    message = parse(text.encode("utf-8"))
    assert message.segment_ids == ["MSH", "PID", "ORC", "OBR", "OBX"]
    again = written(convert(text.encode("utf-8")))
    for section in ("patient", "orders", "results"):
        assert again[section] == record[section]


DTM = st.tuples(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([4, 6, 8, 10, 12, 14, 16, 18]),
    st.sampled_from(["", "+0000", "-0530", "+0215", "+1400"]),
).map(lambda t: t[0].strftime("%Y%m%d%H%M%S.%f")[: t[1] + (1 if t[1] > 14 else 0)]
      + (t[2] if t[1] >= 10 else ""))


@given(DTM)
def test_any_time_round_trips(dtm):
    iso = hl7_to_iso(dtm)
    record = {"message": {"type": "ADT", "event": "A08"}, "patient": {"birth_date": iso},
              "encounter": {"admit_at": iso}}
    again = encode_and_convert(record)
    assert again["patient"]["birth_date"] == iso
    assert again["encounter"]["admit_at"] == iso


@given(st.one_of(st.integers(-(2**53), 2**53),
                 st.floats(allow_nan=False, allow_infinity=False)))
def test_any_number_round_trips(number):
    record = {"message": {"type": "ORU", "event": "R01"},
              "results": [{"value": {"type": "NM", "number": number}}]}
    assert encode_and_convert(record)["results"][0]["value"] == {"type": "NM", "number": number}


# ---- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, text",
    [
        ({"patient": {"names": [{"family": "SECRET"}]}},
         "message.type is missing: an HL7 v2 message needs a message type (MSH-9). "
         "Add 'message' to the connection's data scope"),
        ({"message": {"type": "ADT"}, "patient": {"birth_date": "SECRET 1980"}},
         "patient.birth_date is not an ISO 8601 date/time. "
         "Expected YYYY[-MM[-DD[Thh[:mm[:ss[.f]]][+hh:mm]]]] as the schema says"),
        ({"message": {"type": "ADT"}, "patient": {"names": "SECRET"}},
         "patient.names must be a list"),
        ({"message": {"type": "ADT"}, "patient": {"race": "SECRET"}},
         "patient.race must be an object"),
        ({"message": {"type": "ADT"}, "patient": {"deceased": "SECRET"}},
         "patient.deceased must be true or false"),
        ({"message": {"type": "ADT"}, "results": [{"units": ["SECRET"]}]},
         "results[*].units must be text. Check the mapping that produced it"),
        ({"message": {"type": "ORU"}, "results": [{"value": "SECRET"}]},
         "results[*].value must be an object"),
        ({"message": {"type": "ORU"}, "results": [{"value": {"type": "NM", "number": "SECRET"}}]},
         "results[*].value.number must be a number"),
        ({"message": {"type": "ORU"}, "results": [{"value": {
            "type": "TS", "datetime": "SECRET"}}]},
         "results[*].value.datetime is not an ISO 8601 date/time. "
         "Expected YYYY[-MM[-DD[Thh[:mm[:ss[.f]]][+hh:mm]]]] as the schema says"),
        ({"message": {"type": "ADT"}, "orders": "SECRET"},
         "orders must be a list of objects"),
        ({"message": {"type": "REF"}, "referrals": [{"referred_to": "SECRET"}]},
         "referrals[*].referred_to must be an object"),
        ({"message": "SECRET"}, "message must be an object"),
    ],
)
def test_errors_name_the_path_never_the_value(record, text):
    with pytest.raises(EncodeError) as caught:
        encode(record)
    assert isinstance(caught.value, SwitchboardError)
    assert str(caught.value) == text
    assert "SECRET" not in repr(caught.value.args)


# ---- what is documented as lost ------------------------------------------------------


def test_every_documented_loss_names_a_canonical_path():
    paths = canonical_paths()
    for path in NOT_ROUND_TRIPPED:
        assert parse_canonical_path(path) in paths, path


@pytest.mark.parametrize(
    "path, record",
    [
        ("tasks", {"message": {"type": "ADT", "event": "A08"},
                   "tasks": [{"kind": "review", "queue": "nurse"}]}),
        ("encounter.status", {"message": {"type": "ORU", "event": "R01"},
                              "encounter": {"visit_number": "V1", "status": "finished"}}),
        ("appointments[*].location", {
            "message": {"type": "SIU", "event": "S12"},
            "appointments": [{"placer_id": "A1", "location": "ROOM 1"},
                             {"placer_id": "A2", "location": "ROOM 2"}]}),
        ("documents[*].text", {
            "message": {"type": "MDM", "event": "T02"},
            "documents": [{"id": "D1", "text": "one"}, {"id": "D2", "text": "two"}]}),
        ("message.accept_ack", {"message": {"type": "ADT", "event": "A08",
                                            "accept_ack": "AL"}}),
        ("message.operator.assigning_authority", {
            "message": {"type": "ADT", "event": "A08",
                        "operator": {"id": "U1", "assigning_authority": "H"}}}),
        ("results[*].value", {"message": {"type": "ORU", "event": "R01"},
                              "results": [{"value": {"type": "ST", "number": 5}}]}),
        ("results[*].value.attachment.data_at", {
            "message": {"type": "ORU", "event": "R01"},
            "results": [{"value": {"type": "ED", "attachment": {
                "data_type": "AP", "subtype": "PDF", "data_at": "OBX[3]-5.5"}}}]}),
        ("orders", {"message": {"type": "ORU", "event": "R01"}, "orders": [],
                    "results": [{"code": "K", "order_placer_id": "P1"}]}),
        ("appointments", {"message": {"type": "ORU", "event": "R01"},
                          "appointments": [{"placer_id": "A1"}]}),
        ("orders[*].status", {"message": {"type": "ORM", "event": "O01"},
                              "orders": [{"placer_id": "P1", "status": "draft"}]}),
    ],
)
def test_documented_losses_are_real_and_listed(path, record):
    assert path in NOT_ROUND_TRIPPED
    steps = parse_canonical_path(path)
    assert _at(encode_and_convert(record), steps) != _at(record, steps)


def _at(record, steps):
    """Every value at a canonical path, for comparison."""
    values = [record]
    for step in steps:
        if step == "[*]":
            values = [item for value in values for item in (value or [])]
        else:
            values = [value.get(step) if isinstance(value, dict) else None for value in values]
    return values
