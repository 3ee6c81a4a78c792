"""Replies for the batch tests, built on `FakeServer`: answers computed from each request
(so every result can be checked against its own request, whatever order they finish in),
429 storms, and the arrival time of every request.

    replies = BatchReplies(fake)            # every unscripted request gets an echo
    replies.storm(5, retry_after="1")       # the next 5 requests get 429 + Retry-After
    ... run the batch ...
    replies.arrivals                        # [(monotonic time of arrival, status, prompt), ...]
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

from tests.fakes.openai_server import FakeServer, Handler, Reply

__all__ = ["BatchReplies", "answer_for"]


def answer_for(prompt: str) -> str:
    """The content the echo reply gives for a prompt (what a test expects to read back)."""
    return f"echo: {prompt}"


class BatchReplies:
    """`delay` holds each echo that long, plus up to `jitter` more at random (so answers
    finish out of order); `peak` is the most requests the server held at once."""

    def __init__(self, fake: FakeServer, *, delay: float = 0.0, jitter: float = 0.0) -> None:
        self.fake = fake
        self.delay = delay
        self.jitter = jitter
        self.arrivals: list[tuple[float, int, str]] = []
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()
        fake._push(Reply(self._echo, "echo")).as_default()

    def storm(self, count: int, *, retry_after: str | None = "1", body: dict[str, Any] | None = None) -> None:
        """The next `count` requests get a 429 (with `Retry-After` unless None)."""
        payload = json.dumps(body or {"error": {"message": "Rate limit reached for requests",
                                                "type": "requests", "code": "rate_limit_exceeded"}}).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(payload))}
        if retry_after is not None:
            headers["Retry-After"] = retry_after

        def act(h: Handler) -> None:
            self._arrived(h, 429)
            h.head(429, headers)
            h.write(payload, chunked=False)

        for _ in range(count):
            self.fake._push(Reply(act, "429"))

    def statuses(self) -> list[int]:
        with self._lock:
            return [status for _, status, _ in self.arrivals]

    def _arrived(self, h: Handler, status: int) -> str:
        body = h.recorded.json or {}
        messages = body.get("messages") or [{}]
        prompt = str(messages[-1].get("content", ""))
        with self._lock:
            self.arrivals.append((time.monotonic(), status, prompt))
        return prompt

    def _echo(self, h: Handler) -> None:
        prompt = self._arrived(h, 200)
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            wait = self.delay + random.random() * self.jitter
            if wait and h.wait(wait):
                return
        finally:
            with self._lock:
                self.active -= 1
        body = h.recorded.json or {}
        words = len(prompt.split())
        answer = {"id": "chatcmpl-echo", "object": "chat.completion", "created": 1700000000,
                  "model": body.get("model", "fake-model"),
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": answer_for(prompt)},
                               "finish_reason": "stop"}],
                  "usage": {"prompt_tokens": words + 7, "completion_tokens": words + 1,
                            "total_tokens": 2 * words + 8}}
        payload = json.dumps(answer).encode()
        h.head(200, {"Content-Type": "application/json", "Content-Length": str(len(payload))})
        h.write(payload, chunked=False)
