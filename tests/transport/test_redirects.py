"""Redirects (issue 10, class 5), decided once in core/redirect.py and carried out by
both transports: 307/308 keep the POST and its body; a cross-origin hop drops every
credential header; 301/302/303 on a POST are a clear error naming the Location."""

from __future__ import annotations

import pytest

from human.errors import RedirectError
from tests.client.conftest import CANARY
from tests.fakes import hostile
from tests.transport.conftest import chain_text


@pytest.mark.parametrize("status", [307, 308])
def test_307_308_on_the_same_origin_resend_the_post_with_body_and_key(driver, fake, config_for, status):
    hostile.redirect(fake, status, "/v2/chat/completions")
    fake.completion("moved")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    response = handle.chat("hi")
    assert response.content == "moved" and response.attempt == 1
    first, second = fake.requests
    assert second.method == "POST" and second.path == "/v2/chat/completions"
    assert second.body == first.body and second.headers["Authorization"] == f"Bearer {CANARY}"


@pytest.mark.parametrize("status", [307, 308])
def test_a_cross_origin_hop_drops_every_credential_header(driver, fake, other, config_for, status):
    hostile.redirect(fake, status, other.url + "/v1/chat/completions")
    other.completion("elsewhere")
    handle = driver.client(config_for({"auth": "api-key", "headers": {"X-Tenant-Token": "tenant-secret",
                                                                     "X-Plain": "kept"}},
                                      reliability={"provider_retries": 0}))
    assert handle.chat("hi").content == "elsewhere"
    assert fake.last.headers["api-key"] == CANARY
    moved = other.last
    assert moved.method == "POST" and moved.json is not None
    for name in ("Authorization", "api-key", "X-Tenant-Token"):
        assert name not in moved.headers, name
    assert moved.headers["X-Plain"] == "kept"
    assert CANARY not in repr(moved.headers.raw)


@pytest.mark.parametrize("status", [301, 302, 303])
def test_301_302_303_on_a_post_are_an_error_naming_the_location(driver, fake, config_for, status):
    hostile.redirect(fake, status, "/v1/v1/chat/completions")
    handle = driver.client(config_for(reliability={"provider_retries": 2}))
    with pytest.raises(RedirectError) as caught:
        handle.chat("hi")
    assert caught.value.location == fake.url + "/v1/v1/chat/completions"
    assert caught.value.location in str(caught.value) and "base_url" in str(caught.value)
    assert len(fake.requests) == 1  # not retried, and never sent again as a GET


def test_a_redirect_answering_a_stream_follows_the_same_rules(driver, fake, config_for):
    hostile.redirect(fake, 308, "/v2/chat/completions")
    fake.stream_text("streamed after a move")
    hostile.redirect(fake, 302, "/elsewhere")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    assert handle.stream("hi").content == "streamed after a move"
    with pytest.raises(RedirectError):
        handle.stream("hi")


def test_models_follow_a_301_as_a_get(driver, fake, config_for):
    hostile.redirect(fake, 301, "/v1/models/")
    fake.reply(json={"data": [{"id": "m1"}]})
    handle = driver.client(config_for())
    assert handle.models() == [{"id": "m1"}]
    assert [r.method for r in fake.requests] == ["GET", "GET"]


def test_a_redirect_loop_stops_at_the_limit(driver, fake, config_for):
    for _ in range(6):
        hostile.redirect(fake, 307, "/v1/chat/completions")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    with pytest.raises(RedirectError, match="more than 5"):
        handle.chat("hi")
    assert len(fake.requests) == 6


def test_a_redirect_without_location_says_so(driver, fake, config_for):
    hostile.redirect(fake, 307, None)
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    with pytest.raises(RedirectError, match="without a Location") as caught:
        handle.chat("hi")
    assert CANARY not in chain_text(caught.value)


def test_https_to_http_is_refused(driver, tls_fake, fake, certificates, config_at):
    hostile.redirect(tls_fake, 307, fake.url + "/v1/chat/completions")
    handle = driver.client(config_at(tls_fake.url + "/v1", {"ca_bundle": str(certificates.ca)}))
    with pytest.raises(RedirectError, match="https to plain http"):
        handle.chat("hi")
    assert fake.requests == []


def test_a_location_echoing_the_key_is_scrubbed(driver, fake, config_for):
    hostile.redirect(fake, 302, f"/v1/chat/completions?key={CANARY}")
    handle = driver.client(config_for(reliability={"provider_retries": 0}))
    with pytest.raises(RedirectError) as caught:
        handle.chat("hi")
    assert CANARY not in chain_text(caught.value)
