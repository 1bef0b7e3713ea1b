"""Files: the drop folder source and the atomic file writer sink, both registered as
``file``."""

from __future__ import annotations

from engine.connectors import register_source
from engine.connectors.file.drop_folder import SCHEMA, DropFolder, DropFolderConfig
from engine.connectors.file.writer import file_writer
from engine.connectors.sink import register_sink

register_source("file", SCHEMA, lambda ingestor, source_id, config: DropFolder(
    ingestor, source_id, DropFolderConfig.from_mapping(config)))
register_sink("file", file_writer)

__all__ = ["SCHEMA", "DropFolder", "DropFolderConfig"]
