"""Finds OpenAI-compatible servers on this machine: the usual local servers on their
default ports. Used by `Client()` when nothing is configured (the zero-config start) and
by `human doctor`, which lists every server it finds.

    found = find_local(env)        # the first server that answers with a model list, or None
    found.base_url, found.models   # "http://127.0.0.1:11434/v1", ("qwen3:0.6b", ...)

Only 127.0.0.1 is ever asked, with GET /v1/models then GET /models: nothing leaves the
machine, and no cloud provider is ever chosen for the user. All ports are tried at once;
a closed port answers at once, so a scan of a machine with nothing running costs a few
milliseconds. `HUMAN_LOCAL_PORTS` ("11434,8080", or "none") replaces the default list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import ConfigError

__all__ = [
    "LOCAL_SERVERS", "Found", "LocalServer", "find_local", "knock", "no_server_error", "scan", "servers_from_env",
]

PORTS_VARIABLE = "HUMAN_LOCAL_PORTS"


@dataclass(frozen=True, slots=True)
class LocalServer:
    """A local server's usual port. `provider` is its registry row (when it has one)."""

    name: str
    port: int
    provider: str | None = None


# Default ports, from each server's documentation (the registry rows cite them).
LOCAL_SERVERS: tuple[LocalServer, ...] = (
    LocalServer("Ollama", 11434, "ollama"),
    LocalServer("LM Studio", 1234, "lmstudio"),
    LocalServer("llama.cpp", 8080, "llamacpp"),
    LocalServer("vLLM", 8000, "vllm"),
    LocalServer("sglang", 30000, "sglang"),
    LocalServer("LiteLLM", 4000),
    LocalServer("mlx", 8741, "mlx-local"),
)


@dataclass(frozen=True, slots=True)
class Found:
    """A port that answered. `models` is None when no models route answered 200."""

    name: str
    base_url: str
    models: tuple[str, ...] | None
    detail: str = ""
    provider: str | None = None

    @property
    def usable(self) -> bool:
        """It lists at least one model, so a chat can name one."""
        return bool(self.models)

    def announce(self, provider: str, model: str) -> str:
        """The one line that says what the zero-config start chose, and how to keep it."""
        import shlex

        keep = f"human config init --provider {shlex.quote(provider)} --model {shlex.quote(model)}"
        listed = "the first model it lists" if self.models and self.models[0] == model else "the configured model"
        return (f"no provider configured: using {self.name} at {self.base_url} with {model} ({listed}); "
                f"to keep it: {keep}")


def servers_from_env(env: Mapping[str, str], default: Sequence[LocalServer] | None = None,
                     ) -> tuple[LocalServer, ...]:
    """The ports to try: `HUMAN_LOCAL_PORTS` ("11434,8080"; "none" or "" for none) when
    set, else `default`. A port of the default list keeps its server's name."""
    raw = env.get(PORTS_VARIABLE)
    if raw is None:
        return tuple(LOCAL_SERVERS if default is None else default)
    if raw.strip().lower() in ("", "none", "0"):
        return ()
    known = {server.port: server for server in LOCAL_SERVERS}
    servers = []
    for item in raw.replace(" ", "").split(","):
        if not item:
            continue
        if not item.isdigit() or not 0 < int(item) < 65536:
            raise ConfigError(f"{PORTS_VARIABLE}={raw!r}: expected port numbers separated by commas, "
                              "e.g. 11434,8080, or none")
        port = int(item)
        servers.append(known.get(port) or LocalServer(f"port {port}", port))
    return tuple(servers)


def scan(servers: Sequence[LocalServer] = LOCAL_SERVERS, *, host: str = "127.0.0.1",
         connect_timeout: float = 0.3, read_timeout: float = 2.0) -> list[Found]:
    """Which of `servers` answer on `host`, in the order of `servers`. All ports are
    tried at once; a closed port costs nothing, a filtered one `connect_timeout`."""
    from concurrent.futures import ThreadPoolExecutor

    if not servers:
        return []
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        results = list(pool.map(lambda s: knock(s, host, connect_timeout, read_timeout), servers))
    return [found for found in results if found is not None]


def find_local(env: Mapping[str, str], servers: Sequence[LocalServer] | None = None) -> Found | None:
    """The first server (in the order of the port list) that answers with at least one
    model, or None. The zero-config start uses it with that server's first model."""
    chosen = servers_from_env(env) if servers is None else tuple(servers)
    return next((found for found in scan(chosen) if found.usable), None)


def no_server_error(servers: Sequence[LocalServer]) -> ConfigError:
    """Nothing configured and nothing found: the two ways to configure a provider."""
    if servers:
        tried = ", ".join(f"{server.name} :{server.port}" for server in servers)
        looked = f"no local server answered with a model list on 127.0.0.1 ({tried})"
    else:
        looked = f"no local server was looked for ({PORTS_VARIABLE} is empty)"
    return ConfigError(
        f"no provider configured, and {looked}. Configure one: run `human config init` (asks for the "
        "provider, model and key), or set HUMAN_PROVIDER and HUMAN_MODEL (plus the provider's key "
        "variable, e.g. GROQ_API_KEY, or `human keys set PROVIDER`); or start a local server on its "
        "default port"
    )


def knock(server: LocalServer, host: str = "127.0.0.1", connect_timeout: float = 0.3,
          read_timeout: float = 2.0) -> Found | None:
    """GET /v1/models, then /models, on one port. None when nothing listens there."""
    import http.client

    root = f"http://{host}:{server.port}"
    statuses: list[str] = []
    for prefix in ("/v1", ""):
        conn = http.client.HTTPConnection(host, server.port, timeout=connect_timeout)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(read_timeout)
            conn.request("GET", prefix + "/models", headers={"Accept": "application/json"})
            response = conn.getresponse()
            raw = response.read(1 << 20)
        except (OSError, http.client.HTTPException):
            if not statuses:
                return None  # nothing listens (or it does not speak HTTP)
            continue
        finally:
            conn.close()
        statuses.append(f"{prefix}/models: HTTP {response.status}")
        if response.status == 200:
            ids = _model_ids(raw)
            if ids is not None:
                return Found(server.name, root + prefix, ids, provider=server.provider if prefix else None)
    return Found(server.name, root, None, "answers, but not with an OpenAI-style model list (" +
                 ", ".join(statuses) + ")")


def _model_ids(raw: bytes) -> tuple[str, ...] | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return tuple(str(item.get("id")) for item in data if isinstance(item, dict) and item.get("id") is not None)
