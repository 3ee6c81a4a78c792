"""`POST /v1/chat/completions`: check the caller, route, send upstream through the client's
retry plan, and answer, streamed or not; then meter.

The order of work is the latency budget's (research wave2.md C.6, a pass-through costs
~260-290 µs of CPU per request): the caller's key (one SHA-256), the body parsed once,
the route and the limits (in-process: a few float operations); the upstream body is the
caller's bytes unless something must change (`request.py`); the upstream answer is
forwarded as bytes, never re-encoded; metering (usage, refund, budget, usage row) runs
after the answer was written, and the usage row is made on the log's own thread.

Streams commit at the first output (`core/relay.py`): until then a failure goes to the
next attempt of the plan (retries, fallbacks) and the caller sees nothing of it; after
it, a failure ends the stream with an OpenAI-style error event and no [DONE]. A caller
that goes away cancels this handler (aiohttp's handler_cancellation), which aborts the
upstream connection at once, streamed or not (litellm#37140, QuantumNous/new-api#4184).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from ..core.parse import decode_body
from ..core.pump import Pump, html_error
from ..core.relay import Relay, error_event, sse_from_whole
from ..core.retry import Sleep
from ..core.stream import StreamAssembler
from ..core.tokens import estimate_request, estimate_text
from ..errors import BadResponseError, HumanError
from ..profile import rejects_stream_options, remember
from ..types import Usage
from .reply import Failure, failure_from, refusal
from .request import ChatRequest, Rewrite, parse_request
from .usage import UsageRecord, price

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..client import AsyncClient
    from ..config import Target
    from ..pricing import Pricer
    from .keys import GatewayKey
    from .limits import Limits
    from .metrics import Metrics
    from .settings import Route, Settings

__all__ = ["ChatHandler"]

log = logging.getLogger("human.gateway")
perf_counter = time.perf_counter
# What a request without max_tokens reserves for its answer against a tokens-per-minute
# limit (refunded by the difference when the real usage arrives).
DEFAULT_COMPLETION = 1024
_STREAM_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    # Proxies in front (nginx, Cloudflare) must not hold the stream back (litellm#28384, PR #29557).
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class Host(Protocol):
    """What the handler uses of the gateway process (`app.Gateway`)."""

    client: AsyncClient
    settings: Settings
    routes: dict[str, Route]
    metrics: Metrics
    limits: Limits
    pricer: Pricer
    logbook: Any
    log: logging.Logger
    require_keys: bool

    def authenticate(self, headers: Mapping[str, str]) -> GatewayKey | None: ...


class ChatHandler:
    def __init__(self, gateway: Host) -> None:
        self.gw = gateway
        self.client = gateway.client
        self._rewrites: dict[tuple[str, str, str], Rewrite] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        t0 = perf_counter()
        metrics = self.gw.metrics
        metrics.in_flight += 1
        try:
            return await self._handle(request, t0)
        finally:
            metrics.in_flight -= 1

    async def _handle(self, request: web.Request, t0: float) -> web.StreamResponse:
        gw = self.gw
        if request.method != "POST":
            return self._refuse(refusal(405, "use POST for /v1/chat/completions", "method_not_allowed"), t0, "method")
        key = None
        if gw.require_keys:
            key = gw.authenticate(request.headers)
            if key is None:
                return self._refuse(refusal(401, "a valid gateway key is required: send it as "
                                            "'Authorization: Bearer hgw-...' (human gateway keys create NAME)",
                                            "invalid_api_key"), t0, "auth")
        try:
            if request.content.is_eof():  # all here already (the usual case): no timer to set
                raw = await request.read()
            else:  # a caller sending its body slowly holds a handler no longer than this
                raw = await asyncio.wait_for(request.read(), gw.settings.body_timeout_s)
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(refusal(413, f"the request body is over the gateway's limit of "
                                        f"{gw.settings.max_body_bytes} bytes (gateway.max_body_bytes)",
                                        "request_too_large"), t0, "too_large")
        except asyncio.TimeoutError:  # TimeoutError itself from 3.11
            late = self._refuse(refusal(408, f"the request body did not arrive within {gw.settings.body_timeout_s:g} "
                                        "s (gateway.body_timeout_s)", "request_timeout"), t0, "body_timeout")
            late.force_close()
            await late.prepare(request)
            await late.write_eof()
            if request.protocol is not None:  # closed now: aiohttp would read on for the rest, for 10 s
                request.protocol.force_close()
            return late
        parsed = parse_request(raw)
        if parsed.__class__ is Failure:
            assert isinstance(parsed, Failure)
            return self._refuse(parsed, t0, "bad_request")
        assert isinstance(parsed, ChatRequest)
        route = gw.routes.get(parsed.model)
        if route is None:
            return self._refuse(refusal(404, f"the gateway serves no model {parsed.model!r}; GET /v1/models lists "
                                        "the ids it accepts", "model_not_found", param="model"), t0, "model")
        if key is not None and not key.may_use(route.id):
            return self._refuse(refusal(403, f"key {key.name!r} may not use {route.id!r}", "model_not_allowed",
                                        kind="permission_error", param="model"), t0, "model_not_allowed")
        reserved = 0
        if key is not None and (key.rpm is not None or key.tpm is not None or key.budget is not None):
            if key.tpm is not None:
                reserved = estimate_request(parsed.body).reserve(DEFAULT_COMPLETION)
            refused = await gw.limits.acquire(key, reserved)
            if refused is not None:
                if refused.reason == "unavailable":
                    failure = refusal(503, refused.message, "limits_unavailable", kind="api_error", retry=True)
                elif refused.reason == "budget":
                    failure = refusal(429, refused.message, "insufficient_quota", kind="insufficient_quota",
                                      retry_after=refused.retry_after)
                else:
                    failure = refusal(429, refused.message, "rate_limit_exceeded", kind="requests",
                                      retry_after=refused.retry_after, retry=True)
                return self._refuse(failure, t0, refused.reason)
        record = UsageRecord(time.time(), key.id if key is not None else None, route.id,
                             self.client.target(route.provider, route.model), gw.pricer, parsed.stream)
        try:
            if parsed.stream:
                return await self._stream(request, parsed, route, record, t0)
            return await self._whole(request, parsed, route, record, t0)
        except BaseException as exc:  # the caller went away (cancelled)
            if record.error_type is None and not isinstance(exc, HumanError):
                self._gone(record)
            raise
        finally:
            self._settle(key, reserved, record, parsed)

    # ---- whole answers ----------------------------------------------------------------------

    async def _whole(self, request: web.Request, parsed: ChatRequest, route: Route, record: UsageRecord,
                     t0: float) -> web.StreamResponse:
        async def attempt(target: Target, body: bytes) -> tuple[Target, bytes, dict[str, Any]]:
            exchange = await self.client.send_prepared(target, body)
            answer = await exchange.read()
            return target, answer, _answer(target, exchange.headers.get("content-type"), answer)

        done = await self._through_plan(parsed, route, record, t0, attempt)
        if isinstance(done, web.Response):
            return done
        result, send, waited = done
        target, answer, obj = result
        record.target, record.attempts = target, send.attempt
        record.served = obj.get("model") if isinstance(obj.get("model"), str) else None
        record.usage = obj.get("usage") if obj.get("usage").__class__ is dict else None
        record.finish = _finish_reason(obj)
        if record.usage is None:
            record.usage, record.estimated = _estimate(parsed, _message_text(obj)), True
        overhead = perf_counter() - t0 - waited
        response = web.Response(body=answer, headers={
            "Content-Type": "application/json", "x-human-overhead-ms": f"{overhead * 1000:.3f}",
            "x-human-provider": target.provider})
        self.gw.metrics.record(route.id, 200, False, overhead, waited)
        try:
            await response.prepare(request)
            await response.write_eof()
        except ConnectionResetError:  # the caller left just as the answer was ready
            self._gone(record)
        record.total_ms = (perf_counter() - t0) * 1000
        return response

    # ---- streams ----------------------------------------------------------------------------

    async def _stream(self, request: web.Request, parsed: ChatRequest, route: Route, record: UsageRecord,
                      t0: float) -> web.StreamResponse:
        async def attempt(target: Target, body: bytes) -> tuple[Any, Relay, bytes, Target]:
            return (*await self._open(target, body, parsed), target)

        done = await self._through_plan(parsed, route, record, t0, attempt)
        if isinstance(done, web.Response):
            return done
        result, send, waited = done
        chunks, relay, first, target = result
        client = self.client
        record.target, record.attempts = target, send.attempt
        overhead = perf_counter() - t0 - waited
        response = web.StreamResponse(headers={**_STREAM_HEADERS, "x-human-overhead-ms": f"{overhead * 1000:.3f}",
                                               "x-human-provider": target.provider})
        try:
            await response.prepare(request)
            await response.write(first)
            record.ttft_ms = (perf_counter() - t0) * 1000
            self.gw.metrics.record(route.id, 200, True, overhead, waited)
            failure: HumanError | None = None
            try:
                if not relay.done:
                    async for chunk in chunks:
                        out = relay.feed(chunk)
                        if out:
                            await response.write(out)
                        if relay.done:
                            break
                out = relay.end()
                if out:
                    await response.write(out)
            except HumanError as exc:
                failure = client.stamped(exc, target)
            if failure is not None or not relay.complete:
                await self._broken(response, relay, failure, record)
            await response.write_eof()
        except ConnectionResetError:  # a write to a caller that went away
            self._gone(record)
        finally:
            await chunks.aclose()
            self._meter_stream(relay, record, parsed, target)
            record.total_ms = (perf_counter() - t0) * 1000
        return response

    async def _through_plan(self, parsed: ChatRequest, route: Route, record: UsageRecord, t0: float,
                            attempt: Callable[[Target, bytes], Awaitable[Any]]
                            ) -> web.Response | tuple[Any, Any, float]:
        """Run `attempt(target, body)` through the client's plan for the route (retries,
        fallbacks, the breaker): (what the attempt that succeeded returned, its Send, the
        seconds spent waiting on upstreams and backoffs), or the failure's answer."""
        client = self.client
        waited = 0.0
        plan = client.plan(route.provider, route.model).run()
        action = next(plan)
        while True:
            if isinstance(action, Sleep):
                began = perf_counter()
                await asyncio.sleep(action.seconds)
                waited += perf_counter() - began
                action = plan.send(None)
                continue
            target: Target = action.target
            began = perf_counter()
            outcome: Any
            for _ in range(2):  # a second time only without the stream_options it added
                try:
                    outcome = await attempt(target, self._rewrite(target).apply(parsed))
                    break
                except HumanError as exc:
                    outcome = client.stamped(exc, target)  # scrubbed: what the warning may quote
                    if not self._learn_no_stream_options(outcome, target, parsed):
                        break
            waited += perf_counter() - began
            try:
                action = plan.send(outcome)
            except StopIteration as done:
                result, send = done.value
                return result, send, waited
            except HumanError as final:
                return self._upstream_failed(final, record, t0, waited, action)

    async def _open(self, target: Target, body: bytes, parsed: ChatRequest) -> tuple[Any, Relay, bytes]:
        """One attempt of a stream: send, and read until the first output (the commit point).
        Raises what failed before it, so the plan may retry or fall back."""
        exchange = await self.client.send_prepared(target, body, stream=True)
        kind = exchange.headers.get("content-type") or ""
        relay = Relay(strip_usage=not parsed.wants_usage)
        if "json" in kind:  # a whole answer to a stream request: sent on as the events of one
            answer = await exchange.read()
            obj = _answer(target, kind, answer)
            relay.done = relay.committed = relay.output = True
            relay.usage = obj.get("usage") if obj.get("usage").__class__ is dict else None
            relay.model = obj.get("model") if isinstance(obj.get("model"), str) else None
            first = sse_from_whole(obj, include_usage=parsed.wants_usage)
            relay.forwarded.append(first)
            return _no_chunks(), relay, first
        chunks = exchange.chunks()
        try:
            if "html" in kind:
                raise html_error(target.provider, target.model, await anext(chunks, b"<html>"))
            async for chunk in chunks:
                out = relay.feed(chunk)
                if relay.error is not None and not relay.output:
                    raise _stream_error(target, relay.error)
                if out:
                    return chunks, relay, out
            out = relay.end()
            if relay.error is not None and not relay.output:
                raise _stream_error(target, relay.error)
            if not relay.output:
                raise BadResponseError("the stream ended before any output arrived", retryable=True,
                                       provider=target.provider, model=target.model)
        except BaseException:
            await chunks.aclose()
            raise
        return _no_chunks(), relay, out

    async def _broken(self, response: web.StreamResponse, relay: Relay, failure: HumanError | None,
                      record: UsageRecord) -> None:
        """End a committed stream that did not complete: an error event, no [DONE]
        (Portkey-AI/gateway#1797: a truncated stream must not look complete)."""
        if failure is not None:
            message = f"the upstream stream broke after the answer began: {failure}"
            record.error_type, record.error = type(failure).__name__, message
        elif relay.error is not None:  # the upstream's own error event was forwarded already
            record.error_type, record.error = "StreamError", f"the upstream sent an error event: {relay.error}"[:500]
            self.gw.metrics.error("upstream_stream")
            return
        else:
            message = "the upstream stream ended before the answer was complete (no finish_reason, no [DONE])"
            record.error_type, record.error = "TruncatedStream", message
        self.gw.metrics.error("upstream_stream")
        await response.write(error_event(message, code="stream_interrupted"))

    def _gone(self, record: UsageRecord) -> None:
        record.error_type, record.error = "ClientDisconnected", "the caller disconnected"
        self.gw.metrics.error("disconnected")

    def _meter_stream(self, relay: Relay, record: UsageRecord, parsed: ChatRequest, target: Target) -> None:
        record.served = relay.model or None
        record.finish = "stop" if relay.finished else None
        if relay.usage is not None:
            record.usage = relay.usage
        else:
            record.usage, record.estimated = _estimate(parsed, _stream_text(relay.forwarded, target)), True

    # ---- the rest ---------------------------------------------------------------------------

    def _rewrite(self, target: Target) -> Rewrite:
        key = (target.provider, target.base_url, target.model)
        rewrite = self._rewrites.get(key)
        if rewrite is None:
            drop, rename = self.client.profile_changes(target)
            rewrite = self._rewrites[key] = Rewrite(target.model, target.token_field, drop, rename)
        return rewrite

    def _learn_no_stream_options(self, exc: HumanError, target: Target, parsed: ChatRequest) -> bool:
        """Whether `exc` is the upstream rejecting the `stream_options` the gateway added to
        a stream whose caller did not ask for usage. Then the endpoint is known not to take
        it (in this process, and in its capability profile for the next ones and the
        client), and the attempt is made again without it: the caller never sees an error
        for a field it did not send, and the stream is metered from estimates (the row says
        so). A caller who asked for it gets the upstream's 400 as it is."""
        if not parsed.stream or parsed.wants_usage or not rejects_stream_options(exc):
            return False
        rewrite = self._rewrite(target)
        if not rewrite.usage:
            return False
        rewrite.usage = False
        log.warning("%s rejects stream_options (%s): its streams are sent without it from now on and metered from "
                    "estimates", target.provider, " ".join(str(exc).split())[:200])
        try:
            remember(target.provider, target.base_url, target.model, accepts_stream_options=False)
        except (OSError, ValueError) as failed:  # a read-only state dir: this process still knows
            log.debug("could not save the capability profile: %s", failed)
        return True

    def _refuse(self, failure: Failure, t0: float, kind: str) -> web.Response:
        self.gw.metrics.error(kind)
        overhead = perf_counter() - t0
        self.gw.metrics.record("-", failure.status, False, overhead, None)
        headers = failure.headers()
        headers["x-human-overhead-ms"] = f"{overhead * 1000:.3f}"
        return web.Response(status=failure.status, body=failure.body(), headers=headers)

    def _upstream_failed(self, exc: HumanError, record: UsageRecord, t0: float, waited: float,
                         action: Any) -> web.Response:
        failure = failure_from(exc)
        record.error_type, record.error = type(exc).__name__, str(exc)[:2000]
        record.attempts = getattr(action, "attempt", 1)
        record.total_ms = (perf_counter() - t0) * 1000
        self.gw.metrics.error("upstream")
        overhead = perf_counter() - t0 - waited
        self.gw.metrics.record(record.route, failure.status, record.stream, overhead, waited)
        headers = failure.headers()
        headers["x-human-overhead-ms"] = f"{overhead * 1000:.3f}"
        return web.Response(status=failure.status, body=failure.body(), headers=headers)

    def _settle(self, key: GatewayKey | None, reserved: int, record: UsageRecord, parsed: ChatRequest) -> None:
        """After the answer: meter it, refund the limits, spend the budget, hand the row to
        the log. Never raises (the answer is out already)."""
        gw = self.gw
        try:
            usage = record.metered()
            used = None
            if usage is not None:
                used = usage.total_tokens or ((usage.prompt_tokens or 0) + (usage.completion_tokens or 0)) or None
                gw.metrics.metered(record.route, usage.prompt_tokens, usage.completion_tokens)
            if key is not None and (key.rpm is not None or key.tpm is not None or key.budget is not None):
                cost = None
                if key.budget is not None:
                    record.cost = price(gw.pricer, record.target, record.served, usage, record.started)
                    cost = float(record.cost[0].amount) if record.cost[0] is not None else None
                gw.limits.settle(key, reserved, used, cost)
            if gw.logbook is not None:
                gw.logbook.add(record)
        except Exception:  # metering must never break an answer already given
            gw.log.exception("metering a request failed")


# ---- pure helpers ---------------------------------------------------------------------------


def _answer(target: Target, content_type: str | None, raw: bytes) -> dict[str, Any]:
    """The upstream's whole answer, checked: a chat completion, else the error it holds."""
    obj = decode_body(raw, content_type, provider=target.provider, model=target.model, status=200)
    if obj.__class__ is not dict:
        raise BadResponseError("the server's answer is not a JSON object", provider=target.provider,
                               model=target.model, body_preview=raw[:200].decode("utf-8", "replace"))
    if obj.get("error") not in (None, False) and "choices" not in obj:
        raise _stream_error(target, obj)
    if not isinstance(obj.get("choices"), list):
        raise BadResponseError("the server's answer has no \"choices\": not a chat completion",
                               provider=target.provider, model=target.model,
                               body_preview=raw[:200].decode("utf-8", "replace"))
    return obj


def _stream_error(target: Target, error: Any) -> HumanError:
    """An error the server sent with status 200 (an error event, an error object)."""
    data = error if isinstance(error, str) else json.dumps(error)
    return StreamAssembler(provider=target.provider, model=target.model).error_event(data)


def _finish_reason(obj: dict[str, Any]) -> str | None:
    choices = obj.get("choices")
    if choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        return reason if isinstance(reason, str) else None
    return None


def _message_text(obj: dict[str, Any]) -> str:
    parts = []
    for choice in obj.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            for key in ("content", "reasoning_content", "reasoning"):
                if isinstance(message.get(key), str):
                    parts.append(message[key])
            if message.get("tool_calls"):
                parts.append(json.dumps(message["tool_calls"]))
    return "".join(parts)


def _stream_text(forwarded: list[bytes], target: Target) -> str:
    """The text of what reached the caller (content, reasoning, tool calls), for a stream
    that reported no usage or broke off: read again, off the hot path."""
    pump = Pump(target.provider, target.model)
    try:
        for piece in forwarded:
            pump.feed(piece)
        pump.end()
    except HumanError:
        pass
    partial = pump.assembler.partial()
    calls = "".join(call.arguments + call.name for call in partial.tool_calls)
    return (partial.content or "") + (partial.reasoning or "") + calls


def _estimate(parsed: ChatRequest, answer_text: str) -> Usage:
    prompt = estimate_request(parsed.body).prompt
    completion = estimate_text(answer_text)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


async def _no_chunks() -> Any:
    return
    yield b""  # pragma: no cover - makes this an async generator
