"""The parsed tree a person reads: every position sent, named by its path and by what
HL7 calls it, values unescaped, empty positions left out."""

from __future__ import annotations

import pytest

from engine.hl7v2 import parse
from engine.hl7v2.field_names import describe
from engine.hl7v2.tree import Node, message_tree

MESSAGE = (
    "MSH|^~\\&|LIS|LABFAC^1.2.3^ISO|SB|RIVERSIDE|20261124101500||ORU^R01^ORU_R01|C1|P|2.5.1\r"
    "PID|1||MRN1^^^RIVERSIDE^MR~NHS9^^^NHS||DOE^JANE||19800101|F\r"
    "OBX|1|NM|2345-7^Glucose^LN||182|mg/dL|70_105|H|||F\r"
    "OBX|2|ST|718-7&x&y^Hb^LN||a\\T\\b|||||F\r"
    "ZXX|1|\"\"\r"
)


def flat(nodes: list[Node]) -> dict[str, tuple[str, str | None]]:
    found: dict[str, tuple[str, str | None]] = {}
    for node in nodes:
        found[str(node.path)] = (node.label, node.value)
        found.update(flat(list(node.children)))
    return found


def test_every_position_sent_is_named_by_its_path_and_its_name():
    tree = flat(message_tree(parse(MESSAGE)))
    assert tree["MSH"] == ("Message Header", None)
    assert tree["MSH-1"] == ("Field Separator", "|")
    assert tree["MSH-2"] == ("Encoding Characters", "^~\\&")
    assert tree["MSH-4.1"] == ("Sending Facility, Namespace ID", "LABFAC")
    assert tree["MSH-9.2"] == ("Message Type, Trigger Event", "R01")
    assert tree["MSH-10"] == ("Message Control ID", "C1")
    assert tree["PID-3.1"] == ("Patient Identifier List, ID Number", "MRN1")
    assert tree["PID-3[2].4"] == ("Patient Identifier List, Assigning Authority", "NHS")
    assert tree["PID-5.1"] == ("Patient Name, Family Name", "DOE")
    assert tree["OBX-3.1"] == ("Observation Identifier, Identifier", "2345-7")
    assert tree["OBX[2]-3.1.1"] == ("Observation Identifier, Identifier", "718-7")
    assert tree["OBX[2]-5"] == ("Observation Value", "a&b")  # unescaped
    assert tree["ZXX"] == ("", None) and tree["ZXX-2"] == ("", '""')
    names = {str(node.path): node.name for node in _every(message_tree(parse(MESSAGE)))}
    assert (names["PID-5"], names["PID-5.1"], names["PID"]) == (
        "Patient Name", "Family Name", "Patient Identification")
    # Empty positions are not shown: PID-2, PID-3.2 and MSH-8 were not sent.
    assert not {"PID-2", "PID-3.2", "MSH-8"} & set(tree)


def test_each_leaf_holds_what_get_reads_at_its_path():
    message = parse(MESSAGE)
    for leaf in _leaves(message_tree(message)):
        expected = '""' if message.is_null(str(leaf.path)) else message.get(str(leaf.path))
        assert leaf.value == expected, leaf.path


@pytest.mark.parametrize(("path", "reads"), [
    ("OBX[2]-3.1.1", ("OBX-3.1.1", "OBX-3.1", "OBX-3")),
    ("PID-3[2].4", ("PID-3.4",)),
    ("MSH-10", ("MSH-10",)),
])
def test_a_leaf_says_which_searches_read_it(path, reads):
    leaves = {str(node.path): node for node in _leaves(message_tree(parse(MESSAGE)))}
    assert leaves[path].first_primitives() == reads


def _every(nodes):
    for node in nodes:
        yield node
        yield from _every(node.children)


def _leaves(nodes):
    for node in nodes:
        if node.children:
            yield from _leaves(node.children)
        else:
            yield node


@pytest.mark.parametrize(("where", "words"), [
    (("PID", 5, 1), "Patient Name, Family Name"), (("PID", 5, None), "Patient Name"),
    (("PID", None, None), "Patient Identification"), (("OBX", 5, 1), "Observation Value"),
    (("ZXX", 1, None), ""), (("PID", 99, None), ""),
])
def test_names_come_from_the_table_or_not_at_all(where, words):
    assert describe(*where) == words
