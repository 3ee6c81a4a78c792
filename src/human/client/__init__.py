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

from .aio import AsyncChatStream, AsyncClient
from .base import _OPTIONS, Progress, TimeoutArg
from .sync import ChatStream, Client

__all__ = ["AsyncChatStream", "AsyncClient", "ChatStream", "Client", "Progress", "TimeoutArg", "_OPTIONS"]
