#!/usr/bin/env python3
"""The benchmark: human against raw httpx, raw aiohttp and the openai SDK, in one run.

    python3 bench/run.py                 # full run (5 rounds), writes docs/performance.md
    python3 bench/run.py --quick         # short smoke run, writes bench/results/quick.md
    python3 bench/run.py --rounds 5
    python3 bench/gateway.py             # only the gateway benchmark (run.py runs it too, last)

Run as root on Debian: it installs nginx (apt) and its own venv in bench/.state/venv
(pip, pinned by bench/requirements.txt plus `pip install -e .` of this checkout), starts
nginx on 127.0.0.1:18480 with its own config and pid file in bench/.state/nginx, runs every
client in its own process pinned to CPU 1 (nginx's one worker is on CPU 0), and stops nginx
by PID at the end, also on failure or Ctrl-C. See bench/README.md for what each figure means.

Standard library only: it runs with whatever python3 the machine has.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import batch as batch_bench  # noqa: E402
import spec  # noqa: E402
from machine import (  # noqa: E402
    BENCH,
    DOC,
    KEEP_MARK,
    PY,
    REPO,
    RESULTS,
    SERVER_CPU,
    STATE,
    VENV,
    Nginx,
    ensure_nginx,
    ensure_venv,
    log,
    run_quiet,
)

CLIENTS = ["human", "human-async", "human-log", "httpx", "aiohttp", "openai"]
COLD_CLIENTS = ["human", "httpx", "aiohttp", "openai"]  # (a) and (a'): one per library
IMPORT_NAME = {"human": "human", "httpx": "httpx", "aiohttp": "aiohttp", "openai": "openai"}
HUMAN_ROWS = ("human", "human-async", "human-log")

CLIENT_CPU = 1
FOREIGN_RETRY = 0.25  # a client run during which other processes used more than this (cores) is re-run

FULL = dict(rounds=5, seq=2000, seq_warm=50, conc=5000, conc_warm=256, width=64, streams=500, stream_warm=20,
            long=20, long_warm=2, cold_runs=5, dry_runs=10, scale_small=1000, scale_big=100000,
            scale_streams=1000, batch_lines=100000, batch_latency_lines=20000, batch_rpm_window=60)
QUICK = dict(rounds=1, seq=300, seq_warm=20, conc=1000, conc_warm=128, width=64, streams=100, stream_warm=5,
             long=5, long_warm=1, cold_runs=3, dry_runs=5, scale_small=1000, scale_big=10000,
             scale_streams=1000, batch_lines=20000, batch_latency_lines=5000, batch_rpm_window=30)


# ---- measuring ---------------------------------------------------------------------------


def cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields[:8]) - idle, sum(fields[:8])


def foreign_load(seconds: float = 0.4) -> float:
    """Cores in use by everything else on the machine (we are idle while sampling)."""
    b0, t0 = cpu_times()
    time.sleep(seconds)
    b1, t1 = cpu_times()
    return (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1)


class Quiet:
    """Waits until the rest of the machine uses less than `limit` of a core, and records it."""

    def __init__(self, limit: float = 0.15, max_wait: float = 30.0):
        self.limit, self.max_wait = limit, max_wait
        self.seen: list[float] = []
        self.waited = 0.0

    def wait(self) -> float:
        start = time.monotonic()
        load = foreign_load()
        while load > self.limit and time.monotonic() - start < self.max_wait:
            load = foreign_load(1.0)
        self.waited += time.monotonic() - start
        self.seen.append(load)
        return load


class Runner:
    def __init__(self, args: argparse.Namespace, cfg: dict, env: dict[str, str], nginx: Nginx):
        self.args, self.cfg, self.env, self.nginx = args, cfg, env, nginx
        self.pin = not args.no_pin
        self.quiet = Quiet()

    def preexec(self):
        if self.pin:
            return lambda: os.sched_setaffinity(0, {CLIENT_CPU})
        return None

    def time_process(self, cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, env=env or self.env,
                           preexec_fn=self.preexec(), cwd=str(BENCH), text=True)
        return time.perf_counter() - t0, r.returncode, (r.stderr or r.stdout)[-600:]

    def worker(self, *argv: str, timeout: float = 300) -> dict:
        cmd = [str(PY), str(BENCH / "workers.py"), *argv, "--cpu", str(CLIENT_CPU if self.pin else -1)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, text=True,
                                cwd=str(BENCH))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise RuntimeError(f"worker timed out after {timeout}s: {' '.join(argv)}") from None
        except BaseException:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed ({proc.returncode}): {' '.join(argv)}\n{err[-3000:]}")
        return json.loads(out.strip().splitlines()[-1])

    # -- (a) and (a')

    def cold(self, commands: dict[str, list[str]], runs: int, label: str,
             env: dict[str, str] | None = None) -> tuple[dict[str, float], dict]:
        """Median wall time of fresh processes, one warm-up run each, round-robin."""
        load = self.quiet.wait()
        times: dict[str, list[float]] = {k: [] for k in commands}
        failures: dict[str, str] = {}
        names = list(commands)
        for i in range(runs + 1):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                wall, rc, err = self.time_process(commands[name], env)
                if rc != 0:
                    failures[name] = f"exit {rc}: {err.strip()}"
                elif i > 0:
                    times[name].append(wall)
        med = {k: statistics.median(v) * 1e3 for k, v in times.items() if v and k not in failures}
        return med, {"failures": failures, "foreign_load": load, "runs": runs, "label": label}

    def imports(self, clients: list[str]) -> tuple[dict[str, float], dict]:
        cmds = {"baseline": [str(PY), "-c", "pass"]}
        cmds.update({c: [str(PY), "-c", f"import {IMPORT_NAME[c]}"] for c in clients})
        med, info = self.cold(cmds, self.cfg["cold_runs"], "import")
        info["raw_ms"] = med
        base = med.get("baseline")
        return {c: med[c] - base for c in clients if c in med and base is not None}, info

    def cold_calls(self, clients: list[str]) -> tuple[dict[str, float], dict]:
        cmds = {"baseline": [str(PY), str(BENCH / "cold.py"), "none"]}
        cmds.update({c: [str(PY), str(BENCH / "cold.py"), c] for c in clients})
        med, info = self.cold(cmds, self.cfg["cold_runs"], "cold first call")
        info["raw_ms"] = med
        base = med.get("baseline")
        return {c: med[c] - base for c in clients if c in med and base is not None}, info

    def dry_run(self) -> dict:
        cmds = {
            "human chat --dry-run hi": [str(VENV / "bin" / "human"), "chat", "--dry-run", "hi"],
            'python -c "import httpx"': [str(PY), "-c", "import httpx"],
        }
        env = {**self.env, "HUMAN_PROVIDER": f"custom:{spec.BASE}", "HUMAN_MODEL": spec.MODEL}
        med, info = self.cold(cmds, self.cfg["dry_runs"], "dry-run", env)
        return {"ms": med, **info}

    # -- (b) to (e)

    def run_client(self, client: str) -> dict:
        """One worker run; repeated (at most twice) when other processes were busy during it."""
        best = None
        for attempt in range(3):
            result = self._run_client(client)
            result["attempt"] = attempt + 1
            if best is None or result["foreign_load_during"] < best["foreign_load_during"]:
                best = result
            if result["foreign_load_during"] <= FOREIGN_RETRY:
                break
            log(f"  {client}: other processes used {result['foreign_load_during']:.2f} of a core during the "
                "run; running it again")
        return best

    def _run_client(self, client: str) -> dict:
        c = self.cfg
        load = self.quiet.wait()
        n0, t0 = self.nginx.cpu_seconds(), time.monotonic()
        busy0, ch0 = cpu_times()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
        result = self.worker("run", client, "--seq", str(c["seq"]), "--seq-warm", str(c["seq_warm"]),
                             "--conc", str(c["conc"]), "--conc-warm", str(c["conc_warm"]),
                             "--width", str(c["width"]), "--streams", str(c["streams"]),
                             "--stream-warm", str(c["stream_warm"]), "--long", str(c["long"]),
                             "--long-warm", str(c["long_warm"]))
        wall = time.monotonic() - t0
        busy1, ch1 = cpu_times()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
        nginx_cpu = self.nginx.cpu_seconds() - n0
        worker_cpu = (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)
        busy = (busy1 - busy0) / os.sysconf("SC_CLK_TCK")
        result["foreign_load"] = load
        result["foreign_load_during"] = max(0.0, (busy - worker_cpu - nginx_cpu) / wall)
        result["nginx_busy"] = nginx_cpu / wall
        return result

    def scale(self, client: str) -> dict:
        c = self.cfg
        load = self.quiet.wait()
        result = self.worker("scale", client, "--small", str(c["scale_small"]), "--big", str(c["scale_big"]),
                             "--width", str(c["width"]), "--streams", str(c["scale_streams"]), timeout=1800)
        result["foreign_load"] = load
        return result


# ---- figures -----------------------------------------------------------------------------

# key, label, better ("low"/"high"), decimals
FIGURES = [
    ("import_ms", "(a) import (ms)", "low", 0),
    ("cold_ms", "(a′) cold first call (ms)", "low", 0),
    ("seq_median_ms", "(b) seq median (ms)", "low", 3),
    ("seq_p99_ms", "(b) seq p99 (ms)", "low", 3),
    ("seq_cpu_us", "(b) seq CPU/req (µs)", "low", 0),
    ("conc_rps", "(c) conc req/s, 64 in flight", "high", 0),
    ("conc_cpu_us", "(c) conc CPU/req (µs)", "low", 0),
    ("ttfc_median_ms", "(d) stream TTFC median (ms)", "low", 3),
    ("ttfc_p99_ms", "(d) stream TTFC p99 (ms)", "low", 3),
    ("stream_total_ms", "(d) stream total median (ms)", "low", 3),
    ("stream_cpu_us", "(d) CPU per 50-chunk stream (µs)", "low", 0),
    ("chunk50_cpu_us", "(d) CPU per chunk, 50-chunk stream (µs)", "low", 1),
    ("chunk5000_cpu_us", "(d) CPU per chunk, 5,000-chunk stream (µs)", "low", 1),
    ("peak_rss_mb", "(e) peak RSS after (b)+(c) (MiB)", "low", 1),
]


def figures_of_run(r: dict) -> dict[str, float]:
    f = {}
    if "seq" in r:
        f.update(seq_median_ms=r["seq"]["lat_median_ms"], seq_p99_ms=r["seq"]["lat_p99_ms"],
                 seq_cpu_us=r["seq"]["cpu_us_per_req"])
    if "conc" in r:
        f.update(conc_rps=r["conc"]["req_per_s"], conc_cpu_us=r["conc"]["cpu_us_per_req"])
        f["peak_rss_mb"] = r["peak_rss_mb"]
    if "stream" in r:
        s = r["stream"]
        f.update(ttfc_median_ms=s["ttfc_median_ms"], ttfc_p99_ms=s["ttfc_p99_ms"],
                 stream_total_ms=s["total_median_ms"], stream_cpu_us=s["cpu_us_per_stream"],
                 chunk50_cpu_us=s["cpu_us_per_chunk"])
    if "stream5000" in r:
        f["chunk5000_cpu_us"] = r["stream5000"]["cpu_us_per_chunk"]
    return {k: v for k, v in f.items() if v is not None}


def errors_of_run(r: dict) -> int:
    return sum(r[p]["errors"] for p in ("seq", "conc", "stream", "stream5000") if p in r)


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(v: float | None, decimals: int) -> str:
    if v is None:
        return "—"
    if decimals == 0:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{decimals}f}"


def ratio(v: float | None, ref: float | None) -> str:
    if v is None or ref is None or ref == 0:
        return "—"
    x = v / ref
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


# ---- the run -----------------------------------------------------------------------------


def machine_info(nginx_bin: str) -> dict:
    info = {"date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpus"] = os.cpu_count()
    try:
        kb = int(next(x for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal")).split()[1])
        info["memory_gib"] = round(kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    try:
        info["os"] = next(x.split("=", 1)[1].strip('"') for x in Path("/etc/os-release").read_text().splitlines()
                          if x.startswith("PRETTY_NAME="))
    except (OSError, StopIteration):
        info["os"] = platform.platform()
    info["kernel"] = platform.release()
    r = run_quiet([nginx_bin, "-v"])
    info["nginx"] = r.stdout.strip().split("/")[-1]
    try:
        commit = run_quiet(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]).stdout.strip()
        dirty = run_quiet(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"]).stdout.strip()
        info["human_commit"] = commit + (" + uncommitted changes in src/" if dirty else "")
    except OSError:
        pass
    return info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short smoke run (1 round, small counts)")
    p.add_argument("--rounds", type=int, help="counted rounds (default 5; --quick: 1)")
    p.add_argument("--clients", help=f"comma-separated subset of {','.join(CLIENTS)}")
    p.add_argument("--out", help="markdown output (default docs/performance.md; --quick: bench/results/quick.md)")
    p.add_argument("--no-pin", action="store_true", help="do not pin client and server to CPUs")
    p.add_argument("--no-scale", action="store_true", help="skip the scaling checks")
    p.add_argument("--no-batch", action="store_true", help="skip the `human batch` figures")
    p.add_argument("--batch-only", action="store_true",
                   help="only the `human batch` figures (writes bench/results/batch.md, or batch-quick.md)")
    p.add_argument("--serve", action="store_true", help="only start the target and keep it up until Ctrl-C")
    p.add_argument("--no-gateway", action="store_true",
                   help="skip the gateway benchmark (bench/gateway.py) that follows the client benchmark")
    args = p.parse_args()

    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    clients = CLIENTS if not args.clients else [c.strip() for c in args.clients.split(",")]
    for c in clients:
        if c not in CLIENTS:
            p.error(f"unknown client {c!r}")
    out_md = Path(args.out) if args.out else (RESULTS / "quick.md" if args.quick else DOC)
    if (os.cpu_count() or 1) < 2 and not args.no_pin:
        log("fewer than 2 CPUs: running without pinning")
        args.no_pin = True

    started = time.monotonic()
    nginx_bin = ensure_nginx()
    ensure_venv()
    STATE.mkdir(parents=True, exist_ok=True)
    human_cfg = STATE / "human-config.json"  # an empty config, so no user config is read
    human_cfg.write_text("{}\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HUMAN_", "HU_", "OPENAI_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HU_CONFIG_PATH=str(human_cfg), PATH=f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}")

    nginx = Nginx(nginx_bin, pin=not args.no_pin)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        nginx.start()
        if args.serve:
            log("serving until Ctrl-C (workers: bench/.state/venv/bin/python bench/workers.py run CLIENT ...)")
            while nginx.proc.poll() is None:
                time.sleep(1)
            return 1
        if args.batch_only:
            return batch_only(args, cfg, env)
        runner = Runner(args, cfg, env, nginx)
        report = measure(runner, clients, cfg, args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        nginx.stop()

    report["machine"] = machine_info(nginx_bin)
    report["config"] = {**cfg, "quick": args.quick, "pinned": not args.no_pin, "clients": clients}
    report["elapsed_s"] = time.monotonic() - started
    RESULTS.mkdir(exist_ok=True)
    # a full run keeps its own file; a quick run overwrites the last quick one
    json_path = RESULTS / ("quick.json" if args.quick else time.strftime("%Y%m%d-%H%M%S") + ".json")
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    md = render(report, json_path)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    kept = ""
    if out_md.exists():
        old = out_md.read_text()
        if KEEP_MARK in old:
            kept = old.split(KEEP_MARK, 1)[1]
    out_md.write_text(md + "\n" + KEEP_MARK + (kept if kept else "\n"))
    log(f"wrote {out_md.relative_to(REPO) if out_md.is_relative_to(REPO) else out_md} and "
        f"{json_path.relative_to(REPO)} in {report['elapsed_s'] / 60:.1f} min")
    print()
    print(md)
    status = 1 if report["errors"] else 0
    if not args.no_gateway and not args.clients:
        import gateway  # human gateway beside the LiteLLM proxy (issue 15), on the same machine, after

        status = max(status, gateway.main(["--quick"] if args.quick else []))
    return status


def measure(runner: Runner, clients: list[str], cfg: dict, args) -> dict:
    report: dict = {"rounds": [], "unavailable": {}, "errors": 0}
    versions = runner.worker("versions")
    report["versions"] = versions
    log("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))

    # Is human usable yet? Probe it before counting on it.
    live = list(clients)
    if any(c in HUMAN_ROWS for c in clients):
        try:
            probe = runner.worker("probe", "human", timeout=120)
            if not probe.get("ok"):
                raise RuntimeError(f"wrong answers: {probe}")
        except Exception as exc:  # noqa: BLE001
            reason = str(exc).strip().splitlines()[-1][:300]
            log(f"human is unavailable, its rows are skipped: {reason}")
            for c in HUMAN_ROWS:
                report["unavailable"][c] = reason
            live = [c for c in clients if c not in HUMAN_ROWS]
    for c in clients:
        if c not in live or c in HUMAN_ROWS:
            continue
        try:
            probe = runner.worker("probe", c, timeout=120)
            if not probe.get("ok"):
                raise RuntimeError(f"wrong answers: {probe}")
        except Exception as exc:  # noqa: BLE001
            report["unavailable"][c] = str(exc).strip().splitlines()[-1][:300]
            live.remove(c)
    cold_live = [c for c in COLD_CLIENTS if c in live]
    # `import human` works even while the client does not: measure it whenever asked for
    import_clients = [c for c in COLD_CLIENTS if c in clients]

    for rnd in range(cfg["rounds"]):
        k = rnd % max(1, len(live))
        order = live[k:] + live[:k]
        log(f"round {rnd + 1}/{cfg['rounds']}: order {', '.join(order)}")
        rr: dict = {"order": order, "runs": {}}
        rr["import_ms"], rr["import_info"] = runner.imports(import_clients)
        log("  (a) import ms: " + ", ".join(f"{c} {v:.0f}" for c, v in rr["import_ms"].items()))
        if cold_live:
            rr["cold_ms"], rr["cold_info"] = runner.cold_calls(cold_live)
            log("  (a') cold first call ms: " + ", ".join(f"{c} {v:.0f}" for c, v in rr["cold_ms"].items()))
            report["errors"] += len(rr["cold_info"]["failures"])
        for c in order:
            t0 = time.monotonic()
            try:
                r = runner.run_client(c)
            except RuntimeError as exc:
                log(f"  {c}: FAILED: {exc}")
                rr["runs"][c] = {"failed": str(exc)[-2000:]}
                report["errors"] += 1
                continue
            rr["runs"][c] = r
            errs = errors_of_run(r)
            report["errors"] += errs
            f = figures_of_run(r)
            parts = [f"seq {f['seq_cpu_us']:.0f} µs/req" if "seq_cpu_us" in f else "",
                     f"conc {f['conc_rps']:.0f} req/s" if "conc_rps" in f else "",
                     f"stream {f['stream_cpu_us']:.0f} µs" if "stream_cpu_us" in f else "",
                     f"RSS {f['peak_rss_mb']:.1f} MiB" if "peak_rss_mb" in f else ""]
            log(f"  {c}: {', '.join(x for x in parts if x)}, errors {errs}, "
                f"other load {r['foreign_load']:.2f}/{r['foreign_load_during']:.2f}, "
                f"nginx busy {r['nginx_busy']:.2f} ({time.monotonic() - t0:.0f}s)")
        if "human" in clients:
            rr["dry_run"] = runner.dry_run()
            if rr["dry_run"]["failures"]:
                report["unavailable"]["dry-run"] = next(iter(rr["dry_run"]["failures"].values()))[-300:]
            log("  dry-run ms: " + ", ".join(f"{k} {v:.0f}" for k, v in rr["dry_run"]["ms"].items()))
        report["rounds"].append(rr)

    if not args.no_scale:
        report["scale"] = {}
        for c in ("human", "aiohttp"):
            if c not in live:
                continue
            log(f"scaling: {c} async, RSS after {cfg['scale_small']:,} vs {cfg['scale_big']:,} requests; "
                f"{cfg['scale_streams']:,} concurrent streams")
            try:
                s = runner.scale(c)
            except RuntimeError as exc:
                log(f"  {c}: FAILED: {exc}")
                report["scale"][c] = {"failed": str(exc)[-2000:]}
                report["errors"] += 1
                continue
            report["scale"][c] = s
            report["errors"] += s["errors"] + s["streams"]["errors"]
            log(f"  RSS {s['rss_small_mb']:.1f} -> {s['rss_big_mb']:.1f} MiB; streams complete "
                f"{s['streams']['complete']}/{s['streams']['n']}, content events "
                f"{s['streams']['content_events']}/{s['streams']['expected_content_events']}")

    if not args.no_batch and "human" in live:
        report["batch"] = measure_batch(cfg, runner.env, args)
        report["errors"] += report["batch"]["errors"]

    # pool: median over rounds
    pooled: dict[str, dict[str, float]] = {}
    for c in clients:
        figs: dict[str, list[float]] = {}
        for rr in report["rounds"]:
            for key in ("import_ms", "cold_ms"):
                if c in rr.get(key, {}):
                    figs.setdefault(key, []).append(rr[key][c])
            run = rr["runs"].get(c)
            if run and "failed" not in run:
                for key, v in figures_of_run(run).items():
                    figs.setdefault(key, []).append(v)
        pooled[c] = {k: med(v) for k, v in figs.items()}
    report["pooled"] = pooled
    dry: dict[str, list[float]] = {}
    for rr in report["rounds"]:
        for k, v in rr.get("dry_run", {}).get("ms", {}).items():
            dry.setdefault(k, []).append(v)
    report["dry_run_ms"] = {k: med(v) for k, v in dry.items()}
    report["foreign_load_max"] = max(runner.quiet.seen) if runner.quiet.seen else None
    report["foreign_load_checks"] = len(runner.quiet.seen)
    report["foreign_load_over"] = sum(1 for x in runner.quiet.seen if x > runner.quiet.limit)
    during = [r["foreign_load_during"] for rr in report["rounds"] for r in rr["runs"].values()
              if "foreign_load_during" in r]
    report["foreign_load_during_max"] = max(during, default=None)
    report["foreign_load_during_median"] = med(during)
    report["nginx_busy_max"] = max((r.get("nginx_busy", 0) for rr in report["rounds"] for r in rr["runs"].values()),
                                   default=None)
    return report


def measure_batch(cfg: dict, env: dict[str, str], args) -> dict:
    """The `human batch` figures (bench/batch.py): the CLI on the client CPU, its upstream
    (nginx, or bench/slow_target.py) on the server CPU."""
    pin = not args.no_pin
    try:
        return batch_bench.measure(human=VENV / "bin" / "human", state=STATE, cfg=cfg, env=env,
                                   client_cpu=CLIENT_CPU if pin else None, server_cpu=SERVER_CPU if pin else None,
                                   log=log)
    except Exception as exc:  # noqa: BLE001 - one failed section must not lose the rest of the run
        log(f"batch: FAILED: {exc}")
        return {"errors": 1, "failed": str(exc)[-2000:]}


def batch_only(args, cfg: dict, env: dict[str, str]) -> int:
    result = measure_batch(cfg, env, args)
    if "failed" in result:
        return 1
    RESULTS.mkdir(exist_ok=True)
    name = "batch-quick" if args.quick else "batch"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    md = "\n".join(batch_bench.render(result, args.quick))
    (RESULTS / f"{name}.md").write_text(md + "\n")
    print(md)
    return 1 if result["errors"] else 0


# ---- markdown ----------------------------------------------------------------------------

BUDGETS = [
    # label, client figure, reference client, reference figure, op, limit
    ("`import human` ≤ 0.5 × `import httpx`", ("human", "import_ms"), ("httpx", "import_ms"), "≤", 0.5),
    ("cold first call ≤ 1.2 × raw httpx", ("human", "cold_ms"), ("httpx", "cold_ms"), "≤", 1.2),
    ("sync sequential CPU/request ≤ 0.6 × raw httpx", ("human", "seq_cpu_us"), ("httpx", "seq_cpu_us"), "≤", 0.6),
    ("async req/s at 64 in flight ≥ 0.8 × raw aiohttp", ("human", "conc_rps"), ("aiohttp", "conc_rps"), "≥", 0.8),
    # issue 10: CPU per request is the steadier figure on a shared machine; against the lean floor
    ("async CPU/request at 64 in flight ≤ 1.25 × raw aiohttp", ("human", "conc_cpu_us"), ("aiohttp", "conc_cpu_us"),
     "≤", 1.25),
    ("CPU per 50-chunk stream ≤ 1.5 × raw aiohttp", ("human", "stream_cpu_us"), ("aiohttp", "stream_cpu_us"), "≤",
     1.5),
    ("peak RSS ≤ 1.2 × raw httpx", ("human", "peak_rss_mb"), ("httpx", "peak_rss_mb"), "≤", 1.2),
    ("`human chat --dry-run hi` wall ≤ 1.5 × `python -c \"import httpx\"`", ("dry", "human chat --dry-run hi"),
     ("dry", 'python -c "import httpx"'), "≤", 1.5),
    # issue 12: what the exchange log costs (the human row is the same client with it off)
    ("logging on: sync sequential CPU/request ≤ 1.15 × logging off", ("human-log", "seq_cpu_us"),
     ("human", "seq_cpu_us"), "≤", 1.15),
    ("logging on: async req/s at 64 in flight ≥ 0.85 × logging off", ("human-log", "conc_rps"),
     ("human", "conc_rps"), "≥", 0.85),
]

UNITS = {"import_ms": "ms", "cold_ms": "ms", "seq_cpu_us": "µs", "conc_rps": "req/s", "conc_cpu_us": "µs",
         "stream_cpu_us": "µs", "peak_rss_mb": "MiB"}


def render(report: dict, json_path: Path) -> str:
    m, v, cfg = report["machine"], report["versions"], report["config"]
    pooled = report["pooled"]
    clients = [c for c in cfg["clients"]]
    quick = cfg["quick"]
    L: list[str] = []
    w = L.append
    w("# Performance: human against raw httpx, raw aiohttp and the openai SDK")
    w("")
    w("Written by `python3 bench/run.py`" + (" --quick" if quick else "") + f" on {m['date_utc']}. "
      "Method, and what each figure means: `bench/README.md`. Raw data: "
      f"`{json_path.relative_to(REPO)}`.")
    w("")
    if quick:
        w("> **Quick smoke run** (reduced counts, 1 round): indicative only, not the figures the budgets are "
          "judged on.")
        w("")
    if report["errors"]:
        w(f"> **INVALID RUN: {report['errors']} error(s)** (wrong answers, exceptions or failed phases). "
          "Figures below are not to be trusted; see the JSON file.")
        w("")
    if report["unavailable"]:
        for c, why in report["unavailable"].items():
            w(f"> **{c}: unavailable** in this run — {why}")
        w("")
    w("## Machine and versions")
    w("")
    w(f"- {m.get('cpus')} vCPU, {m.get('cpu', '?')}, {m.get('memory_gib', '?')} GiB RAM; {m.get('os')}, "
      f"Linux {m.get('kernel')}; nginx {m.get('nginx')}.")
    w(f"- CPython {v.get('python')} (bench venv). human {v.get('human', '?')} at commit "
      f"{m.get('human_commit', '?')}.")
    w(f"- httpx {v.get('httpx')} / httpcore {v.get('httpcore')} / h11 {v.get('h11')}; aiohttp {v.get('aiohttp')}; "
      f"openai {v.get('openai')} (on httpx2 {v.get('httpx2', '—')}, pydantic {v.get('pydantic')}).")
    pin = "client processes pinned to CPU 1, nginx's one worker to CPU 0" if cfg["pinned"] else "no CPU pinning"
    w(f"- {cfg['rounds']} round(s), figures are the median over rounds; {pin}.")
    w(f"- Other processes on the machine: before a measurement, above 0.15 of a core "
      f"{report['foreign_load_over']} of {report['foreign_load_checks']} times (at most "
      f"{report['foreign_load_max']:.2f}); during the kept client runs, median "
      f"{report['foreign_load_during_median'] or 0:.2f} and at most {report['foreign_load_during_max'] or 0:.2f} "
      f"of a core (a run above {FOREIGN_RETRY} is repeated, up to twice). nginx's worker was at most "
      f"{(report['nginx_busy_max'] or 0):.2f} of a core busy during a client run, so it is not the bottleneck.")
    w(f"- Counts: (b) {cfg['seq_warm']} warm-up + {cfg['seq']:,} requests; (c) {cfg['conc_warm']} warm-up + "
      f"{cfg['conc']:,} requests, {cfg['width']} in flight; (d) {cfg['stream_warm']} warm-up + {cfg['streams']} "
      f"streams of 50 chunks, {cfg['long_warm']} + {cfg['long']} of 5,000 chunks; (a)/(a′) median of "
      f"{cfg['cold_runs']} fresh processes after 1 warm-up.")
    w("")

    # results
    names = {"human": "human", "human-async": "human (async API)", "human-log": "human (log on)",
             "httpx": "httpx (raw)", "aiohttp": "aiohttp (raw)", "openai": "openai"}
    w("## Results")
    w("")
    w("| figure | " + " | ".join(names[c] for c in clients) + " |")
    w("|---|" + "---:|" * len(clients))
    for key, label, _, dec in FIGURES:
        cells = []
        for c in clients:
            val = pooled.get(c, {}).get(key)
            cells.append("n/a" if val is None and c in report["unavailable"] else fmt(val, dec))
        w(f"| {label} | " + " | ".join(cells) + " |")
    w("")
    w("Which API each column uses: human: `Client` for (a′), (b) and (d), `AsyncClient` for (c); human (async "
      "API): `AsyncClient` for (b) as sequential awaits and (d) as `async for`; human (log on): as human, with "
      "`log=` a SQLite file (every exchange journaled in the process, flushed inside each measured phase; its "
      "import into SQLite is measured apart, under the budgets); "
      "httpx: `httpx.Client`, "
      "`httpx.AsyncClient` for (c); aiohttp: one `ClientSession`, async throughout; openai: `OpenAI`, "
      "`AsyncOpenAI` for (c). — means not measured for that column.")
    w("")
    for ref in ("httpx", "aiohttp"):
        if ref not in clients or ref in report["unavailable"]:
            continue
        w(f"### Ratios vs raw {ref} (client ÷ {ref}; for req/s higher is better, for everything else lower is "
          "better)")
        w("")
        w("| figure | " + " | ".join(names[c] for c in clients) + " |")
        w("|---|" + "---:|" * len(clients))
        for key, label, _, _ in FIGURES:
            refv = pooled.get(ref, {}).get(key)
            cells = [("n/a" if pooled.get(c, {}).get(key) is None and c in report["unavailable"]
                      else ratio(pooled.get(c, {}).get(key), refv)) for c in clients]
            w(f"| {label} | " + " | ".join(cells) + " |")
        w("")

    # budgets
    w("## Budgets")
    w("")
    w("| budget | human | reference | ratio | verdict |")
    w("|---|---:|---:|---:|---|")
    dry = report.get("dry_run_ms", {})
    for label, (c, key), (rc, rkey), op, limit in BUDGETS:
        if c == "dry":
            val, refv, unit = dry.get(key), dry.get(rkey), "ms"
            missing = "dry-run" in report["unavailable"] or val is None
        else:
            val, refv, unit = pooled.get(c, {}).get(key), pooled.get(rc, {}).get(rkey), UNITS[key]
            missing = val is None
        if missing or refv is None:
            w(f"| {label} | n/a | {fmt(refv, 1) + ' ' + unit if refv else 'n/a'} | — | not measured |")
            continue
        x = val / refv
        ok = x <= limit if op == "≤" else x >= limit
        w(f"| {label} | {fmt(val, 1)} {unit} | {fmt(refv, 1)} {unit} | {x:.2f} | "
          f"{'**pass**' if ok else '**FAIL**'} |")
    imports = [r["log_import"]["cpu_us_per_row"] for rr in report["rounds"]
               for r in [rr["runs"].get("human-log") or {}] if (r.get("log_import") or {}).get("cpu_us_per_row")]
    if imports:
        w("")
        w(f"With the log on, each exchange is journaled by the process that made it (what the two log budgets "
          f"count); turning the journal into SQLite rows is left to the next reader of the log, or to the writer "
          f"once idle: {med(imports):,.0f} µs of CPU an exchange (median over rounds), not in the figures above.")
    if "human-async" in clients and "human-async" not in report["unavailable"]:
        ha, ag = pooled.get("human-async", {}).get("stream_cpu_us"), pooled.get("aiohttp", {}).get("stream_cpu_us")
        if ha and ag:
            w("")
            w(f"The stream budget is judged on the sync iterator (the (d) method). Through `AsyncClient`, the same "
              f"figure is {ha:,.0f} µs, {ha / ag:.2f} × raw aiohttp.")
    w("")

    # scaling
    w("## Scaling")
    w("")
    w("CPU per chunk, 50-chunk vs 5,000-chunk streams (flat = the 5,000-chunk figure is no more than 1.2 × the "
      "50-chunk one; the 50-chunk figure also carries the request's own cost):")
    w("")
    w("| client | 50-chunk (µs/chunk) | 5,000-chunk (µs/chunk) | ratio | flat? |")
    w("|---|---:|---:|---:|---|")
    for c in clients:
        if c == "openai":
            continue
        a, b = pooled.get(c, {}).get("chunk50_cpu_us"), pooled.get(c, {}).get("chunk5000_cpu_us")
        if c in report["unavailable"] or a is None or b is None:
            w(f"| {names[c]} | n/a | n/a | — | not measured |")
            continue
        w(f"| {names[c]} | {a:.1f} | {b:.1f} | {b / a:.2f} | {'yes' if b <= 1.2 * a else '**no**'} |")
    w("")
    scale = report.get("scale")
    if scale:
        w(f"Async, {cfg['width']} in flight through one client: RSS after {cfg['scale_small']:,} requests vs after "
          f"{cfg['scale_big']:,} (no growth = at most 5% + 2 MiB more), and {cfg['scale_streams']:,} concurrent "
          "streams through one client (none lost = every stream complete and every content event counted):")
        w("")
        w("| client | RSS after small (MiB) | RSS after big (MiB) | growth | req/s over the big run | "
          "streams complete | content events | verdict |")
        w("|---|---:|---:|---:|---:|---:|---:|---|")
        for c, s in scale.items():
            if "failed" in s:
                w(f"| {names[c]} | failed | | | | | | **FAIL** |")
                continue
            grow = s["rss_big_mb"] - s["rss_small_mb"]
            no_growth = s["rss_big_mb"] <= s["rss_small_mb"] * 1.05 + 2
            st = s["streams"]
            none_lost = st["complete"] == st["n"] and st["content_events"] == st["expected_content_events"] \
                and st["errors"] == 0
            verdict = ("**pass**" if no_growth and none_lost and s["errors"] == 0 else
                       "**FAIL**" + ("" if no_growth else " (RSS grew)") + ("" if none_lost else " (streams lost)"))
            w(f"| {names[c]} | {s['rss_small_mb']:.1f} | {s['rss_big_mb']:.1f} | {grow:+.1f} MiB | "
              f"{s['big_req_per_s']:,.0f} | {st['complete']:,}/{st['n']:,} | "
              f"{st['content_events']:,}/{st['expected_content_events']:,} | {verdict} |")
        w("")
        w("aiohttp's row is a reference for what the transport itself does.")
        w("")

    if report.get("batch") and "failed" not in report["batch"]:
        L.extend(batch_bench.render(report["batch"], quick))
    elif report.get("batch"):
        w(f"## Batch (`human batch`)\n\n**FAILED**: {report['batch']['failed'][-300:]}\n")

    if dry:
        w("## Start-up of the CLI")
        w("")
        w("| command | wall median (ms) |")
        w("|---|---:|")
        for k, val in dry.items():
            w(f"| `{k}` | {val:.0f} |")
        w("")
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
