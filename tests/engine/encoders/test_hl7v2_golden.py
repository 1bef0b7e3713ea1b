"""Golden files: what the encoder sends for a few sample messages, to read and to
diff. Regenerate after a deliberate change with
``SWITCHBOARD_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/engine/encoders`` and
review the diff."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.encoders.roundtrip import convert, encode, lab_scope
from tests.golden import matches_golden
from tests.samples import read

GOLDEN = Path(__file__).parent / "golden"
CASES = [
    # (sample, minimised to the lab-system scope?)
    ("fhir-converter/ADT-A01-01.hl7", True),
    ("fhir-converter/ADT-A40-01.hl7", True),
    ("fhir-converter/ORM-O01-01.hl7", True),
    ("fhir-converter/ORU-R01-01.hl7", False),
    ("fhir-converter/SIU-S12-01.hl7", False),
    ("fhir-converter/REF-I12-01.hl7", False),
    ("fhir-converter/MDM-T02-01.hl7", False),
]


@pytest.mark.parametrize("sample, minimised", CASES, ids=[c[0] for c in CASES])
def test_encoded_sample_matches_its_golden_file(sample, minimised):
    record = convert(read(sample))
    if minimised:
        record = lab_scope().project(record)
    text = encode(record).encode("utf-8")
    golden = GOLDEN / (Path(sample).stem + (".lab-system" if minimised else "") + ".hl7")
    assert matches_golden(text, golden)
