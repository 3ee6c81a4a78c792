"""Batches: thousands of chat requests from a JSONL file, resumable, within rate limits.

    summary = human.batch("questions.jsonl", "answers.jsonl", model="gpt-4o-mini", rpm=500)
    summary = await client.batch("questions.jsonl", "answers.jsonl", concurrency=64)

The input is OpenAI's Batch request format (or plain `{"custom_id", "messages", …}` lines),
the output OpenAI's Batch output format, one line per request as it finishes; rerunning
with the same output file sends only what is not done yet. Any OpenAI-compatible endpoint
works, local servers included: the requests go through `AsyncClient.chat`, with its
retries, fallbacks and circuit breaker.

    lines.py     the input and output line formats (pure)
    scan.py      the input file, read streaming: the check before sending, the lines to send
    ledger.py    the output file: append-only, torn-line repair, lock, what is done
    control.py   what a failure means for the run; the adaptive slow-down on 429 (pure)
    summary.py   the progress snapshot and the summary (pure)
    seams.py     prices and the log store (issue 12)
    runner.py    the async runner (uses the client through a Protocol: no import of it)
    api.py       `human.batch()`, the blocking entry point: builds an AsyncClient

The package is `batching`, not `batch`, because `human.batch` is that function. Only
api.py imports the client; `AsyncClient.batch` imports this package, so the arrows
between the two never make a circle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .runner import BatchClient, BatchOptions, Progress, run
from .summary import BatchProgress, BatchSummary

__all__ = ["BatchClient", "BatchOptions", "BatchProgress", "BatchSummary", "Progress", "run_with"]


async def run_with(client: BatchClient, input: str | Path, output: str | Path, **options: Any) -> BatchSummary:
    """What `AsyncClient.batch` does: `options` are the fields of `BatchOptions`."""
    return await run(client, input, output, BatchOptions(**options))
