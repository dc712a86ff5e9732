"""Paper (and later live) trading: the backtest's kernel fed event by event from live feeds.

``clock.py`` holds the only wall-clock reads; ``encode.py`` turns feed quotes, heartbeats and
operator controls into the kernel's event rows and journal entries; ``recording.py`` writes
every fed event so a backtest of the recording reproduces the session's fills;
``node.py`` runs a session (feeds -> kernel -> store, checkpoints, resume); ``view.py`` is
the live terminal view.
"""
