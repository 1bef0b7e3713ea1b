"""Handlers of the ``switchboard`` subcommands, one module per feature."""
