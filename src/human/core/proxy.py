"""Which proxy (if any) a request goes through, and how a host is reached. Pure: the
environment arrives as a mapping from the config loader.

    "proxy" in the provider's entry     wins; null = no proxy at all (the environment is off)
    "proxy" at the top of the config    next; null likewise
    the environment                     HTTPS_PROXY for https URLs, HTTP_PROXY for http,
                                        ALL_PROXY for either; NO_PROXY lists the exceptions

Lower-case names win over upper-case ones, as in curl and Python's urllib. As in
urllib, an upper-case HTTP_PROXY is ignored when REQUEST_METHOD is set: under CGI it
can come from a request header ("httpoxy", CVE-2016-5385).

NO_PROXY entries, comma- or space-separated (curl's and Go's rules, which most tools
follow): `*` matches every host; `example.com` and `.example.com` match that domain
and every subdomain; `host:port` matches only that port; an IP address matches
itself and `10.0.0.0/8`-style CIDR blocks match their range; `[::1]` may be bracketed.
There is no implicit exception for localhost: add `localhost,127.0.0.1` to NO_PROXY
if a local server must not go through the proxy (as curl requires too).

Only http:// proxies are supported (https:// targets are tunnelled through them with
CONNECT, so TLS still runs end to end). Credentials in a proxy URL become a
`Proxy-Authorization: Basic` header; the URL is only ever shown masked.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError
from .secret import Secret

__all__ = ["Network", "Proxy", "ProxyRules", "mask_proxy_url", "proxy_rules"]

UNSET: Any = object()  # "proxy" not in the config: the environment decides


@dataclass(frozen=True, slots=True)
class Proxy:
    """An http:// proxy: where it listens, and the Basic credentials it wants, if any."""

    host: str
    port: int
    authorization: Secret | None = None
    shown: str = ""  # the URL with any password masked

    def __repr__(self) -> str:
        return f"Proxy({self.shown!r})"


@dataclass(frozen=True, slots=True)
class ProxyRules:
    """The proxies that may apply and the exceptions; `choose(scheme, host, port)`."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()
    source: str = "none"  # for `doctor`: "config", "providers[...]", "env HTTPS_PROXY", "off"

    def choose(self, scheme: str, host: str, port: int) -> Proxy | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or _bypassed(host, port, self.no_proxy):
            return None
        return proxy


@dataclass(frozen=True, slots=True)
class Network:
    """How a target's host is reached: proxy rules, the CA bundle for TLS (None = the
    system's store), and the request headers that are credentials (dropped on a
    redirect to another origin)."""

    proxy: ProxyRules = field(default_factory=ProxyRules)
    ca_bundle: str | None = None
    ca_source: str = "system"
    secret_headers: frozenset[str] = frozenset({"authorization", "api-key", "proxy-authorization", "cookie"})


def proxy_rules(configured: Any, env: Mapping[str, str], *, where: str = "proxy") -> ProxyRules:
    """The rules for one provider: `configured` is its "proxy" value (UNSET when the
    config says nothing, None to switch proxies off, else a URL)."""
    no_proxy = _no_proxy_list(_env(env, "no_proxy") or "")
    if configured is None:
        return ProxyRules(source="off (\"proxy\": null)")
    if configured is not UNSET:
        proxy = parse_proxy(str(configured), where)
        return ProxyRules(http=proxy, https=proxy, no_proxy=no_proxy, source=where)
    cgi = "REQUEST_METHOD" in env
    http_value = env.get("http_proxy") or ("" if cgi else env.get("HTTP_PROXY", ""))
    https_value = _env(env, "https_proxy")
    all_value = _env(env, "all_proxy")
    http = parse_proxy(http_value, "env HTTP_PROXY") if http_value else None
    https = parse_proxy(https_value, "env HTTPS_PROXY") if https_value else None
    fallback = parse_proxy(all_value, "env ALL_PROXY") if all_value else None
    names = [name for name, value in (("HTTPS_PROXY", https_value), ("HTTP_PROXY", http_value),
                                      ("ALL_PROXY", all_value)) if value]
    return ProxyRules(http=http or fallback, https=https or fallback, no_proxy=no_proxy,
                      source="env " + "/".join(names) if names else "none")


def parse_proxy(url: str, where: str) -> Proxy:
    text = url.strip()
    if "://" not in text:
        text = "http://" + text  # curl and requests accept host:port
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    shown = mask_proxy_url(text)
    if scheme != "http":
        raise ConfigError(
            f"{where}: {shown!r} is a {scheme}:// proxy; only http:// proxies are supported "
            "(https:// targets still use TLS end to end, tunnelled with CONNECT)"
        )
    try:
        port = parts.port or 80
    except ValueError:
        raise ConfigError(f"{where}: {shown!r} has an invalid port") from None
    if not parts.hostname:
        raise ConfigError(f"{where}: {shown!r} names no host; write it as http://host:port")
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = Secret("Basic " + base64.b64encode(pair.encode()).decode(), where)
    return Proxy(parts.hostname, port, authorization, shown)


def mask_proxy_url(url: str) -> str:
    """The URL with its password (and user) replaced: credentials are secrets."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@", 0, rest.find("/") if "/" in rest else len(rest))
    if at < 0:
        return url
    return f"{scheme}{sep}****:****@{rest[at + 1:]}"


def _env(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or env.get(name.upper()) or "").strip()


def _no_proxy_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in value.replace(" ", ",").split(",") if part.strip())


def _bypassed(host: str, port: int, entries: tuple[str, ...]) -> bool:
    if not entries:
        return False
    host = host.lower().strip("[]").rstrip(".")
    address = _ip(host)
    for entry in entries:
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        name = name.strip("[]").rstrip(".")
        if address is not None:
            if "/" in name:
                try:
                    if address in ipaddress.ip_network(name, strict=False):
                        return True
                except ValueError:
                    continue
            elif _ip(name) == address:
                return True
            continue
        name = name.lstrip("*").lstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:8080
        close = entry.find("]")
        rest = entry[close + 1 :]
        if rest.startswith(":") and rest[1:].isdigit():
            return entry[: close + 1], int(rest[1:])
        return entry, None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        if port.isdigit():
            return name, int(port)
    return entry, None


def _ip(text: str) -> Any:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
