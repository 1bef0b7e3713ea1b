"""Switchboard engine: the pure core (HL7 v2 toolkit, later the canonical model and
rules) and, at its edges, connectors, the store and the scheduler."""
