"""One exception tree for arbkit.

Every message says what was wrong, the value seen, and how to fix it, so the CLI can print it
as one line and exit non-zero.
"""

from __future__ import annotations


class ArbkitError(Exception):
    """Base of every error arbkit raises on purpose."""


class ConfigError(ArbkitError):
    """A configuration file or value is wrong (unknown key, bad unit, infeasible strategy)."""


class DataError(ArbkitError):
    """Input data is wrong (missing column, NaN price, time going backwards, empty file)."""


class EngineError(ArbkitError):
    """The kernel stopped making progress (a bug: please report it with the data and config)."""


class StorageError(ArbkitError):
    """A results or study store could not be read or written."""


class VenueError(ArbkitError):
    """An exchange call failed."""


class TemporaryVenueError(VenueError):
    """An exchange call failed in a way that may succeed if retried (timeout, 429)."""


class OrderRejected(VenueError):
    """The venue rejected an order."""
