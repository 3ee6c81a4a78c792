"""The measuring side: one client, one process, pinned to one core. Prints one JSON line.

Run by `run.py` with the bench venv's interpreter; not meant to be run by hand, but it can:

    bench/.state/venv/bin/python bench/workers.py probe human
    bench/.state/venv/bin/python bench/workers.py run httpx --seq 200 --conc 500 --streams 50
    bench/.state/venv/bin/python bench/workers.py scale human --small 1000 --big 10000 --streams 1000

Every phase counts errors: a request whose status is not 200 or whose content differs
from the fixed answer is an error, and so is any exception.
"""

import argparse
import asyncio
import functools
import gc
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec  # noqa: E402

perf = time.perf_counter
URL = spec.BASE + "/chat/completions"
URL_STREAM = spec.BASE_STREAM + "/chat/completions"
URL_STREAM5000 = spec.BASE_STREAM5000 + "/chat/completions"
EXPECTED = spec.COMPLETION_TEXT
USAGE = 1  # what a stream adapter yields for the usage item; str for content; None for anything else


def cpu_now():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def threads_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def quantile(values, q):
    s = sorted(values)
    if not s:
        return None
    i = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[i]


def median(values):
    s = sorted(values)
    n = len(s)
    if not n:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# ---- the raw SSE parser the raw rows use (the "10-line parser") ---------------------------


def sse_items(buf, start):
    """Complete `data:` payloads in buf from start; returns (payloads, new start, done)."""
    out = []
    while (end := buf.find(b"\n\n", start)) >= 0:
        for line in buf[start:end].split(b"\n"):
            if line[:6] == b"data: ":
                if line[6:] == b"[DONE]":
                    return out, end + 2, True
                out.append(json.loads(line[6:]))
        start = end + 2
    return out, start, False


def raw_events(chunks):
    """Bytes chunks in, parsed chunk dicts out (sync)."""
    buf = b""
    for chunk in chunks:
        buf = buf + chunk if buf else chunk
        items, start, done = sse_items(buf, 0)
        yield from items
        if done:
            return
        buf = buf[start:]


def raw_item(d):
    """What the harness hands on for one parsed chunk dict."""
    choices = d["choices"]
    if choices:
        return choices[0]["delta"].get("content")
    return USAGE if d.get("usage") else None


# ---- adapters -------------------------------------------------------------------------
# Each adapter offers what it has of:
#   chat()                 -> content          (sync, for (b))
#   achat()                -> content          (async, for (b) when there is no sync API, and (c))
#   stream(n)              -> iterator of items (sync, for (d)); n = 50 or 5000 chunks
#   astream(n)             -> async iterator of items
#   close() / aclose()


class Adapter:
    chat = stream = achat = astream = None

    def settle(self):
        """Finish work the client does off the request path (a log writer), so that the CPU
        of a measured phase holds all of it and none of the warm-up's."""

    def close(self):
        pass

    async def aclose(self):
        pass


class HttpxRaw(Adapter):
    name = "httpx"

    def __init__(self):
        import httpx

        self.httpx = httpx
        self.client = None
        self.aclient = None

    def chat(self):
        if self.client is None:
            self.client = self.httpx.Client()
        r = self.client.post(URL, content=json.dumps(spec.request_body()), headers=spec.HEADERS)
        if r.status_code != 200:
            raise RuntimeError(f"status {r.status_code}")
        return json.loads(r.content)["choices"][0]["message"]["content"]

    async def achat(self):
        if self.aclient is None:
            self.aclient = self.httpx.AsyncClient()
        r = await self.aclient.post(URL, content=json.dumps(spec.request_body()), headers=spec.HEADERS)
        if r.status_code != 200:
            raise RuntimeError(f"status {r.status_code}")
        return json.loads(r.content)["choices"][0]["message"]["content"]

    def stream(self, n):
        if self.client is None:
            self.client = self.httpx.Client()
        url = URL_STREAM if n == 50 else URL_STREAM5000
        body = json.dumps(spec.request_body(stream=True))
        with self.client.stream("POST", url, content=body, headers=spec.HEADERS) as r:
            if r.status_code != 200:
                raise RuntimeError(f"status {r.status_code}")
            for d in raw_events(r.iter_bytes()):
                yield raw_item(d)

    def close(self):
        if self.client is not None:
            self.client.close()

    async def aclose(self):
        if self.aclient is not None:
            await self.aclient.aclose()


class AiohttpRaw(Adapter):
    """The lean raw-aiohttp floor (issue 10): headers set once on the session and each
    body encoded once, as a hand-tuned aiohttp program would do; only the HTTP exchange
    and the JSON/SSE reading are paid per request."""

    name = "aiohttp"

    def __init__(self):
        import aiohttp

        self.aiohttp = aiohttp
        self.session = None
        self.body = json.dumps(spec.request_body()).encode()
        self.stream_body = json.dumps(spec.request_body(stream=True)).encode()

    def _session(self):
        if self.session is None:
            self.session = self.aiohttp.ClientSession(headers=spec.HEADERS)
        return self.session

    async def achat(self):
        async with self._session().post(URL, data=self.body) as r:
            if r.status != 200:
                raise RuntimeError(f"status {r.status}")
            return json.loads(await r.read())["choices"][0]["message"]["content"]

    async def astream(self, n):
        url = URL_STREAM if n == 50 else URL_STREAM5000
        async with self._session().post(url, data=self.stream_body) as r:
            if r.status != 200:
                raise RuntimeError(f"status {r.status}")
            buf = b""
            async for chunk in r.content.iter_any():
                buf = buf + chunk if buf else chunk
                items, start, done = sse_items(buf, 0)
                for d in items:
                    yield raw_item(d)
                if done:
                    return
                buf = buf[start:]

    async def aclose(self):
        if self.session is not None:
            await self.session.close()


class OpenAISDK(Adapter):
    name = "openai"

    def __init__(self):
        import openai

        self.openai = openai
        self.clients = {}
        self.aclient = None

    def _client(self, base):
        c = self.clients.get(base)
        if c is None:
            c = self.clients[base] = self.openai.OpenAI(base_url=base, api_key=spec.API_KEY)
        return c

    def chat(self):
        r = self._client(spec.BASE).chat.completions.create(
            model=spec.MODEL, messages=spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        return r.choices[0].message.content

    async def achat(self):
        if self.aclient is None:
            self.aclient = self.openai.AsyncOpenAI(base_url=spec.BASE, api_key=spec.API_KEY)
        r = await self.aclient.chat.completions.create(
            model=spec.MODEL, messages=spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        return r.choices[0].message.content

    def stream(self, n):
        base = spec.BASE_STREAM if n == 50 else spec.BASE_STREAM5000
        s = self._client(base).chat.completions.create(
            model=spec.MODEL, messages=spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS,
            stream=True, stream_options={"include_usage": True})
        with s:
            for ch in s:
                if ch.choices:
                    yield ch.choices[0].delta.content
                else:
                    yield USAGE if ch.usage else None

    def close(self):
        for c in self.clients.values():
            c.close()

    async def aclose(self):
        if self.aclient is not None:
            await self.aclient.close()


class Human(Adapter):
    name = "human"

    def __init__(self):
        import human

        self.human = human
        self.clients = {}
        self.aclients = {}
        # resolve the names now so that a missing piece fails here, not mid-phase
        self.Client, self.AsyncClient = human.Client, human.AsyncClient

    def _client(self, base):
        c = self.clients.get(base)
        if c is None:
            c = self.clients[base] = self.Client(base_url=base, api_key=spec.API_KEY, model=spec.MODEL)
        return c

    def _aclient(self, base):
        c = self.aclients.get(base)
        if c is None:
            c = self.aclients[base] = self.AsyncClient(base_url=base, api_key=spec.API_KEY, model=spec.MODEL)
        return c

    # human retries by itself; against this target any retry means something failed, so a
    # response that needed more than one attempt counts as an error

    def chat(self):
        r = self._client(spec.BASE).chat(spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        if r.attempt != 1:
            raise RuntimeError(f"the answer needed {r.attempt} attempts")
        return r.content

    async def achat(self):
        r = await self._aclient(spec.BASE).chat(spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        if r.attempt != 1:
            raise RuntimeError(f"the answer needed {r.attempt} attempts")
        return r.content

    def stream(self, n):
        base = spec.BASE_STREAM if n == 50 else spec.BASE_STREAM5000
        s = self._client(base).stream(spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        for ev in s:
            t = ev.type
            yield ev.text if t == "content" else (USAGE if t == "usage" else None)
        if s.response is None or s.response.attempt != 1:
            raise RuntimeError("the stream needed more than one attempt")

    async def astream(self, n):
        base = spec.BASE_STREAM if n == 50 else spec.BASE_STREAM5000
        s = self._aclient(base).stream(spec.MESSAGES, tools=spec.TOOLS, **spec.OPTIONS)
        async for ev in s:
            t = ev.type
            yield ev.text if t == "content" else (USAGE if t == "usage" else None)
        if s.response is None or s.response.attempt != 1:
            raise RuntimeError("the stream needed more than one attempt")

    def close(self):
        for c in self.clients.values():
            c.close()

    async def aclose(self):
        for c in self.aclients.values():
            await c.close()


LOG_DB = None


class HumanLog(Human):
    """human with the exchange log on (issue 12): every request is written to a SQLite file
    in a temporary directory by the log's writer thread, whose CPU counts (same process)."""

    name = "human-log"

    def __init__(self):
        import atexit
        import shutil
        import tempfile

        super().__init__()
        global LOG_DB
        if LOG_DB is None:  # one log for the worker's phases, as a program has one
            folder = tempfile.mkdtemp(prefix="human-bench-log-")
            atexit.register(shutil.rmtree, folder, True)
            LOG_DB = os.path.join(folder, "logs.db")
        db = self.db = LOG_DB
        self.Client = functools.partial(self.human.Client, log=db)
        self.AsyncClient = functools.partial(self.human.AsyncClient, log=db)

    def settle(self):
        """The writer's backlog into its journal, on this thread. Turning the journal into
        SQLite rows is left, as in real use, to the next reader of the log (or the idle
        writer): `import_cost` measures it apart."""
        from human.store.writer import _books

        for book in list(_books.values()):
            if not book.flush():
                raise RuntimeError("the log could not be written")

    def import_cost(self):
        """CPU of importing everything the phases journaled into SQLite (building the rows,
        linking conversations, inserting), per exchange: the work the log defers."""
        from human.store import open_store

        self.settle()
        store = open_store(self.db)
        count = "SELECT count(*) FROM exchanges"
        before = store._db.execute(count).fetchone()[0]  # imported already (the writer, when idle)
        c0 = cpu_now()
        store.catch_up()
        cpu = cpu_now() - c0
        rows = store._db.execute(count).fetchone()[0] - before
        store.close()
        return {"rows": rows, "cpu_us_per_row": cpu / rows * 1e6 if rows else None}


class HumanAsync(Human):
    """human through AsyncClient only: (b) as sequential awaits, (d) as `async for`."""

    name = "human-async"
    chat = None
    stream = None


ADAPTERS = {"httpx": HttpxRaw, "aiohttp": AiohttpRaw, "openai": OpenAISDK, "human": Human,
            "human-async": HumanAsync, "human-log": HumanLog}


# ---- phases ---------------------------------------------------------------------------


def phase_seq(ad, warm, n):
    """(b) n non-streamed requests one after another (sync API, or sequential awaits)."""
    if ad.chat is not None:
        call = ad.chat
        run_sync = True
    else:
        loop = asyncio.new_event_loop()
        run_sync = False

    def loop_body(count, record):
        lat, errors, first_error = [], 0, None
        for _ in range(count):
            t = perf()
            try:
                ok = call() == EXPECTED
            except Exception as exc:  # noqa: BLE001
                ok, first_error = False, first_error or repr(exc)
            if record:
                lat.append(perf() - t)
            errors += not ok
        return lat, errors, first_error

    async def aloop_body(count, record):
        lat, errors, first_error = [], 0, None
        achat = ad.achat
        for _ in range(count):
            t = perf()
            try:
                ok = (await achat()) == EXPECTED
            except Exception as exc:  # noqa: BLE001
                ok, first_error = False, first_error or repr(exc)
            if record:
                lat.append(perf() - t)
            errors += not ok
        return lat, errors, first_error

    if run_sync:
        _, werr, wfirst = loop_body(warm, False)
        ad.settle()
        gc.collect()
        c0, t0 = cpu_now(), perf()
        lat, errors, first = loop_body(n, True)
        ad.settle()
        wall, cpu = perf() - t0, cpu_now() - c0
        ad.close()
    else:
        _, werr, wfirst = loop.run_until_complete(aloop_body(warm, False))
        ad.settle()
        gc.collect()
        c0, t0 = cpu_now(), perf()
        lat, errors, first = loop.run_until_complete(aloop_body(n, True))
        ad.settle()
        wall, cpu = perf() - t0, cpu_now() - c0
        loop.run_until_complete(ad.aclose())
        loop.close()
    return {
        "api": "sync" if run_sync else "async (sequential awaits)",
        "n": n,
        "errors": errors + werr,
        "first_error": first or wfirst,
        "cpu_us_per_req": cpu / n * 1e6,
        "wall_s": wall,
        "lat_median_ms": median(lat) * 1e3,
        "lat_p99_ms": quantile(lat, 0.99) * 1e3,
    }


async def run_inflight(call, n, width):
    """n calls with `width` in flight; returns (errors, first error)."""
    state = {"left": n, "errors": 0, "first": None}

    async def lane():
        while state["left"] > 0:
            state["left"] -= 1
            try:
                ok = (await call()) == EXPECTED
            except Exception as exc:  # noqa: BLE001
                ok = False
                state["first"] = state["first"] or repr(exc)
            if not ok:
                state["errors"] += 1

    await asyncio.gather(*(lane() for _ in range(width)))
    return state["errors"], state["first"]


def phase_conc(ad, warm, n, width):
    """(c) n requests with `width` in flight, asyncio."""

    async def main():
        werr, wfirst = await run_inflight(ad.achat, warm, width)
        ad.settle()
        gc.collect()
        c0, t0 = cpu_now(), perf()
        errors, first = await run_inflight(ad.achat, n, width)
        ad.settle()  # the writer's backlog, on this thread: counted in wall and CPU alike
        wall, cpu = perf() - t0, cpu_now() - c0
        await ad.aclose()
        return {
            "n": n,
            "width": width,
            "errors": errors + werr,
            "first_error": first or wfirst,
            "req_per_s": n / wall,
            "cpu_us_per_req": cpu / n * 1e6,
            "wall_s": wall,
        }

    return asyncio.run(main())


def check_stream(items, n_chunks):
    text = "".join(i for i in items if isinstance(i, str))
    return text == spec.expected_stream_text(n_chunks) and USAGE in items


def phase_stream(ad, warm, n, n_chunks):
    """(d) n streams one after another: TTFC, total, CPU per stream (sync iterator if there is one)."""
    ttfc, total = [], []
    errors, first_error = 0, None
    if ad.stream is not None:
        def one(record):
            nonlocal errors, first_error
            items = []
            t = perf()
            t1 = None
            try:
                for item in ad.stream(n_chunks):
                    if t1 is None:
                        t1 = perf()
                    items.append(item)
                t2 = perf()
                ok = check_stream(items, n_chunks)
            except Exception as exc:  # noqa: BLE001
                ok, first_error = False, first_error or repr(exc)
            errors += not ok
            if record and ok:
                ttfc.append(t1 - t)
                total.append(t2 - t)

        for _ in range(warm):
            one(False)
        ad.settle()
        gc.collect()
        c0, t0 = cpu_now(), perf()
        for _ in range(n):
            one(True)
        ad.settle()
        wall, cpu = perf() - t0, cpu_now() - c0
        ad.close()
        api = "sync iterator"
    else:
        async def one(record):
            nonlocal errors, first_error
            items = []
            t = perf()
            t1 = None
            try:
                async for item in ad.astream(n_chunks):
                    if t1 is None:
                        t1 = perf()
                    items.append(item)
                t2 = perf()
                ok = check_stream(items, n_chunks)
            except Exception as exc:  # noqa: BLE001
                ok, first_error = False, first_error or repr(exc)
            errors += not ok
            if record and ok:
                ttfc.append(t1 - t)
                total.append(t2 - t)

        async def main():
            for _ in range(warm):
                await one(False)
            ad.settle()
            gc.collect()
            c0, t0 = cpu_now(), perf()
            for _ in range(n):
                await one(True)
            ad.settle()
            wall, cpu = perf() - t0, cpu_now() - c0
            await ad.aclose()
            return wall, cpu

        wall, cpu = asyncio.run(main())
        api = "async iterator"
    return {
        "api": api,
        "n": n,
        "chunks": n_chunks,
        "errors": errors,
        "first_error": first_error,
        "cpu_us_per_stream": cpu / n * 1e6,
        "cpu_us_per_chunk": cpu / n / n_chunks * 1e6,
        "ttfc_median_ms": median(ttfc) * 1e3 if ttfc else None,
        "ttfc_p99_ms": quantile(ttfc, 0.99) * 1e3 if ttfc else None,
        "total_median_ms": median(total) * 1e3 if total else None,
        "wall_s": wall,
    }


# ---- commands -------------------------------------------------------------------------


def pin(cpu):
    if cpu is not None and cpu >= 0:
        os.sched_setaffinity(0, {cpu})


def cmd_run(a):
    make = ADAPTERS[a.client]
    first = make()
    out = {"client": a.client, "after_import_rss_mb": maxrss_mb()}
    if a.seq:
        out["seq"] = phase_seq(first, a.seq_warm, a.seq)
    if a.conc and a.client != "human-async":
        out["conc"] = phase_conc(make(), a.conc_warm, a.conc, a.width)
    out["peak_rss_mb"] = maxrss_mb()
    if a.streams:
        out["stream"] = phase_stream(make(), a.stream_warm, a.streams, 50)
    if a.long and a.client in ("human", "human-async", "human-log", "httpx", "aiohttp"):
        out["stream5000"] = phase_stream(make(), a.long_warm, a.long, 5000)
    out["peak_rss_end_mb"] = maxrss_mb()
    out["threads_end"] = threads_now()
    if hasattr(first, "import_cost"):  # after every phase: nothing imported yet, by anyone
        out["log_import"] = first.import_cost()
    return out


def cmd_probe(a):
    """Does the client work against the target: one request and one stream, sync and async?"""
    ad = ADAPTERS[a.client]()
    report = {"client": a.client}
    if ad.chat is not None:
        got = ad.chat()
        report["chat"] = got == EXPECTED
        items = list(ad.stream(50))
        report["stream"] = check_stream(items, 50)
        ad.close()

    async def amain():
        got = await ad.achat()
        ok = got == EXPECTED
        items = [i async for i in ad.astream(50)] if ad.astream is not None else None
        await ad.aclose()
        return ok, (check_stream(items, 50) if items is not None else None)

    report["achat"], report["astream"] = asyncio.run(amain())
    report["ok"] = all(v is not False for k, v in report.items() if k != "client")
    return report


def cmd_scale(a):
    """human (or aiohttp, for reference) async: RSS after `small` vs after `big` requests with
    64 in flight; then `streams` concurrent streams through one client, none lost."""
    ad = ADAPTERS[a.client]()
    out = {"client": a.client}

    async def main():
        e1, f1 = await run_inflight(ad.achat, a.small, a.width)
        gc.collect()
        out["small"] = a.small
        out["rss_small_mb"], out["maxrss_small_mb"] = rss_now_mb(), maxrss_mb()
        t0, c0 = perf(), cpu_now()
        e2, f2 = await run_inflight(ad.achat, a.big - a.small, a.width)
        out["big_req_per_s"] = (a.big - a.small) / (perf() - t0)
        out["big_cpu_us_per_req"] = (cpu_now() - c0) / (a.big - a.small) * 1e6
        gc.collect()
        out["big"] = a.big
        out["rss_big_mb"], out["maxrss_big_mb"] = rss_now_mb(), maxrss_mb()
        out["errors"] = e1 + e2
        out["first_error"] = f1 or f2

        # many concurrent streams through one client
        counts = {"complete": 0, "content_events": 0, "usage_events": 0, "errors": 0, "first": None}
        expected = spec.expected_stream_text(50)

        async def one():
            items = []
            try:
                async for item in ad.astream(50):
                    items.append(item)
            except Exception as exc:  # noqa: BLE001
                counts["errors"] += 1
                counts["first"] = counts["first"] or repr(exc)
                return
            text = "".join(i for i in items if isinstance(i, str))
            counts["content_events"] += sum(1 for i in items if isinstance(i, str) and i)
            counts["usage_events"] += items.count(USAGE)
            if text == expected:
                counts["complete"] += 1
            else:
                counts["errors"] += 1

        t0, c0 = perf(), cpu_now()
        await asyncio.gather(*(one() for _ in range(a.streams)))
        out["streams"] = {
            "n": a.streams,
            "complete": counts["complete"],
            "content_events": counts["content_events"],
            "expected_content_events": a.streams * (50 - 3),
            "usage_events": counts["usage_events"],
            "errors": counts["errors"],
            "first_error": counts["first"],
            "wall_s": perf() - t0,
            "cpu_s": cpu_now() - c0,
        }
        await ad.aclose()

    asyncio.run(main())
    return out


def cmd_versions(a):
    from importlib import metadata

    names = ["human", "httpx", "httpcore", "h11", "aiohttp", "openai", "httpx2", "httpcore2", "pydantic",
             "pydantic_core", "anyio"]
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    out["python"] = sys.version.split()[0]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["run", "probe", "scale", "versions"])
    p.add_argument("client", nargs="?", choices=sorted(ADAPTERS))
    p.add_argument("--cpu", type=int, default=1, help="CPU to pin to (-1: no pinning)")
    p.add_argument("--seq", type=int, default=2000)
    p.add_argument("--seq-warm", type=int, default=50)
    p.add_argument("--conc", type=int, default=5000)
    p.add_argument("--conc-warm", type=int, default=256)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--streams", type=int, default=500)
    p.add_argument("--stream-warm", type=int, default=20)
    p.add_argument("--long", type=int, default=20)
    p.add_argument("--long-warm", type=int, default=2)
    p.add_argument("--small", type=int, default=1000)
    p.add_argument("--big", type=int, default=100000)
    a = p.parse_args()
    pin(a.cpu)
    result = {"probe": cmd_probe, "run": cmd_run, "scale": cmd_scale, "versions": cmd_versions}[a.command](a)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
