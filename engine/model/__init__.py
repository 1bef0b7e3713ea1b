"""Switchboard's canonical model: one representation for every inbound format."""
