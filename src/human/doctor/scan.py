"""`human doctor`'s look at this machine: which local servers answer on their default
ports (every one, with what each lists), built on `human.discover`."""

from __future__ import annotations

from collections.abc import Sequence

from ..discover import LOCAL_SERVERS, Found, LocalServer, scan

__all__ = ["scan_local"]


def scan_local(servers: Sequence[LocalServer] = LOCAL_SERVERS, *, host: str = "127.0.0.1",
               connect_timeout: float = 0.3, read_timeout: float = 2.0) -> list[Found]:
    """Which of `servers` answer on `host`: GET /v1/models, then /models. All ports are
    tried at once; a closed port costs nothing, a filtered one `connect_timeout`."""
    return scan(servers, host=host, connect_timeout=connect_timeout, read_timeout=read_timeout)
