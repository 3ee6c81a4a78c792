"""The event loop for the long runs `human` drives itself (`human gateway`, `human batch`,
`human.batch()`): uvloop's when it is installed, else asyncio's.

uvloop measured ~10 % less CPU per request in the gateway (research wave2.md C.6) and
13 % more requests a second in a zero-latency batch (bench/batch.py). It is optional
(`pip install 'human[gateway]'` or `uvloop` alone); `HUMAN_LOOP=asyncio` keeps asyncio's
loop even when it is installed (`HUMAN_GATEWAY_LOOP=asyncio`, the older name, still works).
Only these runs choose the loop: an application's own loop is never replaced.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's `new_event_loop` when installed and not declined; None for asyncio's."""
    if "asyncio" in (os.environ.get("HUMAN_LOOP", ""), os.environ.get("HUMAN_GATEWAY_LOOP", "")):
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_factory` chooses, with asyncio.run's clean-up
    (tasks cancelled, async generators and the default executor shut down; on Python 3.10,
    which has no `asyncio.Runner`, the last two only)."""
    factory = loop_factory()
    if factory is None:
        return asyncio.run(main)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(main)
    loop = factory()  # Python 3.10: no Runner; the same steps by hand
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
