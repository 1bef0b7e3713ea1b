"""The fuzzing harness (``python -m bench.fuzz``); see :mod:`bench.fuzz.run`."""
