"""Whether, and how, to follow a redirect. Pure: both transports ask `follow()` and do
what it returns; neither library's own redirect handling is ever used.

    307 / 308                      followed with the same method and body (RFC 9110 §15.4.8-9)
    301 / 302 / 303 on GET         followed as GET
    301 / 302 / 303 on POST        not followed: turning the POST into a GET (what browsers
                                   and aiohttp do) would send a bodiless request that can
                                   only fail confusingly. `RedirectError` names the Location;
                                   usually base_url lacks /v1 or says http for https.
    another origin                 followed, but every credential header is dropped first
                                   (Authorization, api-key, cookies, Proxy-Authorization and
                                   any header the provider marks as secret): a key is only
                                   ever sent to the host it was configured for.
    https -> http                  refused: the request would travel unencrypted
    more than MAX_REDIRECTS hops   refused, with the chain
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

from ..errors import RedirectError

__all__ = ["MAX_REDIRECTS", "REDIRECT_STATUSES", "follow", "origin"]

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def follow(
    method: str,
    url: str,
    status: int,
    location: str | None,
    headers: Mapping[str, str],
    *,
    hops: int,
    secret_headers: frozenset[str],
    max_redirects: int = MAX_REDIRECTS,
) -> tuple[str, str, dict[str, str], bool]:
    """(method, url, headers, keep_body) for the next hop, or `RedirectError`."""
    shown = _shown(url)
    if not location or not location.strip():
        raise RedirectError(f"{shown} answered {status} (a redirect) without a Location header", status=status,
                            location=None)
    target = urljoin(url, location.strip())
    new = urlsplit(target)
    if new.scheme not in ("http", "https") or not new.hostname:
        raise RedirectError(f"{shown} redirected to {_shown(target)!r}, which is not an http(s) URL", status=status,
                            location=target)
    if hops >= max_redirects:
        raise RedirectError(f"{shown} redirected more than {max_redirects} times (last to {_shown(target)})",
                            status=status, location=target)
    before = origin(url)
    after = origin(target)
    if before[0] == "https" and after[0] == "http":
        raise RedirectError(
            f"{shown} redirected to {_shown(target)}: refusing to move from https to plain http "
            "(the request would travel unencrypted)", status=status, location=target)
    if status in (301, 302, 303):
        if method in ("GET", "HEAD"):
            method_next = method
        else:
            raise RedirectError(
                f"{shown} answered {status} to a {method}, pointing at {_shown(target)}; a {method} is not "
                f"re-sent as a GET: {_hint(url, target)}", status=status, location=target)
    else:
        method_next = method
    kept = dict(headers)
    if after != before:
        for name in list(kept):
            if name.lower() in secret_headers or _looks_secret(name):
                del kept[name]
    return method_next, target, kept, method_next == method and status in (307, 308)


def _hint(old: str, new: str) -> str:
    a, b = urlsplit(old), urlsplit(new)
    if a.scheme == "http" and b.scheme == "https" and a.path == b.path:
        return "base_url says http:// where the server wants https://; fix base_url in the config"
    if b.path.rstrip("/").endswith("/chat/completions") and b.path != a.path:
        base = b.path.rstrip("/")[: -len("/chat/completions")]
        return (f"set base_url to {b.scheme}://{b.netloc}{base}, where the server points (a base_url without "
                "/v1, or with http:// for https://, is the usual cause)")
    return "check base_url: it usually lacks /v1 or says http:// for https://"


def _looks_secret(name: str) -> bool:
    lower = name.lower()
    return any(word in lower for word in ("auth", "key", "token", "secret", "cookie"))


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
