"""The fake server itself, driven by plain `http.client` and raw sockets, and the
autouse fixtures (clean environment, network guard) that every test relies on."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeServer

_opened: list[http.client.HTTPConnection] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Close every client connection a test opened (filterwarnings = error would turn a
    leaked socket into a failure somewhere else)."""
    yield
    while _opened:
        _opened.pop().close()


def connect(fake: FakeServer, timeout: float = 5.0) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=timeout)
    _opened.append(conn)
    return conn


def post(fake: FakeServer, path: str = "/v1/chat/completions", body: object = None,
         timeout: float = 5.0) -> http.client.HTTPResponse:
    conn = connect(fake, timeout)
    conn.request("POST", path, body=json.dumps(body or {"model": "m"}), headers={"Content-Type": "application/json"})
    return conn.getresponse()


def raw(fake: FakeServer, request: bytes, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", fake.port), timeout=timeout)
    sock.sendall(request)
    return sock


def dechunk(data: bytes) -> bytes:
    body = bytearray()
    while True:
        line, _, data = data.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            return bytes(body)
        body += data[:size]
        data = data[size + 2 :]


# ---- whole replies ----------------------------------------------------------------------------


def test_reply_sends_status_headers_and_json_body(fake):
    fake.reply(json={"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "2"})
    response = post(fake)
    assert response.status == 429
    assert response.getheader("Retry-After") == "2"
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(response.read()) == {"error": {"message": "slow down"}}


def test_reply_body_bytes_override_json_with_content_length_framing(fake):
    fake.reply(json={"ignored": True}, body=b"<html>bad gateway</html>", status=502, content_type="text/html")
    response = post(fake)
    assert (response.status, response.getheader("Content-Type")) == (502, "text/html")
    assert response.getheader("Content-Length") == "24" and response.read() == b"<html>bad gateway</html>"


def test_completion_builds_a_chat_completion(fake):
    fake.completion("hello", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    reasoning_content="thought")
    data = json.loads(post(fake).read())
    assert data["object"] == "chat.completion" and data["model"] == "fake-model"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "hello", "reasoning_content": "thought"}
    assert data["choices"][0]["finish_reason"] == "stop" and data["usage"]["total_tokens"] == 2


def test_respond_computes_the_reply_from_the_request(fake):
    def answer(request):
        model = request.json["model"]
        if model == "bad":
            return 400, {"error": {"message": "no"}}
        if model == "streamed":
            return [{"n": 1}]
        return {"echo": model}

    fake.respond(answer).as_default()
    assert json.loads(post(fake, body={"model": "m1"}).read()) == {"echo": "m1"}
    assert post(fake, body={"model": "bad"}).status == 400
    streamed = post(fake, body={"model": "streamed"})
    assert streamed.getheader("Content-Type") == "text/event-stream"
    assert streamed.read() == b'data: {"n": 1}\n\ndata: [DONE]\n\n'


def test_urls_point_at_the_bound_loopback_port(fake):
    assert fake.url == f"http://127.0.0.1:{fake.port}" and fake.url_v1 == fake.url + "/v1"


def test_unscripted_request_gets_a_loud_599(fake):
    response = post(fake)
    assert response.status == 599
    assert json.loads(response.read()) == {"error": {"message": "fake server: no reply scripted"}}


def test_replies_are_consumed_in_order_then_the_default_applies(fake):
    fake.reply(json={"n": 1}).reply(json={"n": 2}, status=201)
    fake.reply(json={"n": "always"}, status=503).as_default()
    assert [(r.status, json.loads(r.read())["n"]) for r in (post(fake), post(fake), post(fake), post(fake))] == [
        (200, 1), (201, 2), (503, "always"), (503, "always")]
    assert fake.pending == 0


def test_reset_clears_script_records_and_default(fake):
    fake.reply(json={}).reply(json={}).as_default()
    post(fake).read()
    fake.reset()
    assert (fake.requests, fake.pending, fake.default, fake.connections) == ([], 0, None, 0)
    assert post(fake).status == 599


def test_get_is_answered_from_the_same_queue(fake):
    fake.reply(json={"object": "list", "data": [{"id": "m1"}]})
    conn = connect(fake)
    conn.request("GET", "/v1/models")
    assert json.loads(conn.getresponse().read())["data"] == [{"id": "m1"}]
    assert (fake.last.method, fake.last.path, fake.last.body, fake.last.json) == ("GET", "/v1/models", b"", None)


def test_reply_delay_holds_back_the_status_line(fake):
    fake.reply(json={}, delay=0.2)
    started = time.monotonic()
    assert post(fake).status == 200
    assert time.monotonic() - started >= 0.18


# ---- recording --------------------------------------------------------------------------------


def test_request_path_query_headers_and_json_are_recorded(fake):
    fake.reply(json={})
    conn = connect(fake)
    conn.putrequest("POST", "/v1/chat/completions?api-version=2024-10-21&empty=")
    for name, value in [("Authorization", "Bearer sk-x"), ("Content-Type", "application/json"),
                        ("X-Dup", "a"), ("X-Dup", "b"), ("Content-Length", "15")]:
        conn.putheader(name, value)
    conn.endheaders(b'{"model": "m1"}')
    conn.getresponse().read()
    seen = fake.last
    assert seen is fake.requests[-1] and len(fake.requests) == 1
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.query == {"api-version": "2024-10-21", "empty": ""}
    assert seen.headers["authorization"] == "Bearer sk-x" and "AUTHORIZATION" in seen.headers
    assert seen.headers.get("x-dup") == "a" and seen.headers.get_all("X-Dup") == ["a", "b"]
    assert ("Authorization", "Bearer sk-x") in seen.headers.raw
    assert (seen.body, seen.json) == (b'{"model": "m1"}', {"model": "m1"})


def test_body_that_is_not_json_is_kept_as_bytes(fake):
    fake.reply(json={})
    conn = connect(fake)
    conn.request("POST", "/upload", body=b"\xff\x00 not json")
    conn.getresponse().read()
    assert (fake.last.body, fake.last.json) == (b"\xff\x00 not json", None)


def test_chunked_request_body_is_read_and_the_connection_stays_usable(fake):
    fake.reply(json={"n": 1}).reply(json={"n": 2})
    conn = connect(fake)
    conn.request("POST", "/v1/chat/completions", body=iter([b'{"model"', b': "m"}']), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked"})
    assert json.loads(conn.getresponse().read()) == {"n": 1}
    conn.request("POST", "/v1/chat/completions", body=b"{}")
    assert json.loads(conn.getresponse().read()) == {"n": 2}
    assert fake.requests[0].json == {"model": "m"} and fake.connections == 1


def test_expect_100_continue_gets_an_interim_response_before_the_body(fake):
    fake.reply(json={"ok": True})
    sock = raw(fake, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"Expect: 100-continue\r\n\r\n")
    with sock:
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"{}")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200 and json.loads(response.read()) == {"ok": True}
    assert fake.last.json == {}


# ---- keep-alive -------------------------------------------------------------------------------


def test_two_requests_on_one_connection_count_one_connection(fake):
    fake.completion("one").completion("two")
    conn = connect(fake)
    for _ in range(2):
        conn.request("POST", "/v1/chat/completions", body=b"{}")
        conn.getresponse().read()
    assert fake.connections == 1 and len(fake.requests) == 2


def test_separate_connections_are_counted(fake):
    fake.reply(json={}).reply(json={})
    post(fake).read()
    post(fake).read()
    assert fake.connections == 2


# ---- streams ----------------------------------------------------------------------------------


def test_stream_sends_sse_events_then_done(fake):
    fake.stream([{"a": 1}, "data: raw\n\n", b": comment\n\n"])
    response = post(fake)
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b'data: {"a": 1}\n\ndata: raw\n\n: comment\n\ndata: [DONE]\n\n'


def test_stream_with_chunk_bytes_arrives_in_several_reads(fake):
    fake.stream([{"content": "x" * 20}, {"content": "y" * 20}], chunk_bytes=7, delay=0.01)
    reads = []
    with raw(fake, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") as sock:
        received = b""
        while not received.endswith(b"0\r\n\r\n"):
            reads.append(sock.recv(65536))
            assert reads[-1], "connection closed before the terminating chunk"
            received += reads[-1]
    head, _, body = received.partition(b"\r\n\r\n")
    payload = dechunk(body)
    assert payload == b'data: {"content": "' + b"x" * 20 + b'"}\n\ndata: {"content": "' + b"y" * 20 + b'"}\n\n' + (
        b"data: [DONE]\n\n")
    assert len(reads) > 5
    assert all(len(size) <= 1 for size in body.split(b"\r\n")[::2])  # every chunk size is "7" or less: one digit


def test_stream_text_uses_the_openai_chunk_shape(fake):
    fake.stream_text("Hello, world", pieces=3)
    events = [line[6:] for line in post(fake).read().decode().split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello, world"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and len(chunks) == 5


def test_drop_after_with_fin_leaves_a_chunked_body_incomplete(fake):
    fake.stream([{"n": 1}, {"n": 2}, {"n": 3}], drop_after=2, drop_with="fin")
    response = post(fake)
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_drop_after_resets_the_connection_by_default(fake):
    fake.stream([{"n": 1}, {"n": 2}, {"n": 3}], drop_after=2)
    response = post(fake)
    # RST: the bytes already sent can still be read, then the reset is reported.
    assert response.read1(65536) == b'data: {"n": 1}\n\n'
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        while response.read1(65536):
            pass


def test_drop_after_beyond_the_last_write_still_never_ends_cleanly(fake):
    fake.stream([{"n": 1}], drop_after=10, drop_with="fin")
    with pytest.raises(http.client.IncompleteRead):
        post(fake).read()


def test_unchunked_stream_closes_the_connection_to_end(fake):
    fake.stream([{"n": 1}], chunked=False)
    response = post(fake)
    assert response.getheader("Connection") == "close" and response.getheader("Content-Length") is None
    assert response.read() == b'data: {"n": 1}\n\ndata: [DONE]\n\n'


def test_replay_sends_a_corpus_file_verbatim_with_its_content_type(fake, tmp_path: Path):
    recorded = tmp_path / "capture.sse"
    recorded.write_bytes(b"data: {\"x\": 1}\r\n\r\ndata: [DONE]\r\n\r\n")
    fake.replay(recorded, chunk_bytes=4, status=200)
    response = post(fake)
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.read() == recorded.read_bytes()


# ---- misbehaviour -----------------------------------------------------------------------------


def test_hang_sends_nothing_then_closes_within_the_time(fake):
    fake.hang(0.3)
    started = time.monotonic()
    with pytest.raises(http.client.RemoteDisconnected):
        post(fake, timeout=5)
    assert 0.25 <= time.monotonic() - started < 2


def test_hang_outlasts_a_short_client_timeout(fake):
    fake.hang(1)
    with pytest.raises(TimeoutError):
        post(fake, timeout=0.1)


def test_stall_after_headers_sends_the_events_then_goes_silent(fake):
    fake.stall_after_headers(1, events=[{"n": 1}])
    response = post(fake, timeout=0.2)
    assert response.status == 200
    assert response.read1(65536) == b'data: {"n": 1}\n\n'
    with pytest.raises(TimeoutError):
        response.read1(65536)


def test_trickle_sends_one_byte_per_interval(fake):
    fake.trickle(b'{"a":1}', interval=0.02)
    started = time.monotonic()
    response = post(fake)
    assert response.getheader("Content-Length") == "7" and response.read() == b'{"a":1}'
    assert time.monotonic() - started >= 0.12


def test_reset_connection_resets_before_any_response_byte(fake):
    fake.reset_connection()
    with pytest.raises(ConnectionResetError):
        post(fake)
    assert fake.last.json == {"model": "m"}


def test_close_after_headers_ends_the_body_early(fake):
    fake.close_after_headers()
    response = post(fake)
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()


def test_stop_interrupts_a_hang_and_closes_idle_connections():
    server = FakeServer().start()
    server.hang(30)
    idle = raw(server, b"")  # an open connection that never sends a request
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            post(server, timeout=10)
        except BaseException as exc:  # noqa: B036 - recorded for the assertion below
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    caller.join(5)
    assert time.monotonic() - started < 2 and not caller.is_alive()
    assert isinstance(outcome[0], http.client.RemoteDisconnected)
    idle.settimeout(2)
    assert idle.recv(1) == b""
    idle.close()
    server.stop()  # a second stop is harmless


# ---- the autouse fixtures ---------------------------------------------------------------------


def test_network_guard_refuses_non_loopback_before_the_real_connect():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)  # a real connect would return EINPROGRESS, never refuse at once
    with sock:
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError, match="network guard"):
            sock.connect(("10.255.255.1", 9))
        with pytest.raises(ConnectionRefusedError, match="network guard"):
            sock.connect_ex(("10.255.255.1", 9))
        # A real connect attempt binds an ephemeral port; the socket is still unbound.
        assert sock.getsockname() == ("0.0.0.0", 0)
    with pytest.raises(ConnectionRefusedError, match="network guard"):
        socket.create_connection(("10.255.255.1", 9), timeout=5)
    with pytest.raises(ConnectionRefusedError, match="network guard"):
        socket.getaddrinfo("api.openai.com", 443)  # no DNS query either
    assert time.monotonic() - started < 0.5


def test_network_guard_allows_loopback_and_unix_sockets(fake, tmp_path: Path):
    for host in ("127.0.0.1", "localhost"):
        socket.create_connection((host, fake.port), timeout=5).close()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener:
        listener.bind(str(tmp_path / "s"))
        listener.listen()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(tmp_path / "s"))


def test_clean_env_gives_an_empty_home_and_working_directory(clean_env: Path):
    assert os.environ["HOME"] == str(clean_env) and not any(clean_env.iterdir())
    assert Path.cwd() != clean_env and not any(Path.cwd().iterdir())
    leaked = [name for name in os.environ if name.startswith(("HUMAN_", "HU_")) or name.endswith("_API_KEY")
              or name.lower() in {"openai_base_url", "http_proxy", "https_proxy", "all_proxy", "no_proxy"}]
    assert leaked == []
