"""The pure policies both transports carry out: proxy choice with NO_PROXY matching
(core/proxy.py) and redirect following (core/redirect.py)."""

from __future__ import annotations

import pytest

from human.core.proxy import UNSET, mask_proxy_url, proxy_rules
from human.core.redirect import follow
from human.core.secret import scrub
from human.errors import ConfigError, RedirectError

SECRET = frozenset({"authorization", "api-key", "cookie", "proxy-authorization", "x-custom-token"})


def chosen(env: dict[str, str], url: str, configured: object = UNSET) -> str | None:
    from human.transport.base import endpoint

    end = endpoint(url)
    proxy = proxy_rules(configured, env).choose(end.scheme, end.host, end.port)
    return None if proxy is None else f"{proxy.host}:{proxy.port}"


def test_https_proxy_for_https_and_http_proxy_for_http() -> None:
    env = {"HTTPS_PROXY": "http://s:1", "HTTP_PROXY": "http://p:2"}
    assert chosen(env, "https://api.example.com/v1") == "s:1"
    assert chosen(env, "http://api.example.com/v1") == "p:2"


def test_lower_case_wins_and_all_proxy_is_the_fallback() -> None:
    assert chosen({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"}, "https://a.b/") == "low:1"
    assert chosen({"ALL_PROXY": "http://all:3"}, "https://a.b/") == "all:3"
    assert chosen({"all_proxy": "all:4"}, "http://a.b/") == "all:4"  # scheme-less, as curl allows


def test_upper_case_http_proxy_is_ignored_under_cgi() -> None:
    assert chosen({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"}, "http://a.b/") is None


@pytest.mark.parametrize("no_proxy, url, bypassed", [
    ("*", "https://api.openai.com/v1", True),
    ("example.com", "https://api.example.com/v1", True),
    ("example.com", "https://example.com/v1", True),
    (".example.com", "https://api.example.com/v1", True),
    ("*.example.com", "https://api.example.com/v1", True),
    ("example.com", "https://notexample.com/v1", False),
    ("EXAMPLE.com", "https://API.example.COM/v1", True),
    ("example.com:8443", "https://example.com:8443/v1", True),
    ("example.com:8443", "https://example.com/v1", False),
    ("127.0.0.1", "http://127.0.0.1:8000/v1", True),
    ("10.0.0.0/8", "http://10.1.2.3/v1", True),
    ("10.0.0.0/8", "http://11.1.2.3/v1", False),
    ("::1", "http://[::1]:8000/v1", True),
    ("[::1]:8000", "http://[::1]:8000/v1", True),
    ("localhost, other.org", "http://localhost:1234/v1", True),
    ("a.org b.org", "https://b.org/v1", True),
    ("", "https://b.org/v1", False),
])
def test_no_proxy_matching(no_proxy: str, url: str, bypassed: bool) -> None:
    env = {"HTTPS_PROXY": "http://s:1", "HTTP_PROXY": "http://s:1", "NO_PROXY": no_proxy}
    assert (chosen(env, url) is None) is bypassed


def test_config_proxy_wins_over_the_environment_and_null_turns_it_off() -> None:
    env = {"HTTPS_PROXY": "http://env:1"}
    assert chosen(env, "https://a.b/", "http://cfg:2") == "cfg:2"
    assert chosen(env, "https://a.b/", None) is None


@pytest.mark.parametrize("url", ["socks5://p:1080", "https://p:443", "http://:8080"])
def test_unsupported_proxies_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        proxy_rules(url, {})


def test_proxy_credentials_are_masked_everywhere() -> None:
    rules = proxy_rules("http://alice:s3cret-pw@proxy.corp:3128", {})
    assert rules.https is not None and rules.https.authorization is not None
    assert "s3cret" not in repr(rules) and "s3cret" not in rules.https.shown
    assert rules.https.authorization.reveal().startswith("Basic ")
    assert mask_proxy_url("http://alice:pw@h:1/x") == "http://****:****@h:1/x"
    assert "pw@" not in scrub("failed via http://alice:pw@h:1")


def follow_(status: int, location: str | None, method: str = "POST", url: str = "https://api.x.com/v1/chat/completions",
            hops: int = 0) -> tuple[str, str, dict[str, str], bool]:
    headers = {"Authorization": "Bearer k", "api-key": "k", "X-Custom-Token": "t", "Content-Type": "application/json"}
    return follow(method, url, status, location, headers, hops=hops, secret_headers=SECRET)


@pytest.mark.parametrize("status", [307, 308])
def test_307_308_same_origin_keep_method_body_and_credentials(status: int) -> None:
    method, url, headers, keep_body = follow_(status, "/v2/chat/completions")
    assert (method, url, keep_body) == ("POST", "https://api.x.com/v2/chat/completions", True)
    assert headers["Authorization"] == "Bearer k" and headers["api-key"] == "k"


@pytest.mark.parametrize("location", ["https://other.com/v1/chat/completions", "https://api.x.com:8443/v1/x",
                                      "https://sub.api.x.com/v1/x"])
def test_any_cross_origin_hop_drops_every_credential_header(location: str) -> None:
    _, _, headers, keep_body = follow_(307, location)
    assert keep_body
    assert set(headers) == {"Content-Type"}


@pytest.mark.parametrize("status", [301, 302, 303])
def test_301_302_303_on_post_are_not_turned_into_get(status: int) -> None:
    with pytest.raises(RedirectError) as caught:
        follow_(status, "https://api.x.com/v1/v1/chat/completions")
    assert caught.value.location == "https://api.x.com/v1/v1/chat/completions"
    assert "/v1" in str(caught.value) and not caught.value.retryable


def test_http_to_https_hint() -> None:
    with pytest.raises(RedirectError) as caught:
        follow_(301, "https://api.x.com/v1/chat/completions", url="http://api.x.com/v1/chat/completions")
    assert "https" in str(caught.value)


def test_get_follows_301_as_get() -> None:
    assert follow_(301, "/v1/models/", method="GET", url="https://api.x.com/v1/models")[:2] == (
        "GET", "https://api.x.com/v1/models/")


@pytest.mark.parametrize("location, words", [
    (None, "without a Location"),
    ("", "without a Location"),
    ("ftp://x/y", "not an http"),
    ("http://api.x.com/v1/chat/completions", "https to plain http"),
])
def test_refused_redirects_say_why(location: str | None, words: str) -> None:
    with pytest.raises(RedirectError) as caught:
        follow_(307, location)
    assert words in str(caught.value)


def test_the_redirect_limit() -> None:
    with pytest.raises(RedirectError) as caught:
        follow_(307, "/again", hops=5)
    assert "more than 5" in str(caught.value)
