"""`human doctor`: probes one OpenAI-compatible endpoint, says what works there, and saves
what it learned as the endpoint's capability profile (`human/profile.py`).

    probe.py    I/O: `diagnose()` sends the probes through the public `Client`
      ├── decide.py   pure: one `Check` per row of the table, from the `Observations`
      ├── learn.py    pure: the `Profile` the observations support (or None)
      └── scan.py     which local servers answer on their default ports

Arrows point down: `probe` uses the other three; `learn` reads `decide`'s values; none
imports `probe`.
"""

from __future__ import annotations

from ..discover import LOCAL_SERVERS, Found, LocalServer
from .decide import FAIL, NA, PASS, PROBE_TOKENS, Check, Observations, Outcome, decide
from .learn import learn
from .probe import MAX_REQUESTS, Report, diagnose
from .scan import scan_local

__all__ = [
    "FAIL", "LOCAL_SERVERS", "MAX_REQUESTS", "NA", "PASS", "PROBE_TOKENS", "Check", "Found", "LocalServer",
    "Observations", "Outcome", "Report", "decide", "diagnose", "learn", "scan_local",
]
