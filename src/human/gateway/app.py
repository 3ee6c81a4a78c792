"""The gateway process: its state (`Gateway`), the aiohttp application and its small
handlers, and `serve` to run it.

    GET  /health                 {"status": "ok"}: no key needed (load balancers)
    GET  /metrics                Prometheus text (metrics.py)
    GET  /v1/models              {"object": "list", "data": [...]}: exactly the ids chat accepts,
                                 and only those the caller's key may use
    GET  /v1/models/{id}         one of them
    POST /v1/chat/completions    chat.py
    anything else                404 in OpenAI's error shape

Every answer carries `x-human-overhead-ms`: the time spent in the gateway itself, that
is the time to the answer (or to a stream's first byte) less the time spent waiting for
upstream (MLflow AI Gateway's X-MLflow-Gateway-Overhead-Duration-Ms, research C.1).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ..client import AsyncClient
from ..config import Config
from ..config.checks import is_loopback
from ..errors import ConfigError, HumanError
from .keys import GatewayKey, Keyring
from .limits import Limits, LocalLimits
from .metrics import Metrics
from .reply import refusal
from .settings import Route, Settings, open_keys, routes_from

__all__ = ["Gateway", "ServerLog", "serve"]

log = logging.getLogger("human.gateway")
perf_counter = time.perf_counter
_KEY_RELOAD_S = 1.0


class ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """What aiohttp's server logs, without a traceback per request. A malformed request (a
    TLS hello on the plain port, a scanner's bytes, a broken client) is the caller's: it gets
    aiohttp's 400 and this a debug line, where aiohttp logged an ERROR with its traceback on
    stderr for each one (a log any port scanner could fill). Anything else (a bug of ours)
    is one error line naming the exception; its traceback is a debug line."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        text = str(msg) % args if args else str(msg)
        if isinstance(exc, HttpProcessingError):
            self.logger.debug("%s: a malformed request: %s", text, " ".join(str(exc.message).split())[:200])
            return
        what = "" if exc is None else f": {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        self.logger.error("%s%s", text, what)
        if exc is not None:
            self.logger.debug("where", exc_info=exc)


class Gateway:
    """Everything one gateway process holds. Build it, `check()` it, `app()` it."""

    def __init__(self, config: Config, settings: Settings, *, limits: Limits | None = None,
                 logbook: Any = None) -> None:
        from ..pricing import Pricer

        self.config = config
        self.settings = settings
        self.log = log
        self.routes: dict[str, Route] = routes_from(config)
        self.client = AsyncClient(config=config, log=False)
        self.pricer = Pricer(config.prices)
        self.metrics = Metrics()
        self.keys = open_keys(settings)
        self.keyring = Keyring()
        self.require_keys = False
        self._keys_stamp: tuple[int, int] | None = None
        self._reload_keys()
        self.limits: Limits = limits if limits is not None else LocalLimits()
        self.logbook = logbook
        self._tasks: list[asyncio.Task[None]] = []
        self._models_body = b""

    # ---- set-up -----------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse to start on what would fail on every request: an upstream without its key,
        an unknown provider, or a non-loopback address without gateway keys."""
        for route in self.routes.values():
            try:
                self.client.target(route.provider, route.model)
            except HumanError as exc:
                raise ConfigError(f"route {route.id!r} ({route.provider}/{route.model}): {exc}") from None
        host = self.settings.host
        if not is_loopback(host) and not self.keyring:
            raise ConfigError(
                f"refusing to listen on {host} without gateway keys: anyone who can reach it could spend your "
                "provider keys. Create one with `human gateway keys create NAME`, or listen on 127.0.0.1")

    def _reload_keys(self) -> None:
        if self.keys is None:
            return
        stamp = self.keys.stamp()
        if stamp == self._keys_stamp:
            return
        keys = self.keys.load()
        self.keyring = Keyring(keys)
        # Once keys exist (revoked ones too), every request needs one: revoking the last key
        # must shut the gateway, never open it.
        self.require_keys = bool(keys)
        self._keys_stamp = stamp

    async def _watch_keys(self) -> None:
        loop = asyncio.get_running_loop()
        failing: str | None = None
        while True:
            await asyncio.sleep(_KEY_RELOAD_S)
            try:  # off the loop: a database's round trip (or a slow disk) must not stall requests
                await loop.run_in_executor(None, self._reload_keys)
            except ConfigError as exc:  # a half-written file, an unreachable database: keep the keys we have
                if str(exc) != failing:  # once, not every second
                    log.warning("%s; the gateway keeps the %d key(s) it has", exc, len(self.keyring))
                failing = str(exc)
            else:
                if failing is not None:
                    log.warning("the gateway keys can be read again (%s)", self.keys.where if self.keys else "")
                failing = None

    def authenticate(self, headers: Mapping[str, str]) -> GatewayKey | None:
        """The caller's key: `Authorization: Bearer <key>` (or Azure's `api-key: <key>`)."""
        auth = headers.get("Authorization")
        if auth is not None and auth[:7].lower() == "bearer ":
            return self.keyring.check(auth[7:].strip())
        return self.keyring.check(headers.get("api-key", "").strip())

    def describe(self) -> str:
        """The start-up line: what is served, how keys and limits work here."""
        keys = f"{len(self.keyring)} key(s)" if self.require_keys else "no keys (open on loopback)"
        shared = ("limits and budgets shared through Redis" if self.limits.shared else
                  "limits and budgets held in this process (N processes allow N times each key's limits; "
                  "set gateway.redis_url to share them)")
        store = "no usage log" if self.logbook is None else f"usage rows to {self.logbook.name}"
        return f"{len(self.routes)} model id(s), {keys}, {shared}, {store}"

    # ---- the application --------------------------------------------------------------------

    def app(self) -> web.Application:
        from .chat import ChatHandler

        app = web.Application(client_max_size=self.settings.max_body_bytes,
                              handler_args={"access_log": None, "logger": ServerLog(log, {})})
        chat = ChatHandler(self)
        app.router.add_route("*", "/v1/chat/completions", chat.handle)
        app.router.add_route("*", "/chat/completions", chat.handle)
        app.router.add_get("/v1/models", self._timed(self._models))
        app.router.add_get("/v1/models/{id:.+}", self._timed(self._model))
        app.router.add_get("/health", self._timed(self._health))
        app.router.add_get("/metrics", self._timed(self._metrics))
        app.router.add_route("*", "/{tail:.*}", self._timed(self._not_found))
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        if self.keys is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._watch_keys()))

    async def _on_cleanup(self, app: web.Application) -> None:
        for task in self._tasks:
            task.cancel()
        await self.limits.close()
        await self.client.close()
        if self.keys is not None:
            self.keys.close()
        if self.logbook is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.logbook.close)

    @staticmethod
    def _timed(handler: Callable[[web.Request], Awaitable[web.Response]]
               ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def timed(request: web.Request) -> web.Response:
            t0 = perf_counter()
            response = await handler(request)
            response.headers["x-human-overhead-ms"] = f"{(perf_counter() - t0) * 1000:.3f}"
            return response

        return timed

    def _caller(self, request: web.Request) -> tuple[GatewayKey | None, web.Response | None]:
        if not self.require_keys:
            return None, None
        key = self.authenticate(request.headers)
        if key is None:
            failure = refusal(401, "a valid gateway key is required: send it as 'Authorization: Bearer hgw-...'",
                              "invalid_api_key")
            self.metrics.error("auth")
            return None, web.Response(status=401, body=failure.body(), headers=failure.headers())
        return key, None

    def _model_entry(self, route: Route) -> dict[str, Any]:
        return {"id": route.id, "object": "model", "created": 0, "owned_by": route.provider}

    async def _models(self, request: web.Request) -> web.Response:
        key, refused = self._caller(request)
        if refused is not None:
            return refused
        data = [self._model_entry(route) for route in self.routes.values() if key is None or key.may_use(route.id)]
        return web.json_response({"object": "list", "data": data})

    async def _model(self, request: web.Request) -> web.Response:
        key, refused = self._caller(request)
        if refused is not None:
            return refused
        route = self.routes.get(request.match_info["id"])
        if route is None or (key is not None and not key.may_use(route.id)):
            failure = refusal(404, f"the gateway serves no model {request.match_info['id']!r}", "model_not_found")
            return web.Response(status=404, body=failure.body(), headers=failure.headers())
        return web.json_response(self._model_entry(route))

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def _not_found(self, request: web.Request) -> web.Response:
        failure = refusal(404, f"no such endpoint: {request.method} {request.path} (the gateway serves "
                               "POST /v1/chat/completions, GET /v1/models, /health, /metrics)", "not_found")
        return web.Response(status=404, body=failure.body(), headers=failure.headers())


async def serve(gateway: Gateway, *, ready: Callable[[str], None] | None = None,
                stop: asyncio.Event | None = None, reuse_port: bool = False) -> None:
    """Run until `stop` is set (or the task is cancelled). `ready(url)` is called once
    listening (the port may be 0: the URL has the real one)."""
    _few_arenas()
    app = gateway.app()
    # handler_cancellation: a caller that disconnects cancels its handler, and with it the
    # upstream request (aiohttp >= 3.9 leaves handlers running by default).
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, gateway.settings.host, gateway.settings.port, backlog=1024,
                           reuse_port=reuse_port or None)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else gateway.settings.port
        host = gateway.settings.host
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        if ready is not None:
            ready(url)
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    finally:
        await runner.cleanup()


def _few_arenas() -> None:
    """At most two glibc malloc arenas (MALLOC_ARENA_MAX=2, unless the environment sets
    it). The usage log's writer thread gets an arena of its own by default, and its
    fragmentation grew the gateway's RSS by ~25 MB over 30,000 requests while the Python
    heap stayed flat; with two arenas RSS levels off (measured with bench/gateway.py)."""
    import os
    import sys

    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX (malloc.h)
    except (OSError, AttributeError):  # not glibc (musl): nothing to tune
        pass
