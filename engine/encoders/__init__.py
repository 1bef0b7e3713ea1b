"""Encoders: a minimised canonical record to the body a destination's catalog format
expects (``hl7v2``: :mod:`engine.encoders.hl7v2`; ``canonical-json``:
:mod:`engine.encoders.canonical_json`). Pure functions: no I/O, no rule lookups."""
