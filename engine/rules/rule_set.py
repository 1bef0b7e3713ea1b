"""A compiled rule set: the mapper, route table, catalog and exception policies of one
configuration, built once from a RuleSource and immutable afterwards."""

from __future__ import annotations

from engine.model.mapping import Mapper
from engine.rules.source import RuleSource


def build_mapper(source: RuleSource) -> Mapper:
    """The mapper for every mapping document, with the coverage they declare."""
    documents = [doc.data for doc in source.of_kind("mapping") if isinstance(doc.data, dict)]
    covers = [str(c) for doc in documents for c in doc.get("covers", [])]
    return Mapper(documents, source.tables, covers)
