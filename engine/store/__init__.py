"""Switchboard's store: SQLAlchemy models, the database connection and migrations.
SQLite (WAL, synchronous=FULL) is the embedded default; PostgreSQL the production store."""
