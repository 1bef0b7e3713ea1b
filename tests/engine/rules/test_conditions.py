"""Route conditions: parsing errors, operator semantics, and the three evaluators (the
interpreter, the closures and the generated code of a route table) agreeing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import SwitchboardError
from engine.hl7v2 import parse
from engine.rules.conditions import (
    AllOf,
    AnyOf,
    Evidence,
    Leaf,
    Not,
    RuleError,
    Scope,
    as_moment,
    as_number,
    compile_condition,
    evaluate_condition,
    leaves,
    parse_condition,
    text_key,
)
from engine.rules.route_table import compile_routes

WHERE = "route table 'labs', row 'r1' (rows[0])"

RECORD = {
    "message": {"type": "ORU", "event": "R01", "sending_facility": "NORTH", "version": "2.5"},
    "patient": {
        "birth_date": "1980-01-02",
        "deceased": False,
        "identifiers": [{"value": "111"}, {"value": ""}, {"value": None}],
        "names": [{"family": "DOE"}],
        "marital_status": {"code": "M"},
        "account_number": "",
    },
    "encounter": {"admit_at": "2024-03-01T10:00+01:00", "discharge_at": "2024-03-02T09:00"},
    "results": [
        {"code": "GLU", "value": 7.5, "abnormal_flags": ["H", "A"], "status": "F",
         "observed_at": "2024-03-01T08:30"},
        {"code": "K", "value": "4", "abnormal_flags": [], "status": "F"},
        {"code": "NA", "value": 140, "abnormal_flags": ["N"], "status": "C"},
    ],
    "appointments": [],
}


def leaf(path, op, value=None, quantifier=None, source="field"):
    data = {source: path, "op": op}
    if value is not None:
        data["value"] = value
    if quantifier is not None:
        data["quantifier"] = quantifier
    return data


def verdicts(data, record=RECORD, message=None):
    """What the interpreter, the closure and a compiled route table each decide."""
    condition = parse_condition(data, WHERE)
    table = compile_routes([{"id": "t", "rows": [{"id": "r", "when": data, "to": ["x"]}]}])
    return (
        evaluate_condition(condition, record, message),
        compile_condition(condition)(record, message),
        bool(table.evaluate(record, message).rows),
    )


# ---- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, fragment",
    [
        (leaf("results[*].code", "like", "G"), "when.op: unknown operator 'like'"),
        (leaf("results[*].code", "matches", "(GLU"), "when.value: bad regex '(GLU'"),
        (leaf("results[*].code", "eq"), "when: eq needs a value"),
        (leaf("results[*].code", "in", "GLU"), "when.value: in needs a non-empty list"),
        (leaf("results[*].code", "not_in", []), "when.value: not_in needs a non-empty list"),
        (leaf("results[*].code", "in", ["A", ["B"]]), "when.value[1]: ['B'] is not a string"),
        (leaf("results[*].code", "exists", "x"), "when: exists takes no value and no quantifier"),
        (leaf("results[*].code", "missing", quantifier="all"), "missing takes no value"),
        (leaf("results[*].code", "eq", "x", quantifier="most"), "'most' is not any or all"),
        (leaf("results[*].code", "matches", 5), "when.value: matches needs a regex string"),
        (leaf("results[*].value", "ge", "high"), "'high' is neither a number nor an ISO 8601"),
        (leaf("results[*].value", "ge", float("nan")), "nan is not a usable number"),
        (leaf("results[*].value", "eq", {"a": 1}), "{'a': 1} is not a string, number or boolean"),
        (leaf("results..code", "exists"), "when.field: 'results..code' is not a canonical path"),
        (leaf("OBX", "exists", source="hl7"), "when.hl7: 'OBX' names a whole segment"),
        (leaf("OBX-0", "exists", source="hl7"), "when.hl7: 'OBX-0': HL7 positions count from 1"),
        ({"field": "a", "hl7": "PID-3", "op": "exists"}, "reads either field or hl7, not both"),
        ({"field": "a", "op": "exists", "extra": 1}, "when: unexpected keys ['extra']"),
        ({"all": []}, "when.all: needs a non-empty list of conditions"),
        ({"any": [leaf("a", "exists"), {"not": "x"}]}, "when.any[1].not: a condition must be"),
        ({"all": [leaf("a", "exists")], "any": []}, "when: unexpected keys ['any']"),
        ({"op": "eq"}, "when: not a condition (keys ['op'])"),
        # scopes
        ({"some": {"of": "results", "where": leaf("code", "exists")}},
         "when.some.of: 'results' is not a list path with one [*], at its end"),
        ({"some": {"of": "results[*].abnormal_flags[*]", "where": leaf("code", "exists")}},
         "is not a list path with one [*]"),
        ({"every": {"of": "results[*].code", "where": leaf("code", "exists")}},
         "when.every.of: 'results[*].code' is not a list path"),
        ({"some": {"of": "results..x[*]", "where": leaf("code", "exists")}},
         "when.some.of: 'results..x[*]' is not a canonical path"),
        ({"some": {"of": "results[*]"}}, "when.some: write {of: LIST, where: CONDITION}"),
        ({"some": ["results[*]"]}, "when.some: write {of: LIST, where: CONDITION}"),
        ({"some": {"of": "results[*]", "where": leaf("code", "exists"), "when": 1}},
         "when.some: unexpected keys ['when']"),
        ({"some": {"of": "results[*]", "where": leaf("code", "exists")}, "not": 1},
         "when: unexpected keys ['some']"),
        ({"some": {"of": "results[*]", "where": {"all": [leaf("OBX-8", "exists", source="hl7")]}}},
         "when.some.where.all[0].hl7: a scope over results[*] tests its items' fields, not HL7"),
        ({"some": {"of": "results[*]", "where": {"not": {"every": {
            "of": "abnormal_flags[*]", "where": leaf("x", "exists")}}}}},
         "when.some.where.not.every: a scope inside the scope of results[*] is not supported"),
        ({"some": {"of": "results[*]", "where": leaf("code", "like", "K")}},
         "when.some.where.op: unknown operator 'like'"),
        ("a eq b", "when: a condition must be a mapping"),
    ],
)
def test_bad_conditions_name_the_row_and_the_place(data, fragment):
    with pytest.raises(RuleError) as caught:
        parse_condition(data, WHERE)
    assert isinstance(caught.value, SwitchboardError)
    assert str(caught.value).startswith(WHERE + ": ")
    assert fragment in str(caught.value)


def test_the_tree_keeps_what_was_written():
    condition = parse_condition(
        {"all": [leaf("results[*].abnormal_flags[*]", "in", ["H", "HH"], "all"),
                 {"not": leaf("OBX[*]-8", "eq", "N", source="hl7")},
                 {"any": [leaf("patient.birth_date", "exists")]}]},
        WHERE,
    )
    assert isinstance(condition, AllOf)
    first, negation, alternatives = condition.children
    assert (first.source, first.path, first.op, first.value, first.quantifier, first.steps) == (
        "field", "results[*].abnormal_flags[*]", "in", ("H", "HH"), "all",
        ("results", "[*]", "abnormal_flags", "[*]"),
    )
    assert isinstance(negation, Not) and negation.child.source == "hl7"
    assert isinstance(alternatives, AnyOf) and alternatives.children[0].value is None
    assert [item.path for item in leaves(condition)] == [
        "results[*].abnormal_flags[*]", "OBX[*]-8", "patient.birth_date",
    ]
    assert leaves(None) == []


# ---- semantics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        # eq / ne: text keys; numbers by value; lists and objects equal nothing
        (leaf("message.sending_facility", "eq", "NORTH"), True),
        (leaf("message.sending_facility", "eq", "north"), False),
        (leaf("message.version", "eq", 2.5), True),
        (leaf("results[*].value", "eq", 4), True),  # '4' (a string) and 4
        (leaf("results[*].value", "eq", "7.5"), True),
        (leaf("results[*].value", "eq", 140.0), True),  # 140 and 140.0 are one number
        (leaf("patient.deceased", "eq", False), True),
        (leaf("patient.deceased", "eq", "false"), True),
        (leaf("patient.deceased", "eq", 0), False),
        (leaf("patient.marital_status", "eq", "M"), False),
        (leaf("patient.marital_status", "ne", "M"), True),
        (leaf("patient.gender", "ne", "male"), False),  # no value: nothing is unequal
        (leaf("results[*].status", "ne", "F"), True),
        (leaf("results[*].status", "ne", "F", "all"), False),
        # in / not_in
        (leaf("results[*].abnormal_flags[*]", "in", ["HH", "A"]), True),
        (leaf("results[*].abnormal_flags[*]", "in", ["HH", "LL"]), False),
        (leaf("results[*].status", "in", ["F", "C"], "all"), True),
        (leaf("results[*].status", "not_in", ["C"], "all"), False),
        (leaf("results[*].status", "not_in", ["C"]), True),
        (leaf("patient.gender", "not_in", ["male"]), False),
        (leaf("results[*].value", "in", [4, 140]), True),
        # quantifier all needs a value
        (leaf("appointments[*].start", "ne", "x", "all"), False),
        (leaf("results[*].abnormal_flags[*]", "in", ["H", "A", "N"], "all"), True),
        # matches: search, on the text key
        (leaf("results[*].code", "matches", "LU"), True),
        (leaf("results[*].code", "matches", "^LU"), False),
        (leaf("results[*].value", "matches", r"^7\.5$"), True),
        (leaf("results[*].code", "matches", "^(K|NA)$", "all"), False),
        (leaf("patient.marital_status", "matches", "M"), False),
        # exists / missing: '' is no value
        (leaf("patient.identifiers[*].value", "exists"), True),
        (leaf("patient.account_number", "exists"), False),
        (leaf("patient.account_number", "missing"), True),
        (leaf("patient.gender", "missing"), True),
        (leaf("patient.marital_status", "exists"), True),
        (leaf("appointments[*].start", "missing"), True),
        (leaf("results[*].abnormal_flags", "exists"), True),
        (leaf("encounter.admit_at.parts[*]", "exists"), False),  # a string has no keys
        (leaf("patient.names[*].family.x", "missing"), True),
        # ordering: numbers and numeric strings
        (leaf("results[*].value", "ge", 7.5), True),
        (leaf("results[*].value", "gt", 140), False),
        (leaf("results[*].value", "lt", "5"), True),  # '4' < 5
        (leaf("results[*].value", "gt", 3, "all"), True),
        (leaf("results[*].value", "gt", 5, "all"), False),
        (leaf("results[*].code", "gt", 1), False),  # 'GLU' is no number and no date
        # ordering: dates, partial dates are their first instant
        (leaf("patient.birth_date", "lt", "1980-01-03"), True),
        (leaf("patient.birth_date", "ge", "1980"), True),
        (leaf("patient.birth_date", "lt", "1980-01-02T00:00"), False),
        (leaf("patient.birth_date", "le", "1980-01-02T00:00"), True),
        (leaf("patient.birth_date", "gt", 1979), True),  # 1979 reads as a number; date wins
        # offsets: instants when both sides have one, wall clocks when one side has not
        (leaf("encounter.admit_at", "lt", "2024-03-01T09:30Z"), True),  # 09:00Z
        (leaf("encounter.admit_at", "gt", "2024-03-01T09:30"), True),  # wall clock 10:00
        (leaf("encounter.admit_at", "eq", "2024-03-01T10:00+01:00"), True),
        (leaf("encounter.discharge_at", "gt", "2024-03-02T08:59:59.5+05:00"), True),
        (leaf("results[*].observed_at", "ge", "2024-03-01T08:30:00.000"), True),
        (leaf("patient.marital_status", "lt", "2030-01-01"), False),
        (leaf("patient.names[*].family", "lt", "2030-01-01"), False),
    ],
)
def test_operator_semantics_are_the_same_in_every_evaluator(data, expected):
    assert verdicts(data) == (expected, expected, expected)


@pytest.mark.parametrize(
    "found, op, value, expected",
    [
        # the rule's value is only a number
        (8, "gt", 7.5, True), (7.5, "gt", 7.5, False), (" 8 ", "gt", 7.5, True),
        ("8e0", "ge", 8, True), ("2024-01-01", "gt", 7.5, False), (True, "gt", 0, False),
        # only a date, without an offset: wall clocks
        ("1980-06-01", "lt", "1981-01-01", True), (1980, "lt", "1981-01-01", True),
        (1982.0, "lt", "1981-01-01", False), ("1980-06-01T23:59-12:00", "lt", "1980-06-02", True),
        ("soon", "lt", "1981-01-01", False), (False, "lt", "1981-01-01", False),
        # a date with an offset: instants when the value has one too
        ("2024-01-01T10:00+02:00", "lt", "2024-01-01T09:00+00:00", True),
        ("2024-01-01T10:00", "lt", "2024-01-01T09:00+00:00", False),
        (2024, "lt", "2024-01-01T09:00Z", True),
        # both a number and a date: numbers when the value is one, else dates
        (2017, "lt", "2018", True), ("2017", "lt", 2018, True), ("2018-06-01", "gt", "2018", True),
        ("2017-12-31T23:59:59.999999", "lt", 2018, True), ("x", "lt", 2018, False),
    ],
)
def test_ordering_reads_values_as_numbers_or_dates(found, op, value, expected):
    assert verdicts(leaf("v", op, value), {"v": found}) == (expected, expected, expected)


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"all": [leaf("message.type", "eq", "ORU"), leaf("results[*].code", "eq", "K")]}, True),
        ({"all": [leaf("message.type", "eq", "ORU"), leaf("results[*].code", "eq", "X")]}, False),
        ({"any": [leaf("message.type", "eq", "ADT"), leaf("results[*].code", "eq", "K")]}, True),
        ({"any": [leaf("message.type", "eq", "ADT"), leaf("results[*].code", "eq", "X")]}, False),
        ({"not": leaf("message.type", "eq", "ADT")}, True),
        ({"not": {"any": [leaf("patient.gender", "exists"), leaf("a.b", "missing")]}}, False),
        ({"all": [{"not": {"not": leaf("message.type", "in", ["ORU"])}}]}, True),
    ],
)
def test_combinations(data, expected):
    assert verdicts(data) == (expected, expected, expected)


# ---- scopes: one item of a list at a time -------------------------------------------------

POTASSIUM = "2823-3"
CRITICAL_POTASSIUM = {"some": {"of": "results[*]", "where": {"all": [
    leaf("code", "eq", POTASSIUM), leaf("abnormal_flags[*]", "in", ["HH", "LL"])]}}}


def panel(*results):
    """A record of results given as (code, flags): the flags a list, or None for none."""
    return {"results": [{"code": code, "abnormal_flags": flags} for code, flags in results]}


@pytest.mark.parametrize(
    "record, expected",
    [
        # the false positive of two independent leaves: normal potassium, HH sodium
        (panel((POTASSIUM, ["N"]), ("2951-2", ["HH"])), False),
        (panel((POTASSIUM, ["HH"])), True),
        (panel(("2951-2", []), ("2075-0", ["H"]), (POTASSIUM, ["A", "LL"]), ("2160-0", ["HH"]),
               ("6690-2", None)), True),  # LL potassium, the 3rd of 5
        (panel(("2951-2", ["LL"]), (POTASSIUM, ["H"]), (POTASSIUM, ["HH"])), True),
        (panel((POTASSIUM, None), ("2951-2", ["LL"])), False),
        (panel(), False),  # an empty list has no item
        ({"patient": {}}, False),  # nor an absent one
        ({"results": None}, False),
        ({"results": {"code": POTASSIUM, "abnormal_flags": ["HH"]}}, False),  # not a list
        ({"results": [None, "K", 5, [], {"code": POTASSIUM, "abnormal_flags": ["HH"]}]}, True),
    ],
)
def test_a_scope_tests_one_item_at_a_time(record, expected):
    assert verdicts(CRITICAL_POTASSIUM, record) == (expected, expected, expected)


def test_independent_leaves_page_for_the_wrong_result():
    """Why scopes exist: each leaf of an all reads every result on its own."""
    independent = {"all": [leaf("results[*].code", "eq", POTASSIUM),
                           leaf("results[*].abnormal_flags[*]", "in", ["HH", "LL"])]}
    record = panel((POTASSIUM, ["N"]), ("2951-2", ["HH"]))
    assert verdicts(independent, record) == (True, True, True)
    assert verdicts(CRITICAL_POTASSIUM, record) == (False, False, False)


@pytest.mark.parametrize(
    "data, record, expected",
    [
        # not around a scope: no item satisfies
        ({"not": CRITICAL_POTASSIUM}, panel((POTASSIUM, ["N"]), ("2951-2", ["HH"])), True),
        ({"not": CRITICAL_POTASSIUM}, panel(("2951-2", []), (POTASSIUM, ["LL"])), False),
        ({"not": CRITICAL_POTASSIUM}, panel(), True),
        # not inside a scope: an item without the flag
        ({"some": {"of": "results[*]", "where": {"not": leaf("abnormal_flags[*]", "exists")}}},
         panel((POTASSIUM, ["HH"]), ("2951-2", [])), True),
        ({"some": {"of": "results[*]", "where": leaf("abnormal_flags[*]", "missing")}},
         panel(), False),  # missing holds on nothing, but there is no item
        # every: at least one item, and each satisfies
        ({"every": {"of": "results[*]", "where": leaf("abnormal_flags[*]", "eq", "N")}},
         panel((POTASSIUM, ["N"]), ("2951-2", ["N", "H"])), True),
        ({"every": {"of": "results[*]", "where": leaf("abnormal_flags[*]", "eq", "N", "all")}},
         panel((POTASSIUM, ["N"]), ("2951-2", ["N", "H"])), False),
        ({"every": {"of": "results[*]", "where": leaf("code", "exists")}}, panel(), False),
        ({"every": {"of": "results[*]", "where": leaf("code", "exists")}},
         {"results": [None, {"code": "K"}]}, True),  # None is not an item
        ({"every": {"of": "results[*]", "where": leaf("code", "exists")}},
         {"results": ["K"]}, False),  # a string has no code
        # deeper lists and other sections
        ({"some": {"of": "patient.identifiers[*]", "where": {"all": [
            leaf("type", "eq", "MR"), leaf("value", "matches", "^1")]}}},
         {"patient": {"identifiers": [{"type": "SS", "value": "123"},
                                      {"type": "MR", "value": "999"}]}}, False),
        ({"some": {"of": "patient.identifiers[*]", "where": {"all": [
            leaf("type", "eq", "MR"), leaf("value", "matches", "^9")]}}},
         {"patient": {"identifiers": [{"type": "SS", "value": "123"},
                                      {"type": "MR", "value": "999"}]}}, True),
        # beside other leaves, in any and all
        ({"all": [leaf("message.sending_facility", "eq", "NORTH"), CRITICAL_POTASSIUM]},
         {"message": {"sending_facility": "NORTH"}, **panel((POTASSIUM, ["HH"]))}, True),
        ({"any": [leaf("message.sending_facility", "eq", "NORTH"), CRITICAL_POTASSIUM]},
         {"message": {"sending_facility": "SOUTH"}, **panel((POTASSIUM, ["N"]))}, False),
    ],
)
def test_scopes_combine(data, record, expected):
    assert verdicts(data, record) == (expected, expected, expected)


def test_a_scope_keeps_what_was_written():
    condition = parse_condition(CRITICAL_POTASSIUM, WHERE)
    assert isinstance(condition, Scope)
    assert (condition.kind, condition.of, condition.steps) == ("some", "results[*]",
                                                               ("results", "[*]"))
    assert isinstance(condition.where, AllOf)
    assert [item.path for item in leaves(condition)] == ["code", "abnormal_flags[*]"]


def test_an_hl7_leaf_in_a_scope_says_what_to_write_instead():
    data = {"some": {"of": "results[*]", "where": leaf("OBX[*]-8", "exists", source="hl7")}}
    with pytest.raises(RuleError) as caught:
        parse_condition(data, WHERE)
    assert "relative to the item" in (caught.value.hint or "")


def scoped_evidence(data, record):
    found: list[Evidence] = []
    verdict = evaluate_condition(parse_condition(data, WHERE), record, None, found)
    return verdict, [(e.place, e.seen, e.held) for e in found]


def test_evidence_of_a_scope_is_the_item_that_decided():
    record = panel(("2951-2", ["HH"]), ("2075-0", []), (POTASSIUM, ["LL"]), (POTASSIUM, ["HH"]))
    assert scoped_evidence(CRITICAL_POTASSIUM, record) == (True, [
        ("results[2].code", (POTASSIUM,), True),
        ("results[2].abnormal_flags[*]", ("LL",), True),
    ])
    found: list[Evidence] = []
    evaluate_condition(parse_condition(CRITICAL_POTASSIUM, WHERE), record, None, found)
    assert found[0] == Evidence("field", "code", "eq", "any", POTASSIUM, (POTASSIUM,), True,
                                scope="results[*]", item=2)


def test_evidence_of_a_scope_no_item_satisfies_is_every_item():
    record = panel((POTASSIUM, ["N"]), ("2951-2", ["HH"]))
    assert scoped_evidence(CRITICAL_POTASSIUM, record) == (False, [
        ("results[0].code", (POTASSIUM,), True),
        ("results[0].abnormal_flags[*]", ("N",), False),
        ("results[1].code", ("2951-2",), False),
        ("results[1].abnormal_flags[*]", ("HH",), True),
    ])


def test_evidence_of_every_is_the_first_item_that_fails_or_all():
    every = {"every": {"of": "results[*]", "where": leaf("abnormal_flags[*]", "eq", "N")}}
    record = {"results": [{"abnormal_flags": ["N"]}, None, {"abnormal_flags": ["H"]},
                          {"abnormal_flags": []}]}
    assert scoped_evidence(every, record) == (False, [
        ("results[2].abnormal_flags[*]", ("H",), False)])
    record["results"][2:] = []
    assert scoped_evidence(every, record) == (True, [
        ("results[0].abnormal_flags[*]", ("N",), True)])


def test_evidence_of_a_scope_over_no_items_names_the_list():
    assert scoped_evidence(CRITICAL_POTASSIUM, {}) == (False, [
        ("results[*].code", (), False), ("results[*].abnormal_flags[*]", (), False)])
    found: list[Evidence] = []
    evaluate_condition(parse_condition(CRITICAL_POTASSIUM, WHERE), {}, None, found)
    assert {(e.scope, e.item) for e in found} == {("results[*]", None)}


def test_trees_at_the_inline_limit_compile():
    data = leaf("message.type", "eq", "ORU")
    for level in range(23):
        data = {"all" if level % 2 else "any": [data, leaf("patient.birth_date", "exists")]}
    assert verdicts(data) == (True, True, True)


def test_deep_trees_still_compile():
    data = leaf("message.type", "eq", "ORU")
    for _ in range(40):
        data = {"not": {"not": data}}
    assert verdicts(data) == (True, True, True)


# ---- HL7 conditions ------------------------------------------------------------------------

MESSAGE = parse(
    "MSH|^~\\&|LAB|NORTH|EHR|H|20240102030405||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||111^^^MRN^MR~222^^^SSA^SS||DOE^JANE\r"
    "OBX|1|NM|GLU^Glucose^L||7.5|mmol/L|3.9-5.6|H|||F\r"
    "OBX|2|NM|K^Potassium^L||4.1|mmol/L|3.5-5.1||||F\r"
)


@pytest.mark.parametrize(
    "data, expected",
    [
        (leaf("PID-3.1", "eq", "111", source="hl7"), True),  # get: the first repetition
        (leaf("PID-3[*].1", "in", ["222"], source="hl7"), True),  # get_all
        (leaf("PID-3.1", "in", ["222"], source="hl7"), False),
        (leaf("OBX[*]-8", "in", ["H", "HH"], source="hl7"), True),
        (leaf("OBX[*]-8", "eq", "H", "all", source="hl7"), False),  # OBX 2 has '' there
        (leaf("OBX[2]-8", "missing", source="hl7"), True),
        (leaf("OBX[*]-5", "ge", 7, source="hl7"), True),
        (leaf("OBX[*]-5", "ge", 4, "all", source="hl7"), True),
        (leaf("ZZZ-1", "missing", source="hl7"), True),
        (leaf("PV1-2", "exists", source="hl7"), False),
    ],
)
def test_hl7_conditions_read_the_raw_message(data, expected):
    assert verdicts(data, message=MESSAGE) == (expected, expected, expected)


@pytest.mark.parametrize(
    "data, expected",
    [
        (leaf("PID-3.1", "eq", "111", source="hl7"), False),
        (leaf("PID-3.1", "missing", source="hl7"), True),
        (leaf("OBX[*]-8", "exists", source="hl7"), False),
    ],
)
def test_without_a_message_hl7_conditions_see_no_values(data, expected):
    assert verdicts(data, message=None) == (expected, expected, expected)


# ---- evidence --------------------------------------------------------------------------------


def test_evidence_records_every_leaf_even_after_the_outcome_is_known():
    condition = parse_condition(
        {"any": [leaf("results[*].abnormal_flags[*]", "in", ["H"]),
                 {"not": leaf("patient.gender", "exists")}]},
        WHERE,
    )
    found: list[Evidence] = []
    assert evaluate_condition(condition, RECORD, None, found) is True
    assert found == [
        Evidence("field", "results[*].abnormal_flags[*]", "in", "any", ("H",),
                 ("H", "A", "N"), True),
        Evidence("field", "patient.gender", "exists", "any", None, (), False),
    ]


# ---- value helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, key",
    [("a", "a"), ("", ""), (5, "5"), (5.0, "5"), (5.25, "5.25"), (True, "true"),
     (False, "false"), (-0.0, "0"), (1e20, "100000000000000000000"), (float("inf"), "inf"),
     pytest.param(10**5000, None, id="past-the-int-text-limit"), ([1], None),
     ({"a": 1}, None), (None, None)],
)
def test_text_key(value, key):
    assert text_key(value) == key


@pytest.mark.parametrize(
    "value, number",
    [("7.5", 7.5), (" 12 ", 12), ("-3", -3), ("1e3", 1000.0), (".5", 0.5), ("1_000", None),
     ("nan", None), ("2024-01-02", None), (True, None), (3, 3), ([], None)],
)
def test_as_number(value, number):
    assert as_number(value) == number


@pytest.mark.parametrize(
    "text, wall, offset",
    [
        ("2024", "2024-01-01 00:00:00", None),
        ("2024-02", "2024-02-01 00:00:00", None),
        ("2024-02-29T10:11:12.5", "2024-02-29 10:11:12.500000", None),
        ("2024-02-29T10:11+01:00", "2024-02-29 10:11:00", "1:00:00"),
        ("2024-02-29T10:11Z", "2024-02-29 10:11:00", "0:00:00"),
        ("2024-02-29T10-0530", "2024-02-29 10:00:00", "-1 day, 18:30:00"),
    ],
)
def test_as_moment(text, wall, offset):
    moment = as_moment(text)
    assert moment is not None and str(moment.wall) == wall
    assert (None if moment.instant is None else str(moment.instant.utcoffset())) == offset


@pytest.mark.parametrize("text", ["2023-02-29", "2024-13", "24-01-01", "2024-01-01T25", 20240101])
def test_not_moments(text):
    assert as_moment(text) is None


# ---- the compiled forms agree with the interpreter ------------------------------------------

PATHS = ["message.sending_facility", "patient.gender", "results[*].code",
         "results[*].abnormal_flags[*]", "results[*].value", "patient.birth_date"]
WORDS = ["NORTH", "female", "GLU", "K", "H", "", "7.5", 4, True, "1980-01-02", "2024"]


ITEM_PATHS = ["code", "value", "abnormal_flags[*]"]  # of a result, inside a scope


def leaves_strategy(paths=PATHS):
    plain = st.builds(
        lambda path, op, value, quantifier: leaf(path, op, value, quantifier),
        st.sampled_from(paths), st.sampled_from(["eq", "ne", "matches"]),
        st.sampled_from([w for w in WORDS if isinstance(w, str)]),
        st.sampled_from([None, "any", "all"]),
    )
    listed = st.builds(
        lambda path, op, values: leaf(path, op, values),
        st.sampled_from(paths), st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    )
    ordered = st.builds(
        lambda path, op, value: leaf(path, op, value),
        st.sampled_from(paths), st.sampled_from(["lt", "le", "gt", "ge"]),
        st.sampled_from([5, 7.5, "4", "1980-01-02", "2024-03-01T00:00+01:00", "1990"]),
    )
    presence = st.builds(lambda path, op: leaf(path, op), st.sampled_from(paths),
                         st.sampled_from(["exists", "missing"]))
    return st.one_of(plain, listed, ordered, presence)


def combined(inner):
    return st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
    )


scopes = st.builds(
    lambda kind, where: {kind: {"of": "results[*]", "where": where}},
    st.sampled_from(["some", "every"]),
    st.recursive(leaves_strategy(ITEM_PATHS), combined, max_leaves=3),
)
conditions = st.recursive(st.one_of(leaves_strategy(), scopes), combined, max_leaves=6)
scalars = st.one_of(st.sampled_from(WORDS), st.none(), st.integers(-3, 300), st.floats(0, 10))
records = st.fixed_dictionaries({
    "message": st.fixed_dictionaries({"sending_facility": scalars}),
    "patient": st.fixed_dictionaries({"gender": scalars, "birth_date": scalars}),
    "results": st.lists(st.one_of(st.fixed_dictionaries({
        "code": scalars, "value": scalars,
        "abnormal_flags": st.one_of(st.lists(scalars, max_size=3), scalars),
    }), st.none(), scalars), max_size=4),
})


@given(conditions, records)
def test_closures_and_generated_code_agree_with_the_interpreter(data, record):
    expected = verdicts(data, record)[0]
    assert verdicts(data, record) == (expected, expected, expected)


def test_leaf_is_frozen():
    item = parse_condition(leaf("a", "exists"), WHERE)
    assert isinstance(item, Leaf)
    with pytest.raises(AttributeError):
        item.op = "missing"  # type: ignore[misc]
