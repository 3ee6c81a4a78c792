"""`Client` and `AsyncClient`: thin drivers over the pure core.

Everything that decides (URL, body, retry, fallback, parsing) lives in pure modules;
base.py holds what the two share, and the two drivers only perform I/O: send, sleep,
read chunks. sync.py and aio.py are written line for line alike so a reviewer can lay
them side by side; a change to one without the other is a bug.

    with human.Client() as client:                      # provider/model from the config
        answer = client.chat([human.user("hi")])
        for event in client.stream("tell me a story"):
            if event.type == "content":
                print(event.text, end="")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import _OPTIONS, Progress, TimeoutArg
from .sync import ChatStream, Client

if TYPE_CHECKING:
    from .aio import AsyncChatStream, AsyncClient

__all__ = ["AsyncChatStream", "AsyncClient", "ChatStream", "Client", "Progress", "TimeoutArg", "_OPTIONS"]


def __getattr__(name: str) -> Any:
    """`AsyncClient` and `AsyncChatStream`, imported on first use: a program (or the
    `human` command) that only uses `Client` does not load the asyncio driver."""
    if name in ("AsyncClient", "AsyncChatStream"):
        from . import aio

        value = getattr(aio, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
