"""Per-key limits and budgets shared by every gateway process through Redis (or Valkey):
`gateway.redis_url`, the `human[redis]` extra (redis-py, whose asyncio client the gateway
uses on its own loop; it also speaks to Valkey).

Each check is one Lua script run atomically by Redis, never a read-modify-write from
the gateway (two processes reading the same counter and both writing it back would let
both through: litellm#4125, #24677). The scripts implement exactly the rules of
`core/limiter.py` (a test drives both with the same sequence and compares them): two
buckets (requests, tokens) per key, refilled continuously, a request bigger than the
whole bucket allowed when it is full (leaving debt), reservation then refund. The clock
is Redis' own (`TIME`), so machines whose clocks differ still agree.

    {hgw:<key id>}:rate             hash: r_level r_stamp t_level t_stamp; expires after 61 s
                                    idle (a bucket idle for 60 s is full, which is what a
                                    missing one means)
    {hgw:<key id>}:spent:<period>   the budget period's spend in USD (INCRBYFLOAT); expires
                                    a day after its period ends

The `{...}` hash tag keeps a key's counters on one Redis Cluster slot.

When Redis cannot be reached (a timeout of 250 ms per call), `gateway.redis_failure`
decides: "open" (default) goes on with this process's own limits (`LocalLimits`) and
logs a warning once per outage, so a Redis restart does not take the gateway down;
"closed" refuses with 503 until Redis answers again.

Settling (refund and spend) is queued and sent in one pipeline per turn of the event
loop, after the answers went out: it costs the response path nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from .keys import GatewayKey
from .limits import LocalLimits, Refusal, budget_refusal, period, rate_refusal

__all__ = ["ACQUIRE", "REFUND", "RedisLimits"]

log = logging.getLogger("human.gateway")

_TIMEOUT_S = 0.25

# KEYS: rate hash, spend key. ARGV: rpm, tpm, tokens, budget ("" = none).
# Returns {"ok"} | {"wait", seconds} | {"budget", spent} (numbers as strings: Redis turns a
# Lua number into an integer).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rpm, tpm, cost, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if budget then
  local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
  if spent >= budget then return {'budget', string.format('%.17g', spent)} end
end
local function bucket(prefix, per_minute)
  local rate = per_minute / 60
  local level = tonumber(redis.call('HGET', KEYS[1], prefix .. 'level'))
  local stamp = tonumber(redis.call('HGET', KEYS[1], prefix .. 'stamp'))
  if level == nil or stamp == nil then
    return per_minute, now, rate
  end
  if now > stamp then
    level = math.min(per_minute, level + (now - stamp) * rate)
    stamp = now
  end
  return level, stamp, rate
end
local wait = 0
local rl, rs, rr, tl, ts, tr
if rpm then
  rl, rs, rr = bucket('r_', rpm)
  local need = math.min(1, rpm)
  if rl < need - 1e-9 then wait = math.max(wait, (need - rl) / rr) end
end
if tpm then
  tl, ts, tr = bucket('t_', tpm)
  local need = math.min(cost, tpm)
  if tl < need - 1e-9 then wait = math.max(wait, (need - tl) / tr) end
end
if wait > 0 then return {'wait', string.format('%.17g', wait)} end
if rpm then
  redis.call('HSET', KEYS[1], 'r_level', string.format('%.17g', rl - 1), 'r_stamp', string.format('%.17g', rs))
end
if tpm then
  redis.call('HSET', KEYS[1], 't_level', string.format('%.17g', tl - cost), 't_stamp', string.format('%.17g', ts))
end
redis.call('PEXPIRE', KEYS[1], 61000)
return {'ok'}
"""

# KEYS: rate hash, spend key. ARGV: tpm ("" = none), reserved, used ("" = unknown),
# cost ("" = none), seconds the spend key lives.
REFUND = """
local tpm, reserved, used, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if tpm and used then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local level = tonumber(redis.call('HGET', KEYS[1], 't_level'))
  local stamp = tonumber(redis.call('HGET', KEYS[1], 't_stamp'))
  if level ~= nil and stamp ~= nil then
    if now > stamp then
      level = math.min(tpm, level + (now - stamp) * tpm / 60)
      stamp = now
    end
    local difference = reserved - used
    if difference >= 0 then level = math.min(tpm, level + difference) else level = level + difference end
    redis.call('HSET', KEYS[1], 't_level', string.format('%.17g', level), 't_stamp', string.format('%.17g', stamp))
    redis.call('PEXPIRE', KEYS[1], 61000)
  end
end
if cost and cost > 0 then
  redis.call('INCRBYFLOAT', KEYS[2], string.format('%.17g', cost))
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
end
return 1
"""


def _keys(key: GatewayKey, now: float) -> tuple[str, str]:
    label = period(key.budget_period, now)[0]
    return f"{{hgw:{key.id}}}:rate", f"{{hgw:{key.id}}}:spent:{label}"


def _number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


class RedisLimits:
    """Limits and budgets in Redis (see the module docstring)."""

    shared = True

    def __init__(self, url: str, *, fail_open: bool = True) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            from ..errors import ConfigError

            raise ConfigError("gateway.redis_url needs redis-py: pip install 'human[redis]'") from None
        self.url = url
        self.fail_open = fail_open
        self._redis: Any = aioredis.from_url(url, socket_timeout=_TIMEOUT_S, socket_connect_timeout=_TIMEOUT_S)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._refund = self._redis.register_script(REFUND)
        self._local = LocalLimits()  # fail-open: each process's own limits while Redis is away
        self._down = False
        self._pending: deque[tuple[GatewayKey, int, int | None, float | None, float]] = deque()
        self._flushing = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def acquire(self, key: GatewayKey, tokens: int) -> Refusal | None:
        now = time.time()
        rate, spend = _keys(key, now)
        try:
            answer = await self._acquire(keys=[rate, spend], args=[
                _number(key.rpm), _number(key.tpm), str(tokens), _number(key.budget)])
        except Exception as exc:  # noqa: BLE001 - any failure of the shared store is an outage
            return self._unavailable(key, tokens, exc)
        if self._down:
            self._down = False
            log.warning("Redis answers again (%s): limits are shared again", self._where)
        verdict = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        if verdict == "ok":
            return None
        value = float(answer[1])
        if verdict == "budget":
            return budget_refusal(key, value, now)
        return rate_refusal(key, value)

    def settle(self, key: GatewayKey, reserved: int, used: int | None, cost: float | None) -> None:
        if key.tpm is None and not cost:
            return
        self._pending.append((key, reserved, used, cost, time.time()))
        if not self._flushing:
            self._flushing = True
            task = asyncio.get_running_loop().create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        """Everything settled since the last flush, in one pipeline."""
        try:
            while self._pending:
                pipe = self._redis.pipeline(transaction=False)
                count = 0
                while self._pending and count < 256:
                    key, reserved, used, cost, now = self._pending.popleft()
                    if self._down:
                        self._local.settle(key, reserved, used, cost)
                    rate, spend = _keys(key, now)
                    left = period(key.budget_period, now)[1]
                    lifetime = 86_400 + int(left) if left is not None else 400 * 86_400
                    await self._refund(keys=[rate, spend], args=[
                        _number(key.tpm), str(reserved), _number(used), _number(cost), str(lifetime)], client=pipe)
                    count += 1
                try:
                    await pipe.execute()
                except Exception as exc:  # noqa: BLE001 - a lost refund errs on the safe side
                    log.debug("could not settle limits in Redis: %r", exc)
        finally:
            self._flushing = False

    def _unavailable(self, key: GatewayKey, tokens: int, exc: BaseException) -> Refusal | None:
        if not self._down:
            self._down = True
            what = ("each process limits on its own until it is back" if self.fail_open
                    else "requests of keys with limits are refused (503) until it is back")
            log.warning("Redis is unreachable (%s: %s): %s", self._where, type(exc).__name__, what)
        if self.fail_open:
            return self._local.take(key, tokens)
        return Refusal("unavailable", "the gateway's shared limits store (Redis) is unreachable; try again shortly",
                       1.0)

    @property
    def _where(self) -> str:
        from ..core.secret import scrub

        return scrub(self.url)

    async def ping(self) -> None:
        """Raise if Redis does not answer (the gateway checks it at start)."""
        await self._redis.ping()

    async def close(self) -> None:
        for task in list(self._tasks):
            await task
        await self._redis.aclose()
