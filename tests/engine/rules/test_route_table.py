"""Route tables: compiling, the collect hit policy, checkpoints, the index, explanations,
the schema, and evaluate() agreeing with evaluate_naive() on random rules."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.model.schemas import schema, schema_errors
from engine.rules.conditions import AllOf, Evidence, Leaf, RuleError
from engine.rules.route_table import (
    Checkpoint,
    FiredRow,
    Match,
    RouteDecision,
    RouteTable,
    TaskIntent,
    compile_routes,
)


def eq(path, value):
    return {"field": path, "op": "eq", "value": value}


def record(message_type="ORU", event="R01", facility="NORTH", flags=("H",), **sections):
    return {
        "message": {"type": message_type, "event": event, "sending_facility": facility},
        "patient": {"gender": "female", "birth_date": "2015-06-01"},
        "results": [{"code": "GLU", "abnormal_flags": list(flags)}],
        **sections,
    }


LABS = {
    "id": "labs",
    "rows": [
        {"id": "abnormal-hold", "match": {"type": "ORU", "event": ["R01"]},
         "when": {"field": "results[*].abnormal_flags[*]", "op": "in", "value": ["H", "HH"]},
         "to": ["ehr-fhir"],
         "checkpoint": {"mode": "hold", "queue": "nurse-review", "kind": "abnormal-result-review",
                        "description": "Review before filing"}},
        {"id": "north-lab", "match": {"type": "ORU"},
         "when": {"all": [eq("message.sending_facility", "NORTH"), eq("results[*].code", "GLU")]},
         "to": ["ehr-fhir", "north-archive"]},
        {"id": "south-lab", "match": {"type": "ORU"},
         "when": {"all": [eq("message.sending_facility", "SOUTH")]}, "to": ["south-archive"]},
        {"id": "east-lab", "match": {"type": "ORU"},
         "when": eq("message.sending_facility", "EAST"), "to": ["east-archive"]},
        {"id": "children", "match": {"type": "ORU", "event": ["R01", "R30"]},
         "when": {"field": "patient.birth_date", "op": "ge", "value": "2008-01-01"},
         "to": ["child-registry"],
         "checkpoint": {"mode": "notify", "queue": "paediatrics", "kind": "fyi"}},
    ],
}
EVERYTHING = {
    "id": "archive",
    "rows": [
        {"id": "archive-all", "description": "Keep a copy", "to": ["lab-archive"]},
        {"id": "admissions", "match": {"type": "ADT", "event": ["A01", "A04"]},
         "to": ["bed-board"]},
        {"id": "any-a08", "match": {"event": "A08"}, "to": ["updates"]},
        {"id": "review-only", "match": {"type": "ORU"},
         "when": eq("message.sending_facility", "WEST"), "to": [],
         "checkpoint": {"mode": "hold", "queue": "qa", "kind": "west-review"}},
    ],
}
TABLE = compile_routes([LABS, EVERYTHING])


def fired_ids(decision: RouteDecision) -> list[str]:
    return [row.id for row in decision.rows]


# ---- the collect hit policy --------------------------------------------------------------


@pytest.mark.parametrize(
    "given_record, rows",
    [
        (record(), ["abnormal-hold", "north-lab", "children", "archive-all"]),
        (record(flags=("N",)), ["north-lab", "children", "archive-all"]),
        (record(facility="SOUTH"), ["abnormal-hold", "south-lab", "children", "archive-all"]),
        (record(facility="WEST", flags=()), ["children", "archive-all", "review-only"]),
        (record(event="R30", facility="EAST"), ["east-lab", "children", "archive-all"]),
        (record(event="R99", facility="EAST"), ["east-lab", "archive-all"]),
        (record("ADT", "A01"), ["archive-all", "admissions"]),
        (record("ADT", "A08"), ["archive-all", "any-a08"]),
        (record("SIU", "A08"), ["archive-all", "any-a08"]),
        (record("SIU", "S12"), ["archive-all"]),
        (record(None, None), ["archive-all"]),
        ({}, ["archive-all"]),
        ({"message": "ORU^R01"}, ["archive-all"]),
        ({"message": {"type": ["ORU"], "event": {"R01": 1}}}, ["archive-all"]),
    ],
)
def test_every_matching_row_fires_in_table_then_row_order(given_record, rows):
    assert fired_ids(TABLE.evaluate(given_record)) == rows
    assert TABLE.evaluate(given_record) == TABLE.evaluate_naive(given_record)


def test_destinations_are_deduplicated_in_order_of_first_firing():
    decision = TABLE.evaluate(record())
    assert decision.destinations == ("ehr-fhir", "north-archive", "child-registry", "lab-archive")
    assert decision.rows[0] == FiredRow(
        "labs", "abnormal-hold", ("ehr-fhir",),
        Checkpoint("hold", "nurse-review", "abnormal-result-review", "Review before filing"),
    )


def test_checkpoints_become_task_intents():
    decision = TABLE.evaluate(record())
    assert decision.tasks == (
        TaskIntent("abnormal-hold", "nurse-review", "abnormal-result-review", "hold",
                   ("ehr-fhir",), "Review before filing"),
        TaskIntent("children", "paediatrics", "fyi", "notify", ("child-registry",), None),
    )
    # A hold wins over a plain row naming the same destination: review is not bypassed.
    assert decision.held == ("ehr-fhir",)
    assert decision.immediate == ("north-archive", "child-registry", "lab-archive")


def test_a_checkpoint_row_may_have_no_destination():
    decision = TABLE.evaluate(record(facility="WEST", flags=(), patient={}))
    assert fired_ids(decision) == ["archive-all", "review-only"]
    assert decision.tasks == (TaskIntent("review-only", "qa", "west-review", "hold", (), None),)
    assert decision.held == ()


def test_no_row_fires():
    table = compile_routes([{"id": "t", "rows": [{"id": "r", "match": {"type": "ADT"},
                                                   "to": ["x"]}]}])
    assert table.evaluate(record()) == RouteDecision((), (), ())


# ---- explanations ----------------------------------------------------------------------------


def test_explain_gives_the_evidence_of_each_fired_row():
    decision = TABLE.evaluate(record(), explain=True)
    north = decision.rows[1]
    assert north.id == "north-lab"
    assert north.evidence == (
        Evidence("field", "message.sending_facility", "eq", "any", "NORTH", ("NORTH",), True),
        Evidence("field", "results[*].code", "eq", "any", "GLU", ("GLU",), True),
    )
    assert decision.rows[3].evidence == ()  # archive-all has no condition
    assert TABLE.evaluate(record(), explain=True) == TABLE.evaluate_naive(record(), explain=True)
    # explaining changes nothing else, and is not remembered for the next message
    assert [r.id for r in decision.rows] == fired_ids(TABLE.evaluate(record()))
    assert all(row.evidence == () for row in TABLE.evaluate(record()).rows)


# ---- what the linter sees --------------------------------------------------------------------


def test_rows_expose_their_compiled_form():
    rows = {row.id: row for row in TABLE.rows}
    assert [row.id for row in TABLE.rows][:3] == ["abnormal-hold", "north-lab", "south-lab"]
    north = rows["north-lab"]
    assert (north.table, north.index, north.order) == ("labs", 1, 1)
    assert north.match == Match(("ORU",), None)
    assert north.destinations == ("ehr-fhir", "north-archive")
    assert north.checkpoint is None
    assert isinstance(north.condition, AllOf)
    assert [leaf.path for leaf in north.condition.children if isinstance(leaf, Leaf)] == [
        "message.sending_facility", "results[*].code",
    ]
    assert rows["archive-all"].condition is None
    assert rows["archive-all"].description == "Keep a copy"
    assert rows["any-a08"].match == Match(None, ("A08",))
    assert (rows["archive-all"].table, rows["archive-all"].index) == ("archive", 0)
    assert TABLE.destinations() == frozenset({
        "ehr-fhir", "north-archive", "south-archive", "east-archive", "child-registry",
        "lab-archive", "bed-board", "updates",
    })


def test_the_table_cannot_be_changed():
    assert isinstance(TABLE.rows, tuple)
    with pytest.raises(AttributeError):
        TABLE.rows = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        TABLE.extra = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        TABLE.rows[0].destinations = ("elsewhere",)  # type: ignore[misc]


def test_compiling_does_not_change_or_keep_the_source():
    source = [copy.deepcopy(LABS)]
    table = compile_routes(source)
    assert source == [LABS]
    source[0]["rows"][1]["to"].append("late")
    assert table.evaluate(record()).destinations == ("ehr-fhir", "north-archive",
                                                     "child-registry")


# ---- the index ---------------------------------------------------------------------------------


def test_the_value_index_prunes_rows_that_cannot_match():
    north = [row.id for row in TABLE.candidates(record(facility="NORTH"))]
    assert north == ["abnormal-hold", "north-lab", "children", "archive-all"]
    other = [row.id for row in TABLE.candidates(record(facility="ELSEWHERE"))]
    assert other == ["abnormal-hold", "children", "archive-all"]
    assert [row.id for row in TABLE.candidates(record("ADT", "A04"))] == [
        "archive-all", "admissions",
    ]


def test_in_lists_and_contradictions_are_indexed_correctly():
    rows = [
        {"id": "a", "when": {"field": "encounter.class", "op": "in", "value": ["inpatient", 7]},
         "to": ["a"]},
        {"id": "b", "when": {"all": [eq("encounter.class", "inpatient"),
                                     eq("encounter.class", "outpatient")]}, "to": ["b"]},
        {"id": "c", "when": {"all": [eq("encounter.class", 7.0), eq("patient.gender", "x")]},
         "to": ["c"]},
        {"id": "d", "when": eq("encounter.class", "outpatient"), "to": ["d"]},
        {"id": "e", "to": ["e"]},
    ]
    table = compile_routes([{"id": "t", "rows": rows}])
    cases = [({"class": "inpatient"}, ["a", "e"]), ({"class": "7"}, ["a", "e"]),
             ({"class": 7}, ["a", "e"]), ({"class": "outpatient"}, ["d", "e"]),
             ({"class": ["inpatient"]}, ["e"]), ({}, ["e"])]
    for encounter, expected in cases:
        given_record = {"encounter": encounter, "patient": {"gender": "y"}}
        assert fired_ids(table.evaluate(given_record)) == expected
        assert table.evaluate(given_record) == table.evaluate_naive(given_record)
    assert "b" not in [row.id for row in table.candidates({"encounter": {"class": "inpatient"}})]


FLAGGED = {"field": "results[*].abnormal_flags[*]", "op": "in", "value": ["H"]}


@pytest.mark.parametrize(
    "rows, facility, expected",
    [
        # each facility's group computes the shared flag test on its own
        ([{"all": [eq("message.sending_facility", f), FLAGGED]} for f in ("NORTH", "SOUTH",
                                                                          "EAST")],
         "SOUTH", ["r1"]),
        # the index proves eq/in on its path, never ne/not_in/missing on it
        ([{"all": [eq("message.sending_facility", "NORTH"),
                   {"field": "message.sending_facility", "op": "ne", "value": "NORTH"}]},
          {"all": [eq("message.sending_facility", "NORTH"),
                   {"field": "message.sending_facility", "op": "not_in", "value": ["NORTH"]}]},
          {"all": [eq("message.sending_facility", "NORTH"),
                   {"field": "message.sending_facility", "op": "missing"}]},
          eq("message.sending_facility", "SOUTH")],
         "NORTH", []),
        # a leaf first met inside any/not is not taken as computed afterwards
        ([{"any": [eq("patient.gender", "female"), FLAGGED]},
          {"all": [eq("message.sending_facility", "NORTH"), FLAGGED]},
          {"all": [{"not": eq("patient.gender", "female")}, FLAGGED]},
          {"all": [eq("message.sending_facility", "NORTH"), {"not": FLAGGED}]},
          eq("message.sending_facility", "SOUTH"), eq("message.sending_facility", "EAST")],
         "NORTH", ["r0", "r1"]),
    ],
)
def test_generated_code_hazards(rows, facility, expected):
    table = compile_routes([{"id": "t", "rows": [
        {"id": f"r{n}", "when": when, "to": ["x"]} for n, when in enumerate(rows)
    ]}])
    given_record = record(facility=facility)
    assert fired_ids(table.evaluate(given_record)) == expected
    assert table.evaluate(given_record) == table.evaluate_naive(given_record)


SCOPED_K = {"some": {"of": "results[*]", "where": {"all": [
    eq("code", "K"), {"field": "abnormal_flags[*]", "op": "in", "value": ["HH", "LL"]}]}}}


def test_scopes_pin_nothing_and_share_one_call():
    """Relative paths inside a scope look like scalar paths; the index must not take
    ``code`` for a path of the record, and equal scopes are computed once."""
    rows = [{"id": f"r{n}", "when": when, "to": [f"d{n}"]} for n, when in enumerate([
        SCOPED_K, {"all": [SCOPED_K, eq("message.sending_facility", "NORTH")]},
        {"all": [eq("message.sending_facility", "NORTH"), {"not": SCOPED_K}]},
        {"all": [SCOPED_K, eq("message.sending_facility", "SOUTH")]},
        {"some": {"of": "results[*]", "where": eq("code", "K")}},
    ])]
    table = compile_routes([{"id": "t", "rows": rows}])
    critical = {**record(), "code": "GLU",
                "results": [{"code": "K", "abnormal_flags": ["N"]},
                            {"code": "NA", "abnormal_flags": ["HH"]},
                            {"code": "K", "abnormal_flags": ["LL"]}]}
    assert fired_ids(table.evaluate(critical)) == ["r0", "r1", "r4"]
    critical["results"][2]["abnormal_flags"] = ["L"]
    assert fired_ids(table.evaluate(critical)) == ["r2", "r4"]
    assert fired_ids(table.evaluate_naive(critical)) == ["r2", "r4"]
    assert [row.id for row in table.candidates(critical)] == ["r0", "r1", "r2", "r4"]
    critical["results"] = CountedList(critical["results"])
    assert fired_ids(table.evaluate(critical)) == ["r2", "r4"]
    assert critical["results"].walks == 2  # SCOPED_K for three rows, and r4's scope


class CountedList(list):
    """A list that counts how often it is walked."""

    walks = 0

    def __iter__(self):
        self.walks += 1
        return super().__iter__()


def test_rule_text_is_data_never_code():
    nasty = "x') or __import__('os').system('false') or ('\n"
    table = compile_routes([{"id": "t", "rows": [
        {"id": f"r{n}", "when": eq("message.sending_facility", nasty), "to": [f"d{n}"]}
        for n in range(4)
    ] + [{"id": "m", "when": {"field": "message.sending_facility", "op": "matches",
                              "value": "^x'\\)"}, "to": ["m"]}]}])
    assert fired_ids(table.evaluate(record(facility=nasty))) == ["r0", "r1", "r2", "r3", "m"]
    assert fired_ids(table.evaluate(record(facility="x"))) == []


def test_hl7_rows_use_the_message():
    from engine.hl7v2 import parse

    message = parse("MSH|^~\\&|LAB|NORTH|EHR|H|20240102||ORU^R01|C1|P|2.5.1\r"
                    "OBX|1|NM|GLU||7.5||||HH\r")
    table = compile_routes([{"id": "t", "rows": [
        {"id": "critical", "when": {"hl7": "OBX[*]-9", "op": "eq", "value": "HH"}, "to": ["x"]},
    ]}])
    assert fired_ids(table.evaluate(record(), message)) == ["critical"]
    assert fired_ids(table.evaluate(record())) == []


# ---- errors --------------------------------------------------------------------------------------


def row(**fields):
    return {"id": "r", "to": ["x"], **fields}


@pytest.mark.parametrize(
    "tables, fragment",
    [
        ([{"id": "a", "rows": [row()]}, {"id": "b", "rows": [row(id="s"), row()]}],
         "route table 'b', row 'r' (rows[1]): row id 'r' is already used by table 'a' rows[0]"),
        ([{"id": "a", "rows": [row()]}, {"id": "a", "rows": [row(id="s")]}],
         "route table id 'a' is used twice"),
        ([{"id": "labs", "rows": [row(id="ok"), row(id="bad", when={
            "field": "results[*].code", "op": "matches", "value": "[unclosed"})]}],
         "route table 'labs', row 'bad' (rows[1]): when.value: bad regex '[unclosed'"),
        ([{"id": "labs", "rows": [row(when={"field": "a", "op": "approx", "value": 1})]}],
         "route table 'labs', row 'r' (rows[0]): when.op: unknown operator 'approx'"),
        ([{"id": "t", "rows": [row(to=[])]}], "to is empty and there is no checkpoint"),
        ([{"id": "t", "rows": [row(to="x")]}], "to: write a list of connection ids"),
        ([{"id": "t", "rows": [row(checkpoint={"mode": "wait", "queue": "q", "kind": "k"})]}],
         "checkpoint.mode must be hold or notify"),
        ([{"id": "t", "rows": [row(checkpoint={"mode": "hold", "kind": "k"})]}],
         "checkpoint.queue is required"),
        ([{"id": "t", "rows": [row(match={"type": []})]}],
         "match.type: write a string or a non-empty list of strings"),
        ([{"id": "t", "rows": [row(match="ORU")]}], "match must be a mapping"),
        ([{"id": "t", "rows": [{"to": ["x"]}]}], "route table 't', rows[0]: the row has no id"),
        ([{"id": "t", "rows": ["r"]}], "route table 't', rows[0]: a row must be a mapping"),
        ([{"id": "t", "rows": {}}], "route table 't': rows must be a list"),
        ([{"rows": []}], "route table 0 has no id"),
    ],
)
def test_semantic_errors_name_the_table_row_and_fix(tables, fragment):
    with pytest.raises(RuleError) as caught:
        compile_routes(tables)
    assert fragment in str(caught.value)


def test_a_checkpoint_may_say_when_its_task_is_due():
    checkpoint = {"mode": "hold", "queue": "q", "kind": "k"}
    table = compile_routes([{"id": "t", "rows": [
        {"id": "due", "to": ["d"], "checkpoint": {**checkpoint, "due": "2h"}},
        {"id": "open-ended", "to": ["e"], "checkpoint": checkpoint}]}])
    assert [task.due_after for task in table.evaluate(record()).tasks] == [7200.0, None]
    with pytest.raises(RuleError, match=r"row 'r' \(rows\[0\]\): checkpoint.due: '2 hours'"):
        compile_routes([{"id": "t", "rows": [
            {"id": "r", "to": ["d"], "checkpoint": {**checkpoint, "due": "2 hours"}}]}])


def test_a_notify_checkpoint_may_name_the_states_its_completion_chooses_from():
    notify = {"mode": "notify", "queue": "q", "kind": "k"}
    table = compile_routes([{"id": "t", "rows": [
        {"id": "r", "to": [], "checkpoint": {**notify, "states": ["accepted", "declined"]}}]}])
    assert table.rows[0].checkpoint.states == ("accepted", "declined")
    with pytest.raises(RuleError, match=r"checkpoint.states: a hold is approved or rejected"):
        compile_routes([{"id": "t", "rows": [{"id": "r", "to": ["d"], "checkpoint": {
            **notify, "mode": "hold", "states": ["accepted"]}}]}])


def test_duplicate_row_error_says_what_to_do():
    with pytest.raises(RuleError, match="Row ids are unique across every route table"):
        compile_routes([{"id": "a", "rows": [row(), row()]}])


# ---- the schema ----------------------------------------------------------------------------------


def test_the_schema_examples_are_valid_and_compile():
    examples = schema("routes")["examples"]
    assert examples
    for example in examples:
        assert schema_errors("routes", example) == []
        assert compile_routes([example]).rows


@pytest.mark.parametrize(
    "document, location, fragment",
    [
        ({"id": "t", "rows": []}, "rows", "should be non-empty"),
        ({"id": "T", "rows": [row()]}, "id", "does not match"),
        ({"id": "t", "rows": [row(to=[])]}, "rows[0].to", "should be non-empty"),
        ({"id": "t", "rows": [{"id": "r"}]}, "rows[0]", "'to' is a required property"),
        ({"id": "t", "rows": [row(when={"field": "a", "op": "eq"})]}, "rows[0].when",
         "'value' is a required property"),
        ({"id": "t", "rows": [row(when={"field": "a", "op": "in", "value": "x"})]},
         "rows[0].when.value", "is not of type 'array'"),
        ({"id": "t", "rows": [row(when={"all": [{"field": "a", "op": "like", "value": 1}]})]},
         "rows[0].when.all[0].op", "is not one of"),
        ({"id": "t", "rows": [row(when={"field": "a..b", "op": "exists"})]},
         "rows[0].when.field", "does not match"),
        ({"id": "t", "rows": [row(when={"some": {"of": "results", "where": eq("code", "K")}})]},
         "rows[0].when.some.of", "does not match"),
        ({"id": "t", "rows": [row(when={"every": {"of": "results[*]"}})]},
         "rows[0].when.every", "'where' is a required property"),
        ({"id": "t", "rows": [row(when={"some": {"of": "results[*]", "where": {
            "field": "code", "op": "eq"}}})]},
         "rows[0].when.some.where", "'value' is a required property"),
        ({"id": "t", "rows": [row(when={"some": {"of": "results[*]", "where": eq("code", "K"),
                                                 "if": 1}})]},
         "rows[0].when.some", "Additional properties are not allowed"),
        ({"id": "t", "rows": [row(checkpoint={"mode": "hold", "queue": "q"})]},
         "rows[0].checkpoint", "'kind' is a required property"),
        ({"id": "t", "rows": [row(match={"type": "ORU", "events": ["R01"]})]}, "rows[0].match",
         "Additional properties are not allowed"),
    ],
)
def test_the_schema_rejects_malformed_tables(document, location, fragment):
    errors = schema_errors("routes", document)
    assert any(where == location and fragment in problem for where, problem in errors), errors


def test_a_checkpoint_row_may_have_an_empty_to_in_the_schema():
    document = {"id": "t", "rows": [row(to=[], checkpoint={"mode": "hold", "queue": "q",
                                                           "kind": "k"})]}
    assert schema_errors("routes", document) == []


# ---- evaluate() == evaluate_naive() ----------------------------------------------------------

TYPES = ["ORU", "ADT", "SIU"]
EVENTS = ["R01", "A01", "A08", "S12"]
FACILITIES = ["NORTH", "SOUTH", "EAST", "WEST"]
CLASSES = ["inpatient", "outpatient", 3]


def pin():
    """The conditions the index works on: eq/in on scalar paths."""
    return st.one_of(
        st.builds(eq, st.just("message.sending_facility"), st.sampled_from(FACILITIES)),
        st.builds(lambda values: {"field": "message.sending_facility", "op": "in",
                                  "value": values},
                  st.lists(st.sampled_from(FACILITIES), min_size=1, max_size=2)),
        st.builds(eq, st.just("encounter.class"), st.sampled_from(CLASSES)),
        st.builds(lambda values: {"field": "encounter.class", "op": "in", "value": values},
                  st.lists(st.sampled_from(CLASSES), min_size=1, max_size=2)),
    )


def scoped():
    """Scopes over results: their leaves' paths are relative, so never index material."""
    return st.builds(
        lambda kind, code, flags, op: {kind: {"of": "results[*]", "where": {"all": [
            {"field": "code", "op": op, "value": code},
            {"field": "abnormal_flags[*]", "op": "in", "value": flags}]}}},
        st.sampled_from(["some", "every"]), st.sampled_from(["GLU", "K"]),
        st.lists(st.sampled_from(["H", "L", "N"]), min_size=1, max_size=2),
        st.sampled_from(["eq", "ne"]))


def other():
    return st.one_of(
        scoped(),
        st.builds(lambda flags: {"field": "results[*].abnormal_flags[*]", "op": "in",
                                 "value": flags},
                  st.lists(st.sampled_from(["H", "L", "N"]), min_size=1, max_size=2)),
        st.builds(lambda op, value: {"field": "results[*].value", "op": op, "value": value},
                  st.sampled_from(["lt", "ge"]), st.sampled_from([5, "7.5"])),
        st.builds(lambda op: {"field": "patient.gender", "op": op},
                  st.sampled_from(["exists", "missing"])),
        st.builds(lambda value: {"not": eq("encounter.class", value)},
                  st.sampled_from(CLASSES)),
        st.builds(lambda op, value: {"field": "patient.birth_date", "op": op, "value": value},
                  st.sampled_from(["lt", "gt"]), st.sampled_from(["2000", "1990-06-01"])),
        st.builds(lambda op, value: {"field": "message.sending_facility", "op": op,
                                     "value": value},
                  st.sampled_from(["ne", "matches"]), st.sampled_from(FACILITIES)),
        st.builds(lambda op, value: {"field": "encounter.class", "op": op,
                                     "value": [value] if op == "not_in" else value},
                  st.sampled_from(["ne", "not_in"]), st.sampled_from(CLASSES)),
        st.builds(lambda value: {"field": "results[*].code", "op": "matches",
                                 "value": value}, st.sampled_from(["^G", "K$"])),
    )


nested = st.recursive(
    st.one_of(pin(), other()),
    lambda inner: st.one_of(
        st.builds(lambda parts: {"all": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda parts: {"any": parts}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda part: {"not": part}, inner),
    ),
    max_leaves=5,
)
conditions = st.one_of(
    st.none(),
    st.builds(lambda parts: {"all": parts},
              st.lists(st.one_of(pin(), pin(), other(), nested), min_size=1, max_size=4)),
    pin(),
    nested,
)
matches = st.one_of(
    st.none(),
    st.builds(lambda t: {"type": t}, st.sampled_from(TYPES)),
    st.builds(lambda t, e: {"type": t, "event": e}, st.sampled_from(TYPES),
              st.lists(st.sampled_from(EVENTS), min_size=1, max_size=2, unique=True)),
    st.builds(lambda e: {"event": e}, st.sampled_from(EVENTS)),
)
checkpoints = st.one_of(st.none(), st.builds(
    lambda mode: {"mode": mode, "queue": "q", "kind": "k"}, st.sampled_from(["hold", "notify"])))


@st.composite
def route_tables(draw):
    count = draw(st.integers(1, 14))
    rows = []
    for number in range(count):
        data = {"id": f"r{number}", "to": draw(st.lists(st.sampled_from(["a", "b", "c"]),
                                                        min_size=1, max_size=2, unique=True))}
        for key, strategy in (("match", matches), ("when", conditions),
                              ("checkpoint", checkpoints)):
            value = draw(strategy)
            if value is not None:
                data[key] = value
        rows.append(data)
    cut = draw(st.integers(0, count))
    return [{"id": "first", "rows": rows[:cut]}, {"id": "second", "rows": rows[cut:]}]


records = st.fixed_dictionaries({
    "message": st.one_of(st.fixed_dictionaries({
        "type": st.one_of(st.sampled_from([*TYPES, "VXU"]), st.none()),
        "event": st.one_of(st.sampled_from([*EVENTS, "Z99"]), st.none()),
        "sending_facility": st.one_of(st.sampled_from([*FACILITIES, "", "OTHER"]), st.none()),
    }), st.none()),
    "encounter": st.fixed_dictionaries({"class": st.one_of(st.sampled_from([*CLASSES, "3"]),
                                                       st.none(), st.just([]))}),
    "patient": st.fixed_dictionaries({
        "gender": st.one_of(st.sampled_from(["female", ""]), st.none()),
        "birth_date": st.one_of(st.sampled_from(["1980-01-02", "2000", "2012-05-05T10:00"]),
                            st.none()),
    }),
    "results": st.lists(st.one_of(st.fixed_dictionaries({
        "code": st.sampled_from(["GLU", "K", None]),
        "value": st.one_of(st.sampled_from([4, 7.5, "12", "x"]), st.none()),
        "abnormal_flags": st.lists(st.sampled_from(["H", "L", "N", ""]), max_size=2),
    }), st.none()), max_size=3),
})


@given(route_tables(), st.lists(records, min_size=1, max_size=4))
def test_indexed_evaluation_equals_the_naive_one(tables, stream):
    table = compile_routes([t for t in tables if t["rows"]])
    for given_record in stream:
        assert table.evaluate(given_record) == table.evaluate_naive(given_record)
        assert table.evaluate(given_record, explain=True) == table.evaluate_naive(
            given_record, explain=True)
        candidates = {row.order for row in table.candidates(given_record)}
        assert {table.rows[n].order for n in _fired_orders(table, given_record)} <= candidates


def _fired_orders(table: RouteTable, given_record) -> list[int]:
    fired = {row.id for row in table.evaluate(given_record).rows}
    return [row.order for row in table.rows if row.id in fired]
