"""Importers: turn third-party captures into canonical arbkit tables.

Each importer reads one source format and returns a frame in the canonical schema
(:mod:`arbkit.data.schema`); validation stays in :mod:`arbkit.data.validate`.
"""

from arbkit.data.importers.hftbacktest import SESSIONS, import_bbo

__all__ = ["SESSIONS", "import_bbo"]
