"""`human gateway`: one OpenAI-compatible endpoint in front of every configured provider
(issue 15), on aiohttp.web, with the client's routing, retries, fallbacks, circuit
breaker, timeouts and capability profiles.

    settings    the `routes` and `gateway` sections of the config
    keys        the gateway's own keys (hashed, constant-time), the keys file
    limits      per-key RPM/TPM limits and budgets in this process (core/limiter.py rules)
    redis       the same, shared by every process through Redis (atomic Lua scripts)
    request     a caller's request checked; the bytes sent upstream for each target
    chat        POST /v1/chat/completions: route, send through the retry plan, answer, meter
    reply       every error in OpenAI's error shape, with the status the SDKs expect
    usage       a usage row per request, made on the log's thread (human.store)
    metrics     GET /metrics in Prometheus text
    app         the process: state, the other endpoints, serve()

The pure pieces are in core/: `core/relay.py` (the stream relay: commit point, usage,
end rules), `core/limiter.py`, `core/tokens.py` (the TPM reservation's estimate).

What the gateway promises, each one a test (tests/gateway/):
- streams are forwarded event by event as they arrive, with the headers that keep
  proxies from buffering; fallback happens only before the first output reached the
  caller, and a failure after it ends the stream with an error event and no [DONE];
- a caller that disconnects cancels the upstream request at once, streamed or not;
- every stream is metered (include_usage is asked for upstream, and the extra chunk cut
  when the caller did not ask), and every request that went upstream leaves a usage row
  with its cost, attributed to its key;
- GET /v1/models lists exactly the ids chat accepts, in OpenAI's list shape;
- the upstream keys never leave the gateway, the caller's key never goes upstream.

Several processes (`--workers N`, or machines behind a load balancer) are stateless:
with `gateway.redis_url` they share limits and budgets through Redis; with
`gateway.database_url` their usage rows go to one PostgreSQL in batches. Without
Redis, each process limits on its own: N processes allow N times each key's limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from .app import Gateway

__all__ = ["build"]


def build(config: Config, *, host: str | None = None, port: int | None = None) -> Gateway:
    """A gateway from the config (and the command line's host and port), checked: its
    routes resolve, its keys are in place where they must be, its stores are reachable."""
    from .app import Gateway
    from .limits import Limits, LocalLimits
    from .settings import settings_from

    settings = settings_from(config, host=host, port=port)
    limits: Limits
    if settings.redis_url:
        from .redis import RedisLimits

        limits = RedisLimits(settings.redis_url, fail_open=settings.redis_failure == "open")
    else:
        limits = LocalLimits()
    logbook = None
    if settings.log:
        from ..store.books import logbook_for

        if settings.database_url:
            import functools

            from ..store.postgres import PostgresStore
            from ..store.writer import Logbook

            PostgresStore(settings.database_url).close()  # reachable, and migrated, before the first request
            # A logbook of its own that opens the store itself: after a failed write it
            # reconnects (a database restart must not stop the usage rows for good).
            logbook = Logbook(functools.partial(PostgresStore, settings.database_url,
                                                retention_days=config.log_retention_days),
                              name=PostgresStore.describe(settings.database_url))
        else:
            from ..store import default_path

            logbook = logbook_for(settings.log_path or default_path(config.env), config.env,
                                  retention_days=config.log_retention_days)
    gateway = Gateway(config, settings, limits=limits, logbook=logbook)
    gateway.check()
    return gateway
