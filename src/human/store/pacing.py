"""How the log's writer thread shares the GIL with an event loop in the same process.

The writer gives the GIL back every BREATHE_EVERY items it turns into records or rows, for
BREATHE_S. Without it a batch of a few hundred (a busy gateway's quarter of a second) is
~15 ms of Python that an event loop on the same process waits behind, in 5 ms switch
intervals: human gateway's p99 at one request in flight was 10-12 ms with its usage log on
and 1.5 ms with it off; with these pauses, 3 ms. A pause costs the writer up to a switch
interval to get the GIL back from a busy loop, which caps it near 1,600 rows a second: so
it pauses only while fewer than BREATHE_BELOW items wait, and past that works flat out
until it has caught up (rows are never left to pile up).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["BREATHE_BELOW", "BREATHE_EVERY", "BREATHE_S", "breather", "no_pause"]

BREATHE_EVERY = 8
BREATHE_S = 0.0002
BREATHE_BELOW = 1000


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
