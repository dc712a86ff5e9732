"""Venues: exchange access through ccxt, and a local Binance emulator to test it against.

- ``feed.py``: market-data feeds of the paper/live runtime (websockets made dependable:
  watchdog, backoff, REST polling, book replacement), into :class:`normalize.Quote` objects.
- ``normalize.py``: one ccxt message -> catalog quote row encoder (recorder and feeds).
- ``explain.py``: a ccxt error as one line saying what to change.
- ``client.py``: ccxt instances, optionally pointed at an emulator.
- ``emulator/``: Binance REST + websocket replaying arbkit data, with fault injection.
"""
