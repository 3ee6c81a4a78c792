"""`import human` must stay cheap and must never touch the network."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("http", "http.client", "socket", "ssl", "aiohttp", "asyncio", "urllib.request", "httpx", "json.decoder")


def fresh(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_import_human_loads_no_http_stack():
    loaded = json.loads(fresh("import sys, json; before = set(sys.modules); import human; "
                              "print(json.dumps(sorted(set(sys.modules) - before)))"))
    assert not [name for name in loaded if name in HEAVY or name.startswith(("aiohttp", "http.", "urllib"))]
    # the package root and its version (a module of its own, so lower layers can read it)
    assert [name for name in loaded if name.startswith("human")] == ["human", "human._version"]


def test_import_human_opens_no_socket():
    out = fresh(
        "import socket\n"
        "calls = []\n"
        "real = socket.socket.__init__\n"
        "def spy(self, *a, **k):\n"
        "    calls.append(a)\n"
        "    real(self, *a, **k)\n"
        "socket.socket.__init__ = spy\n"
        "import human\n"
        "human.load_config\n"
        "human.user('hi')\n"
        "print(len(calls))\n"
    )
    assert out.strip() == "0"


def test_building_a_client_opens_no_socket():
    out = fresh(
        "import socket, os\n"
        "calls = []\n"
        "real = socket.socket.connect\n"
        "socket.socket.connect = lambda self, *a: calls.append(a)\n"
        "os.environ['HOME'] = '/nonexistent-home'\n"
        "import human\n"
        "c = human.Client(base_url='https://api.example.com/v1', model='m', api_key='k')\n"
        "c.dry_run('hi')\n"
        "print(len(calls))\n"
    )
    assert out.strip() == "0"


def test_public_names_resolve_and_all_is_sorted():
    import human

    assert human.__all__ == sorted(human.__all__)
    for name in human.__all__:
        assert getattr(human, name) is not None


def test_pure_core_imports_no_io_modules():
    code = (
        "import sys, json; before = set(sys.modules)\n"
        "import human.core.wire, human.core.retry, human.core.classify, human.core.schema\n"
        "import human.core.extract, human.core.partial, human.structured.session\n"
        "import human.core.http1, human.core.decoding, human.core.proxy, human.core.redirect, human.core.pump\n"
        "import human.core.handle\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    loaded = json.loads(fresh(code))
    assert not [name for name in loaded if name in ("socket", "ssl", "asyncio", "aiohttp", "http.client", "time")]


def test_structured_output_and_pydantic_load_only_when_asked_for():
    out = fresh(
        "import sys, os, dataclasses\n"
        "os.environ['HOME'] = '/nonexistent-home'\n"
        "import human\n"
        "c = human.Client(base_url='https://api.example.com/v1', model='m', api_key='k')\n"
        "c.dry_run('hi', response_format='json_object')\n"
        "print('human.structured' in sys.modules)\n"
        "@dataclasses.dataclass\n"
        "class P:\n"
        "    name: str\n"
        "c.dry_run('hi', response_format=P)\n"
        "print('human.structured' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    assert out.split() == ["False", "True", "False"]


def test_the_agent_package_loads_no_optional_extra():
    """MCP and pydantic are imported only when a server is opened or a model class is used."""
    loaded = json.loads(fresh("import sys, json; import human.agent, human; human.tool(lambda city: city, name='f'); "
                              "print(json.dumps(sorted(sys.modules)))"))
    assert not [name for name in loaded if name.split(".")[0] in ("mcp", "pydantic", "anyio", "httpx2", "aiohttp")]
