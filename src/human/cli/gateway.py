"""`human gateway`: run the OpenAI-compatible gateway, and manage its keys.

    human gateway [--host 127.0.0.1] [--port 8000] [--workers N]
    human gateway keys create NAME [--models ID,ID] [--rpm N] [--tpm N] [--budget USD] [--budget-period day]
    human gateway keys list [--json]
    human gateway keys revoke ID|NAME

`keys create` prints the new key once, on stdout (the only place `human` ever prints a
key: it is stored only as a hash, so it cannot be shown again).
"""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from .output import Output
from .table import table, terminal_width

__all__ = ["add_arguments", "run"]


def add_arguments(gateway: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """The arguments of `human gateway` (its line in `human --help` is in cli/__init__.py)."""
    gateway.add_argument("--host", help="address to listen on (default 127.0.0.1; another needs gateway keys)")
    gateway.add_argument("--port", type=int, help="port (default 8000)")
    gateway.add_argument("--workers", type=int, default=1, metavar="N",
                         help="processes sharing the port (limits are per process unless gateway.redis_url is set)")
    actions = gateway.add_subparsers(dest="action", metavar="ACTION")
    keys = actions.add_parser("keys", parents=[common], help="the gateway's own keys: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    create = keys_sub.add_parser("create", parents=[common], help="a new key, printed once")
    create.add_argument("name")
    create.add_argument("--models", metavar="ID,ID", help="the model ids it may use (default: all)")
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute (prompt estimate + max_tokens, refunded)")
    create.add_argument("--budget", type=float, metavar="USD", help="spend allowed per budget period")
    create.add_argument("--budget-period", choices=("total", "day", "month"), default="total")
    listing = keys_sub.add_parser("list", parents=[common], help="keys by id and name (never their secret)")
    listing.add_argument("--all", action="store_true", help="revoked keys too")
    listing.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", parents=[common], help="stop accepting a key (running gateways "
                                 "notice within a second)")
    revoke.add_argument("key", metavar="ID|NAME")


def run(args: argparse.Namespace, out: Output) -> int:
    if args.action == "keys":
        return _keys(args, out)
    return _serve(args, out)


def _keystore(args: argparse.Namespace) -> Any:
    """Where the config keeps the gateway's keys: the keys file, or its PostgreSQL."""
    from ..gateway.settings import open_keys, settings_from

    store = open_keys(settings_from(load_config(args.config)))
    assert store is not None
    return store


def _keys(args: argparse.Namespace, out: Output) -> int:
    store = _keystore(args)
    try:
        return _key_action(args, out, store)
    finally:
        store.close()


def _key_action(args: argparse.Namespace, out: Output, store: Any) -> int:
    if args.keys_action == "create":
        models = [model.strip() for model in args.models.split(",") if model.strip()] if args.models else None
        record, key = store.create(args.name, models=models, rpm=args.rpm, tpm=args.tpm, budget=args.budget,
                                   budget_period=args.budget_period)
        out.stdout.write(key + "\n")  # the one time a key is printed, on purpose: it is stored hashed
        out.stdout.flush()
        out.info(f"created key {record.name!r} ({record.shown}) in {store.where}; it is shown only now: "
                 "give it to the caller as its API key")
        return 0
    if args.keys_action == "revoke":
        record = store.revoke(args.key)
        out.info(f"revoked key {record.name!r} ({record.shown}); running gateways refuse it within a second or two")
        return 0
    keys = [key for key in store.load() if args.all or key.revoked is None]
    if args.json:
        out.json([{k: v for k, v in key.to_json().items() if k != "digest"} for key in keys])
        return 0
    if not keys:
        out.info(f"no gateway keys in {store.where}; create one with `human gateway keys create NAME`")
        return 0
    rows = [[key.id, key.name, ",".join(key.models) if key.models else "all", _limit(key.rpm), _limit(key.tpm),
             f"${key.budget:g}/{key.budget_period}" if key.budget is not None else "-", key.created[:10],
             "revoked" if key.revoked else "active"] for key in keys]
    out.line(table(["id", "name", "models", "rpm", "tpm", "budget", "created", "state"], rows,
                   width=terminal_width(out.stdout)))
    return 0


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)


def _serve(args: argparse.Namespace, out: Output) -> int:
    from ..gateway import build

    config = load_config(args.config)
    workers = args.workers
    if workers < 1:
        raise ConfigError("--workers must be 1 or more")
    gateway = build(config, host=args.host, port=args.port)
    if workers > 1 and gateway.settings.port == 0:
        raise ConfigError("--workers needs a fixed --port (the processes share it)")
    line = gateway.describe()
    if workers > 1 and not gateway.limits.shared:
        line = line.replace("N processes allow N times", f"{workers} workers allow {workers} times")
    out.info(f"human gateway: {line}")
    if workers == 1:
        _run(gateway, out, reuse_port=False)
        return 0
    return _fork(gateway, out, workers, args, config)


def _run(gateway: Any, out: Output, *, reuse_port: bool) -> None:
    import asyncio  # here, not at the top: every other command would pay for it at start-up

    from .. import eventloop
    from ..gateway.app import serve

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(gateway, stop=stop, reuse_port=reuse_port,
                    ready=lambda url: out.info(f"human gateway: listening on {url} (pid {os.getpid()})"))

    eventloop.run(main())


def _fork(gateway: Any, out: Output, workers: int, args: argparse.Namespace, config: Any) -> int:
    """N processes on one port (SO_REUSEPORT: the kernel spreads connections). Each builds
    its own gateway after the fork (no event loop or connection crosses a fork)."""
    from ..gateway import build

    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 0
            try:
                _run(build(config, host=args.host, port=args.port), out, reuse_port=True)
            except BaseException:  # noqa: BLE001 - a child must never return into the parent's code
                code = 1
            os._exit(code)
        children.append(pid)

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    status = 0
    for child in children:
        _, code = os.waitpid(child, 0)
        status = status or (os.waitstatus_to_exitcode(code) if code else 0)
    return 0 if status in (0, -signal.SIGTERM) else 1
