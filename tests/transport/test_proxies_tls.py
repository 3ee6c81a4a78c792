"""Proxies and certificates (issue 10, classes 4 and 7): HTTP(S)_PROXY / ALL_PROXY /
NO_PROXY and the "proxy" key honoured by both clients, CONNECT tunnelling for https
through a recording proxy on 127.0.0.1, a self-signed CA made at test time, and every
TLS failure a typed, non-retried error."""

from __future__ import annotations

import pytest

import human
from human.errors import APIConnectionError, ConfigError, TLSError
from tests.client.conftest import CANARY
from tests.fakes.proxy import RecordingProxy
from tests.transport.conftest import chain_text


def test_http_proxy_from_the_environment_carries_plain_http(driver, fake, proxy, config_at, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    fake.completion("via proxy")
    handle = driver.client(config_at(fake.url_v1))
    assert handle.chat("hi").content == "via proxy"
    seen = proxy.seen[0]
    assert seen.method == "POST" and seen.target == fake.url_v1 + "/chat/completions"  # absolute form


@pytest.mark.parametrize("variable", ["https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"])
def test_https_goes_through_a_connect_tunnel(driver, tls_fake, proxy, certificates, config_at, monkeypatch,
                                             variable):
    monkeypatch.setenv(variable, proxy.url)
    tls_fake.completion("tunnelled")
    tls_fake.stream_text("tunnelled stream")
    handle = driver.client(config_at(tls_fake.url + "/v1", {"ca_bundle": str(certificates.ca)}))
    assert handle.chat("hi").content == "tunnelled"
    assert handle.stream("hi").content == "tunnelled stream"
    assert proxy.seen[0].method == "CONNECT" and proxy.seen[0].target == f"127.0.0.1:{tls_fake.port}"
    assert "authorization" not in proxy.seen[0].headers  # the key stays inside the tunnel
    assert tls_fake.last.headers["Authorization"] == f"Bearer {CANARY}"


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "127.0.0.0/8", "localhost,127.0.0.1", "127.0.0.1:{port}"])
def test_no_proxy_bypasses(driver, fake, proxy, config_at, monkeypatch, no_proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy.format(port=fake.port))
    fake.completion("direct")
    handle = driver.client(config_at(fake.url_v1))
    assert handle.chat("hi").content == "direct"
    assert proxy.seen == []


def test_the_proxy_key_wins_and_null_turns_the_environment_off(driver, fake, proxy, config_at, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    fake.completion("configured")
    fake.completion("direct")
    assert driver.client(config_at(fake.url_v1, {"proxy": proxy.url})).chat("hi").content == "configured"
    assert len(proxy.seen) == 1
    assert driver.client(config_at(fake.url_v1, proxy=None)).chat("hi").content == "direct"
    assert len(proxy.seen) == 1


def test_proxy_credentials_are_sent_and_never_shown(driver, fake, config_at):
    with RecordingProxy(require_auth="alice:pa55-word") as proxy:
        fake.completion("authorised")
        url = proxy.url.replace("http://", "http://alice:pa55-word@")
        handle = driver.client(config_at(fake.url_v1, {"proxy": url}))
        assert handle.chat("hi").content == "authorised"
        assert proxy.seen[0].headers["proxy-authorization"].startswith("Basic ")
        target = handle.client.target()
        assert "pa55" not in repr(target) and "pa55" not in repr(target.network)


def test_a_proxy_that_wants_credentials_is_a_typed_error(driver, tls_fake, certificates, config_at):
    with RecordingProxy(require_auth="alice:right") as proxy:
        url = proxy.url.replace("http://", "http://alice:wrong-pw@")
        handle = driver.client(config_at(tls_fake.url + "/v1", {"proxy": url, "ca_bundle": str(certificates.ca)},
                                         reliability={"provider_retries": 2}))
        with pytest.raises(APIConnectionError, match="407") as caught:
            handle.chat("hi")
        assert not caught.value.retryable and len(proxy.seen) == 1
        assert "wrong-pw" not in chain_text(caught.value)


def test_a_proxy_that_refuses_the_tunnel_or_is_down(driver, tls_fake, certificates, config_at):
    with RecordingProxy(refuse=True) as proxy:
        handle = driver.client(config_at(tls_fake.url + "/v1", {"proxy": proxy.url,
                                                               "ca_bundle": str(certificates.ca)}))
        with pytest.raises(APIConnectionError, match="refused to open a tunnel"):
            handle.chat("hi")
    handle = driver.client(config_at(tls_fake.url + "/v1", {"proxy": "http://127.0.0.1:9"}))
    with pytest.raises(APIConnectionError, match="proxy"):
        handle.chat("hi")


def test_an_unsupported_proxy_is_a_config_error(driver, fake, config_at):
    with pytest.raises(ConfigError, match="only http://"):
        driver.client(config_at(fake.url_v1, {"proxy": "socks5://127.0.0.1:1080"})).chat("hi")


# ---- TLS ---------------------------------------------------------------------------------


def test_a_self_signed_certificate_is_a_typed_error_not_retried(driver, tls_fake, config_at):
    tls_fake.completion("never")
    handle = driver.client(config_at(tls_fake.url + "/v1", reliability={"provider_retries": 2}))
    for call in (handle.chat, handle.stream):
        with pytest.raises(TLSError, match="ca_bundle") as caught:
            call("hi")
        assert not caught.value.retryable
        assert CANARY not in chain_text(caught.value)
    assert tls_fake.requests == []


def test_ca_bundle_in_the_config_or_ssl_cert_file_trusts_the_ca(driver, tls_fake, certificates, config_at,
                                                               monkeypatch):
    tls_fake.completion("trusted")
    tls_fake.completion("trusted by env")
    tls_fake.completion("trusted top level")
    assert driver.client(config_at(tls_fake.url + "/v1", {"ca_bundle": str(certificates.ca)})).chat(
        "hi").content == "trusted"
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca))
    assert driver.client(config_at(tls_fake.url + "/v1")).chat("hi").content == "trusted by env"
    monkeypatch.delenv("SSL_CERT_FILE")
    assert driver.client(config_at(tls_fake.url + "/v1", ca_bundle=str(certificates.ca))).chat(
        "hi").content == "trusted top level"


def test_a_missing_ca_bundle_is_a_config_error(driver, tls_fake, config_at, tmp_path):
    with pytest.raises(ConfigError, match="not a file"):
        driver.client(config_at(tls_fake.url + "/v1", {"ca_bundle": str(tmp_path / "nope.pem")})).chat("hi")


def test_https_to_a_plain_port_is_a_typed_error(driver, fake, config_at):
    fake.completion("never")
    handle = driver.client(config_at(fake.url.replace("http://", "https://") + "/v1",
                                     reliability={"provider_retries": 2}))
    with pytest.raises(TLSError, match="does not speak TLS") as caught:
        handle.chat("hi")
    assert not caught.value.retryable


def test_plain_http_to_a_tls_port_is_a_typed_error(driver, tls_fake, config_at):
    handle = driver.client(config_at(tls_fake.url.replace("https://", "http://") + "/v1"))
    with pytest.raises(APIConnectionError, match="https://"):
        handle.chat("hi")


def test_doctor_shows_the_proxy_and_the_ca_in_use(tls_fake, certificates, config_at, tmp_path):
    from human.doctor.decide import _network_note

    with RecordingProxy() as proxy:
        url = proxy.url.replace("http://", "http://bob:hunter22@")
        config = config_at(tls_fake.url + "/v1", {"proxy": url, "ca_bundle": str(certificates.ca)})
        target = human.resolve(config)
        note = _network_note(target)
    assert "via proxy http://****:****@127.0.0.1" in note and "providers['p'].proxy" in note
    assert str(certificates.ca) in note and "hunter22" not in note
