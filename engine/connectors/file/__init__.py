"""The file drop folder source."""

from __future__ import annotations

from engine.connectors import register_source
from engine.connectors.file.drop_folder import SCHEMA, DropFolder, DropFolderConfig

register_source("file", SCHEMA, lambda ingestor, source_id, config: DropFolder(
    ingestor, source_id, DropFolderConfig.from_mapping(config)))

__all__ = ["SCHEMA", "DropFolder", "DropFolderConfig"]
