"""Checks of names and URLs that both loading and resolving need: is a base URL risky,
is a host loopback, can a provider name ever resolve. Below both `load` and `resolve`,
so neither has to import the other."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ..errors import UnknownProviderError
from .registry import lookup, suggest

__all__ = ["check_base_url", "check_provider_name", "is_loopback", "unknown_provider"]


def check_base_url(url: str) -> str | None:
    """A warning for a base URL that is allowed but risky, or None."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return None
    if parts.scheme == "http":
        return f"{url!r} is plain http to a non-loopback host: the key would travel unencrypted; use https"
    return f"{url!r} is not an http(s) URL"


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_provider_name(name: str, data: Mapping[str, Any], *, where: str) -> None:
    """Raise UnknownProviderError if `name` could never resolve."""
    if name == "compatible" or name.startswith("custom:") or lookup(name) is not None:
        return
    if any(entry.get("name") == name and entry.get("base_url") for entry in data.get("providers", ())):
        return
    unknown_provider(name, data, where)


def unknown_provider(name: str, data: Mapping[str, Any], where: str) -> NoReturn:
    own = [entry.get("name") for entry in data.get("providers", ()) if entry.get("base_url")]
    options = suggest(name)
    hint = f"; did you mean {', '.join(repr(o) for o in options)}?" if options else ""
    raise UnknownProviderError(
        f"{where}: unknown provider {name!r}{hint} "
        "(`human providers` lists them; for any other server use \"compatible\" with a "
        "base_url, or \"custom:https://…/v1\")"
        + (f"; your config defines {', '.join(map(repr, own))}" if own else ""),
        name=name,
        suggestions=options,
    )
