"""How the log's writer thread shares the GIL with an event loop in the same process.

The writer gives the GIL back every BREATHE_EVERY items it turns into records or rows, for
BREATHE_S. Without it a batch of a few hundred (a busy gateway's quarter of a second) is
~15 ms of Python that an event loop on the same process waits behind, in 5 ms switch
intervals: human gateway's p99 at one request in flight was 10-12 ms with its usage log on
and 1.5 ms with it off; with these pauses, 3 ms. A pause costs the writer up to a switch
interval to get the GIL back from a busy loop, which caps it near 1,600 rows a second: so
it pauses only while fewer than BREATHE_BELOW items wait, and past that works flat out
until it has caught up (rows are never left to pile up).

The journal is imported into SQLite when the process is idle. A process that is never
idle (a gateway under constant traffic) would let its journals grow until it exits, and
leave the whole backlog to the next reader (`human usage` importing a day of traffic).
So past BACKLOG_LIMIT exchanges journaled and not yet imported, the writer also imports
while busy: each wake, up to BUSY_IMPORT_S of small transactions (BUSY_IMPORT_BYTES,
~120 usage rows, ~10 ms each) with a breather between them, which outpaces any rate one
process can serve (~2,000 exchanges a second against a gateway's ~1,600 here), so the
backlog stays near the limit. The rows cost what they cost (~90 µs each); this only
decides when. The limit is high on purpose: a burst (a 100,000-line `human batch`, a
minute or two of a saturated gateway) stays off the import, whose Python competes with
the event loop for the GIL (measured with a limit of 20,000: a saturated gateway's RSS
went from 31 to ~60 MB once importing began, and to ~100 MB with 64 KiB transactions,
which hold ~1,000 usage rows); what is bounded is a process that never stops, at 200,000
exchanges (a gateway's usage rows: ~13 MB of journal; a client's exchanges, with their
prompts and answers: ~100 MB) and ~15 s of import for the next reader.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["BACKLOG_LIMIT", "BREATHE_BELOW", "BREATHE_EVERY", "BREATHE_S", "BUSY_IMPORT_BYTES", "BUSY_IMPORT_S",
           "breather", "no_pause", "pause"]

BREATHE_EVERY = 8
BREATHE_S = 0.0002
BREATHE_BELOW = 1000
BACKLOG_LIMIT = 200_000  # exchanges journaled and not imported before a busy writer imports too
BUSY_IMPORT_S = 0.05  # of each wake (0.25 s), at most
BUSY_IMPORT_BYTES = 8 << 10  # a busy import's transaction: short (~120 usage rows, ~10 ms), so the GIL comes back soon


def breather(waiting: int) -> Callable[[], None]:
    """Call it once per item: every BREATHE_EVERY-th call pauses for BREATHE_S (so the
    caller's event loop runs), unless `waiting` items are a backlog to catch up on."""
    if waiting >= BREATHE_BELOW:
        return no_pause
    count = 0

    def breathe() -> None:
        nonlocal count
        count += 1
        if count % BREATHE_EVERY == 0:
            time.sleep(BREATHE_S)

    return breathe


def no_pause() -> None:
    """The breather of a writer with a backlog: no pause."""


def pause() -> None:
    """One breather's pause, between a busy import's transactions."""
    time.sleep(BREATHE_S)
