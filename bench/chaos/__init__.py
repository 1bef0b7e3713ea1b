"""The chaos harness (``python -m bench.chaos``): Switchboard under load and faults at
once, on SQLite and on PostgreSQL, judged by what a real HTTP destination recorded."""
