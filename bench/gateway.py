#!/usr/bin/env python3
"""The gateway benchmark (issue 15): `human gateway`, the LiteLLM proxy and a floor (a lean
aiohttp pass-through with no features, research wave2.md C.6's measure), in one run, in
front of the same nginx fixed answers (bench/run.py's target), measured by wrk.

    python3 bench/gateway.py             # full: 3 rounds, ~15 min; writes its block into docs/performance.md
    python3 bench/gateway.py --quick     # smoke: 1 short round; writes bench/results/gateway-quick.md
    python3 bench/run.py                 # runs this too, after the client benchmark (unless --no-gateway)

Layout (2 cores): each gateway in turn runs alone, pinned to CPU 1; nginx's worker, wrk and
the paced upstream share CPU 0. human gateway runs as a user would run it: keys on (every
request carries a gateway key) and usage logging on (a row per request in its SQLite log);
with uvloop when the bench venv has it (bench/requirements.txt). The LiteLLM proxy runs
with a master key, no database (its spend logs need PostgreSQL), one worker, as
tests/interop/servers.sh installs it (`--litellm-venv`, default .servers/venv-litellm).

Per gateway, median over rounds (each round: every measurement for every gateway):
- added latency at 1 in flight: p50 and p99 of wrk -c1 through the gateway, less those of
  wrk -c1 straight to nginx in the same round;
- requests/s at 64 in flight (wrk -c64), and the gateway's CPU per request (its processes'
  utime + stime over the run, / requests);
- 50-chunk streams/s at 16 in flight, and CPU per stream;
- RSS once warm (after the measurements above) and after 100,000 more requests (10,000
  with --quick) at 64 in flight, in the first round, for at most 4 minutes (the LiteLLM
  proxy does not get through 100,000 in that time; the table says how many it served):
  flat means the second is within 5 MB of the first;
- time to first token on a paced upstream (200 ms, then 20 chunks 50 ms apart; 5 streams):
  TTFT and the widest gap between chunks, less the same measured straight.
Every wrk run checks its answers' status: a run with non-2xx answers marks the result
INVALID in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import machine  # noqa: E402
import spec  # noqa: E402

GATEWAY_PORT = int(os.environ.get("BENCH_GATEWAY_PORT", "18490"))
PACED_PORT = int(os.environ.get("BENCH_PACED_PORT", "18492"))
BEGIN, END = "<!-- gateway benchmark: begin -->", "<!-- gateway benchmark: end -->"
GATEWAYS = ["human", "floor", "litellm"]
FULL = dict(rounds=3, seconds=8, rss_requests=100_000, rss_max_s=240, paced_runs=5)
QUICK = dict(rounds=1, seconds=3, rss_requests=10_000, rss_max_s=30, paced_runs=3)
SERVER_CPU, GATEWAY_CPU = "0", "1"


# ---- the gateways ------------------------------------------------------------------------------


class Gateway:
    """One gateway process tree, pinned to the gateway CPU."""

    name = ""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.proc: subprocess.Popen | None = None
        self.key = ""

    url = f"http://{spec.HOST}:{GATEWAY_PORT}"
    model = "gpt-4o"
    stream_model = "gpt-4o-stream"
    paced_model = "paced"

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def start(self) -> None:
        cmd, env = self.command()
        log = open(self.work / f"{self.name}.log", "a")  # every round's: a warning of any round stays
        self.proc = subprocess.Popen(["taskset", "-c", GATEWAY_CPU, *cmd], env=env, stdout=subprocess.DEVNULL,
                                     stderr=log, start_new_session=True)
        deadline = time.monotonic() + 180  # a cold LiteLLM import is slow
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{self.name} exited with {self.proc.returncode}; see {self.work / (self.name + '.log')}")
            try:
                status, _ = post(self.url + "/v1/chat/completions", body(self.model), self.key)
                if status == 200:
                    machine.log(f"{self.name} up on {self.url} (pid {self.proc.pid})")
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        sys.exit(f"{self.name} did not answer within 180 s; see {self.work / (self.name + '.log')}")

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    def cpu_seconds(self) -> float:
        return machine.cpu_seconds(self.pids())

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        machine.log(f"{self.name} stopped (pid {self.proc.pid})")


class Human(Gateway):
    name = "human"

    def command(self) -> tuple[list[str], dict[str, str]]:
        state = self.work / "human-state"
        state.mkdir(exist_ok=True)
        upstream = [{"name": "nginx", "base_url": spec.BASE, "api_key": spec.API_KEY},
                    {"name": "nginx-stream", "base_url": spec.BASE_STREAM, "api_key": spec.API_KEY},
                    {"name": "paced", "base_url": f"http://{spec.HOST}:{PACED_PORT}/v1", "api_key": spec.API_KEY}]
        config = {"providers": upstream,
                  "routes": {"aliases": {self.model: "nginx/gpt-4o", self.stream_model: "nginx-stream/gpt-4o",
                                         self.paced_model: "paced/gpt-4o"}},
                  "reliability": {"provider_retries": 0},
                  "gateway": {"keys_file": str(state / "keys.json"), "log_path": str(state / "logs.db")}}
        path = self.work / "human-config.json"
        path.write_text(json.dumps(config))
        path.chmod(0o600)  # it holds keys (human warns otherwise)
        env = {**os.environ, "HU_STATE_DIR": str(state)}
        if not self.key:
            created = subprocess.run([str(machine.PY), "-m", "human", "--config", str(path), "gateway", "keys",
                                      "create", "bench"], env=env, capture_output=True, text=True, check=True)
            self.key = created.stdout.strip()
        return [str(machine.PY), "-m", "human", "--config", str(path), "gateway", "--port", str(GATEWAY_PORT)], env

    def answered(self) -> int:
        """Requests this process answered (its /metrics), each of which must leave a usage row."""
        import urllib.request

        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as response:  # noqa: S310 - loopback
            text = response.read().decode()
        return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                   if line.startswith("human_gateway_requests_total{"))

    def logged_rows(self) -> int:
        """The usage rows in the gateway's log once every journal is imported (rows the
        gateway's writer journaled but had not imported by the time it stopped count too)."""
        path = self.work / "human-state" / "logs.db"
        if not path.exists():
            return 0
        count = ("import sqlite3, sys\nfrom pathlib import Path\nfrom human.store.sqlite import SQLiteStore\n"
                 "store = SQLiteStore(Path(sys.argv[1])); store.catch_up(); store.close()\n"
                 "print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM exchanges').fetchone()[0])")
        out = subprocess.run([str(machine.PY), "-c", count, str(path)], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())


class LiteLLM(Gateway):
    name = "litellm"

    def __init__(self, work: Path, venv: Path) -> None:
        super().__init__(work)
        self.venv = venv
        self.key = "sk-bench-master"

    def command(self) -> tuple[list[str], dict[str, str]]:
        models = [(self.model, spec.BASE), (self.stream_model, spec.BASE_STREAM),
                  (self.paced_model, f"http://{spec.HOST}:{PACED_PORT}/v1")]
        lines = ["model_list:"]
        for name, base in models:
            lines += [f"  - model_name: {name}", "    litellm_params:", "      model: openai/gpt-4o",
                      f"      api_base: {base}", f"      api_key: {spec.API_KEY}"]
        lines += ["litellm_settings:", "  num_retries: 0", "  drop_params: true", "general_settings:",
                  f"  master_key: {self.key}"]
        path = self.work / "litellm.yaml"
        path.write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_PROXY="*", no_proxy="*")
        return [str(self.venv / "bin" / "litellm"), "--config", str(path), "--host", spec.HOST, "--port",
                str(GATEWAY_PORT), "--num_workers", "1"], env


class Floor(Gateway):
    """The floor: a lean aiohttp pass-through (research wave2.md C.6's measure), ~40 lines
    with nothing a gateway must do (no keys, limits, retries, metering or error mapping):
    one upstream session, the caller's body forwarded as it is, the answer relayed chunk
    by chunk. What human gateway costs above it is what its features cost."""

    name = "floor"

    def command(self) -> tuple[list[str], dict[str, str]]:
        path = self.work / "floor.py"
        path.write_text(FLOOR_SERVER)
        upstreams = {self.model: spec.BASE, self.stream_model: spec.BASE_STREAM,
                     self.paced_model: f"http://{spec.HOST}:{PACED_PORT}/v1"}
        return [str(machine.PY), str(path), str(GATEWAY_PORT), json.dumps(upstreams)], dict(os.environ)


# ---- load --------------------------------------------------------------------------------------


def body(model: str, stream: bool = False) -> dict:
    request = spec.request_body(stream=stream)
    request["model"] = model
    if stream:
        request.pop("stream_options", None)  # a caller that did not ask: the gateway meters anyway
    return request


def post(url: str, payload: dict, key: str) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wrk(url: str, payload: dict, key: str, connections: int, seconds: float, work: Path) -> dict:
    script = work / "wrk.lua"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    script.write_text("wrk.method = 'POST'\n" f"wrk.body = {json.dumps(json.dumps(payload))}\n"
                      + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items()))
    # --timeout 30s: wrk's default of 2 s counts a slow answer (the LiteLLM proxy's streams at
    # 16 in flight) as a failure; slow is measured, not failed.
    out = subprocess.run(["taskset", "-c", SERVER_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "--timeout", "30s", "-s", str(script), url], capture_output=True, text=True,
                         check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    return {"requests": requests, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": latency.get("50"), "p99_ms": latency.get("99"),
            "bad": (int(bad.group(1)) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)}


def _ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def loaded(gateway: Gateway, payload: dict, connections: int, seconds: float, work: Path) -> dict:
    before = gateway.cpu_seconds()
    result = wrk(gateway.url + "/v1/chat/completions", payload, gateway.key, connections, seconds, work)
    used = gateway.cpu_seconds() - before
    result["cpu_us"] = used / max(result["requests"], 1) * 1e6
    return result


# ---- the paced upstream --------------------------------------------------------------------------

PACED_SERVER = """
import asyncio, json, sys
from aiohttp import web
chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
async def handle(request):
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await asyncio.sleep(0.2)
    for i in range(20):
        delta = {"content": f" t{i}"}
        finish = "stop" if i == 19 else None
        event = {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        await response.write(b"data: " + json.dumps(event).encode() + b"\\n\\n")
        if i < 19:
            await asyncio.sleep(0.05)
    await response.write(b"data: [DONE]\\n\\n")
    return response
app = web.Application()
app.router.add_post("/v1/chat/completions", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


FLOOR_SERVER = """
import json, sys
from aiohttp import ClientSession, TCPConnector, web
try:
    import uvloop
except ImportError:
    uvloop = None
UPSTREAMS = json.loads(sys.argv[2])
async def start(app):
    app["session"] = ClientSession(connector=TCPConnector(limit=0), auto_decompress=False)
async def stop(app):
    await app["session"].close()
async def handle(request):
    raw = await request.read()
    base = UPSTREAMS[json.loads(raw)["model"]]
    async with request.app["session"].post(base + "/chat/completions", data=raw,
                                           headers={"Content-Type": "application/json"}) as upstream:
        kind = upstream.headers.get("Content-Type", "application/json")
        if "event-stream" not in kind:
            return web.Response(body=await upstream.read(), status=upstream.status, headers={"Content-Type": kind})
        response = web.StreamResponse(status=upstream.status, headers={"Content-Type": kind})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
app = web.Application()
app.on_startup.append(start)
app.on_cleanup.append(stop)
app.router.add_post("/v1/chat/completions", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
            **({"loop": uvloop.new_event_loop()} if uvloop else {}))
"""


def paced_stream(url: str, key: str, model: str) -> tuple[float, float]:
    """(TTFT ms, widest gap between content chunks ms) of one paced stream, on a plain socket."""
    host, port = url.split("//", 1)[1].split(":")
    payload = json.dumps(body(model, stream=True)).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
        arrivals = []
        while chunk := sock.recv(65536):
            arrivals += [time.perf_counter()] * chunk.count(b'"content"')
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    return (arrivals[0] - started) * 1000, max(gaps) * 1000


def paced(gateway: Gateway | None, runs: int) -> dict:
    url = gateway.url if gateway else f"http://{spec.HOST}:{PACED_PORT}"
    results = [paced_stream(url, gateway.key if gateway else "x", gateway.paced_model if gateway else "gpt-4o")
               for _ in range(runs)]
    return {"ttft_ms": statistics.median(r[0] for r in results), "max_gap_ms": max(r[1] for r in results)}


# ---- a round -------------------------------------------------------------------------------------


def direct(cfg: dict, work: Path) -> dict:
    payload = spec.request_body()
    result = wrk(spec.ORIGIN + "/v1/chat/completions", payload, spec.API_KEY, 1, cfg["seconds"], work)
    result.update({f"paced_{k}": v for k, v in paced(None, cfg["paced_runs"]).items()})
    return result


def measure(gateway: Gateway, cfg: dict, work: Path, rss: bool) -> dict:
    seconds = cfg["seconds"]
    out: dict = {}
    wrk(gateway.url + "/v1/chat/completions", body(gateway.model), gateway.key, 16, 1, work)  # warm-up
    one = wrk(gateway.url + "/v1/chat/completions", body(gateway.model), gateway.key, 1, seconds, work)
    out.update(p50_ms=one["p50_ms"], p99_ms=one["p99_ms"], bad=one["bad"])
    many = loaded(gateway, body(gateway.model), 64, seconds, work)
    out.update(rps=many["rps"], cpu_us=many["cpu_us"], bad=out["bad"] + many["bad"])
    streams = loaded(gateway, body(gateway.stream_model, stream=True), 16, seconds, work)
    out.update(streams_s=streams["rps"], cpu_us_stream=streams["cpu_us"], bad=out["bad"] + streams["bad"])
    if rss:  # first round only; capped in time (the LiteLLM proxy serves ~100 requests/s here)
        out["rss_start_mb"] = gateway.rss_mb()  # warm: after every kind of request, at full width
        served, ends = 0, time.monotonic() + cfg["rss_max_s"]
        while served < cfg["rss_requests"] and time.monotonic() < ends:
            more = wrk(gateway.url + "/v1/chat/completions", body(gateway.model), gateway.key, 64,
                       min(max(seconds, 10), cfg["rss_max_s"]), work)
            served += more["requests"]
            out["bad"] += more["bad"]
        out["rss_requests"] = served
        out["rss_end_mb"] = gateway.rss_mb()
    out.update({f"paced_{k}": v for k, v in paced(gateway, cfg["paced_runs"]).items()})
    return out


# ---- the table -----------------------------------------------------------------------------------


def render(report: dict) -> str:
    rounds = report["rounds"]

    def med(name: str, field: str) -> float | None:
        values = [r[name][field] for r in rounds if name in r and r[name].get(field) is not None]
        return statistics.median(values) if values else None

    base_p50, base_p99 = med("direct", "p50_ms"), med("direct", "p99_ms")
    base_ttft, base_gap = med("direct", "paced_ttft_ms"), med("direct", "paced_max_gap_ms")
    lines = [BEGIN, "", "## Gateway (issue 15): human gateway beside the LiteLLM proxy", "",
             f"Measured {report['date']} by `bench/gateway.py`{' --quick' if report['quick'] else ''}: "
             f"{len(rounds)} round(s), medians; each gateway alone on CPU 1, nginx + wrk + the paced upstream on "
             f"CPU 0. Direct to nginx at 1 in flight: p50 {_f(base_p50, 3)} ms, p99 {_f(base_p99, 3)} ms.", "",
             "| gateway | added p50 c=1 (ms) | added p99 c=1 (ms) | req/s c=64 | CPU µs/req | 50-chunk streams/s "
             "c=16 | CPU µs/stream | RSS MB (warm → after N more requests) | paced TTFT added (ms) "
             "| widest gap added (ms) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in report["gateways"]:
        if not any(name in r for r in rounds):
            continue
        bad = sum(r[name]["bad"] for r in rounds if name in r)
        label = {"human": "human gateway (keys + usage log on)",
                 "floor": "floor: a lean aiohttp pass-through (no features)",
                 "litellm": f"LiteLLM proxy {report.get('litellm_version', '')} (master key, no DB)"}[name]
        p50, p99 = med(name, "p50_ms"), med(name, "p99_ms")
        served = int(med(name, "rss_requests") or 0)
        rss = f"{_f(med(name, 'rss_start_mb'), 0)} → {_f(med(name, 'rss_end_mb'), 0)} ({served:,})"
        ttft, gap = med(name, "paced_ttft_ms"), med(name, "paced_max_gap_ms")
        invalid = f" **INVALID: {bad} failed answers**" if bad else ""
        lines.append(f"| {label}{invalid} | "
                     f"{_f(_minus(p50, base_p50), 3)} | {_f(_minus(p99, base_p99), 3)} | {_f(med(name, 'rps'), 0)} | "
                     f"{_f(med(name, 'cpu_us'), 0)} | {_f(med(name, 'streams_s'), 0)} | "
                     f"{_f(med(name, 'cpu_us_stream'), 0)} | {rss} | {_f(_minus(ttft, base_ttft), 1)} | "
                     f"{_f(_minus(gap, base_gap), 1)} |")
    if all(any(n in r for r in rounds) for n in ("human", "floor")):
        def ratio(field: str) -> str:
            a, b = med("human", field), med("floor", field)
            return "–" if not a or not b else f"{a / b:.2f}"
        lines += ["", f"human gateway ÷ the floor, same run: req/s {ratio('rps')}, CPU per request "
                      f"{ratio('cpu_us')}, streams/s {ratio('streams_s')}, CPU per stream {ratio('cpu_us_stream')}."]
    if report.get("human_rows") is not None:
        answers = report.get("human_answers")
        lines += ["", f"human gateway's log held {report['human_rows']:,} usage rows after the run (journals "
                      "imported)" + (f", for {answers:,} requests answered (its /metrics)." if answers else ".")
                  + (" **Fewer rows than answers: usage was lost.**" if lost_rows(report) else "")]
    warnings = report.get("human_warnings") or []
    if warnings:
        lines += ["", f"Its stderr held {len(warnings)} warning(s) about its log, the first: `{warnings[0]}`"]
    lines += ["", "Targets (issue 15): added p50 ≤ 0.6 ms, p99 ≤ 3 ms; ≥ 3,000 req/s and ≥ 2,500 streams/s on one "
              "core; ≤ 350 µs CPU per request; RSS ≤ 80 MB and flat over 100,000 requests; TTFT + ≤ 2 ms.", "", END]
    return "\n".join(lines)


def lost_rows(report: dict) -> bool:
    """Fewer usage rows than requests answered: a row for every answer is what the log promises
    (more rows is fine: a request whose caller left when wrk stopped is metered, not counted
    as answered)."""
    rows, answers = report.get("human_rows"), report.get("human_answers")
    return rows is not None and answers is not None and rows < answers


def log_warnings(path: Path) -> list[str]:
    """What the gateway said on stderr (every round) beyond its start-up lines: warnings."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("human gateway:")]


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _f(value: float | None, decimals: int) -> str:
    return "–" if value is None else f"{value:,.{decimals}f}"


def write(md: str, out: Path) -> None:
    """Into `out` between the markers; below run.py's keep-mark, so its runs keep it."""
    text = out.read_text() if out.exists() else ""
    if BEGIN in text and END in text:
        text = text.split(BEGIN)[0] + md + text.split(END, 1)[1]
    elif machine.KEEP_MARK in text:
        text = text + "\n" + md + "\n"
    else:
        text = text + ("\n" + machine.KEEP_MARK + "\n" if out == machine.DOC else "") + md + "\n"
    out.write_text(text)


def main(argv: list[str] | None = None, nginx_running: bool = False) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int)
    p.add_argument("--gateways", default=",".join(GATEWAYS), help="comma-separated subset of human,floor,litellm")
    p.add_argument("--litellm-venv",
                   default=os.environ.get("LITELLM_VENV", str(machine.REPO / ".servers" / "venv-litellm")))
    p.add_argument("--out", help="markdown (default: docs/performance.md; --quick: bench/results/gateway-quick.md)")
    args = p.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    names = [n.strip() for n in args.gateways.split(",") if n.strip()]
    if not shutil.which("wrk"):
        machine.apt_install("wrk") or sys.exit("wrk is needed (apt-get install wrk)")
    machine.ensure_venv()
    venv = Path(args.litellm_venv)
    if "litellm" in names and not (venv / "bin" / "litellm").exists():
        machine.log(f"no LiteLLM at {venv} (bash tests/interop/servers.sh start installs it): skipping it")
        names.remove("litellm")
    work = Path(tempfile.mkdtemp(prefix="human-gateway-bench-"))
    nginx = None if nginx_running else machine.Nginx(machine.ensure_nginx(), pin=True)
    paced_server = None
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": args.quick,
                    "gateways": names, "rounds": [], "config": cfg}
    if "litellm" in names:
        version = subprocess.run([str(venv / "bin" / "python"), "-c",
                                  "import importlib.metadata as m; print(m.version('litellm'))"],
                                 capture_output=True, text=True)
        report["litellm_version"] = version.stdout.strip()
    human = None
    try:
        if nginx is not None:
            nginx.start()
        (work / "paced.py").write_text(PACED_SERVER)
        paced_server = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(machine.PY), str(work / "paced.py"),
                                         str(PACED_PORT)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        time.sleep(1.5)
        makers = {"human": lambda: Human(work), "floor": lambda: Floor(work), "litellm": lambda: LiteLLM(work, venv)}
        gateways: dict[str, Gateway] = {name: makers[name]() for name in names}
        for number in range(cfg["rounds"]):
            machine.log(f"gateway round {number + 1}/{cfg['rounds']}")
            result = {"direct": direct(cfg, work)}
            for name in names if number % 2 == 0 else list(reversed(names)):  # the order alternates
                gateway = gateways[name]
                gateway.start()
                try:
                    result[name] = measure(gateway, cfg, work, rss=number == 0)
                    if isinstance(gateway, Human):  # what it answered, for the rows its log must hold
                        report["human_answers"] = report.get("human_answers", 0) + gateway.answered()
                finally:
                    gateway.stop()
                if isinstance(gateway, Human):
                    human = gateway
                machine.log(f"  {name}: {json.dumps({k: round(v, 3) for k, v in result[name].items()})}")
            report["rounds"].append(result)
    except KeyboardInterrupt:
        return 130
    finally:
        if paced_server is not None:
            os.killpg(paced_server.pid, signal.SIGTERM)
            paced_server.wait()
        if nginx is not None:
            nginx.stop()
    if human is not None:
        report["human_rows"] = human.logged_rows()
        report["human_warnings"] = log_warnings(work / "human.log")
        machine.log(f"the gateways' work directory (logs, config, usage log): {work}")
    machine.RESULTS.mkdir(exist_ok=True)
    name = "gateway-quick.json" if args.quick else time.strftime("gateway-%Y%m%d-%H%M%S.json")
    (machine.RESULTS / name).write_text(json.dumps(report, indent=1) + "\n")
    md = render(report)
    out = Path(args.out) if args.out else (machine.RESULTS / "gateway-quick.md" if args.quick else machine.DOC)
    write(md, out)
    print(md)
    bad = sum(r[n]["bad"] for r in report["rounds"] for n in names if n in r)
    return 1 if bad or lost_rows(report) else 0


if __name__ == "__main__":
    sys.exit(main())
