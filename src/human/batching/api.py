"""`human.batch()`: a batch run from blocking code. It builds the `AsyncClient` the requests
go through and runs the batch on an event loop of its own. The one module of the package
that imports the client (see `__init__.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .runner import Progress
from .summary import BatchSummary

__all__ = ["batch"]


def batch(
    input: str | Path,
    output: str | Path,
    *,
    concurrency: int = 16,
    rpm: float | None = None,
    tpm: float | None = None,
    retry_failed: bool = False,
    skip_invalid: bool = False,
    dry_run: bool = False,
    errors: str | Path | None = None,
    progress: Progress | None = None,
    **client_settings: Any,
) -> BatchSummary:
    """Run the batch in `input`, writing results to `output`, and return the summary.
    `client_settings` (provider, model, config, api_key, base_url, timeout, …) build the
    `AsyncClient` the requests go through. A blocking call: it runs its own event loop
    (uvloop's when it is installed, see human/eventloop.py).

        summary = human.batch("in.jsonl", "out.jsonl", provider="openai", rpm=500)
        print(summary.succeeded, summary.failed, summary.cost)
    """
    from .. import eventloop
    from ..client import AsyncClient

    async def main() -> BatchSummary:
        async with AsyncClient(**client_settings) as client:
            return await client.batch(input, output, concurrency=concurrency, rpm=rpm, tpm=tpm,
                                      retry_failed=retry_failed, skip_invalid=skip_invalid, dry_run=dry_run,
                                      errors=errors, progress=progress)

    return eventloop.run(main())  # uvloop's loop when installed: ~13 % more requests a second
