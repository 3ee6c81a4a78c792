"""The batch figures (issue 16), run by `bench/run.py`: `human batch` (the CLI, as a user
runs it) pinned to the client CPU, against nginx's fixed answers (zero latency) and
against `slow_target.py` (a fixed 100 ms latency), both on the server CPU.

    zero latency      100,000 lines, --concurrency 256: requests/s, and the peak RSS of the
                      whole process (the input is streamed: memory must not grow with it)
    100 ms latency    20,000 lines, --concurrency 256: requests/s (Little's law caps this
                      at 256 / 0.1 s = 2,560)
    --rpm 600         requests that reach the upstream in the 60 s after the first one

Runs pass `--no-log`: what the exchange log costs is the bench's `human-log` row.
Requests/s is over the sending phase (the summary's `sent / elapsed`: first send to last
result); the whole command's wall time (start-up and the check of every line included) is
shown beside it. Every run must end with every line succeeded, or the run is invalid.
Standard library only: it runs under whatever python3 runs `bench/run.py`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import spec  # noqa: E402

LATENCY_PORT = spec.PORT + 1  # beside the nginx target (BENCH_PORT moves both)
CONCURRENCY = 256
BUDGETS = {"zero_rps": 3000.0, "latency_rps": 2000.0, "rss_mib": 100.0, "rpm_tolerance": 0.01}


def write_input(path: Path, lines: int) -> Path:
    """`lines` copies of the bench's request (system + user message, one tool), as OpenAI
    Batch lines with distinct custom_ids."""
    if path.exists() and path.stat().st_size and sum(1 for _ in path.open("rb")) == lines:
        return path
    body = json.dumps(spec.request_body(), separators=(",", ":"))
    with open(path, "w") as file:
        for number in range(lines):
            file.write(f'{{"custom_id":"r{number}","method":"POST","url":"/v1/chat/completions","body":{body}}}\n')
    return path


def write_config(path: Path, base_url: str) -> Path:
    path.write_text(json.dumps({"default_provider": "bench", "default_model": spec.MODEL,
                                "providers": [{"name": "bench", "base_url": base_url, "api_key": spec.API_KEY}],
                                "reliability": {"provider_retries": 0}}) + "\n")
    os.chmod(path, 0o600)
    return path


def run_batch(human: Path, source: Path, output: Path, config: Path, *more: str, cpu: int | None, env: dict,
              stop_after: Callable[[], bool] | None = None, timeout: float = 1800) -> dict[str, Any]:
    """One `human batch … --json` run: its summary, wall time, exit code and peak RSS.
    `stop_after` is polled; when it says so the run is ended (SIGTERM: what it wrote stays,
    line by line; SIGINT may be ignored by a process started in the background)."""
    output.unlink(missing_ok=True)
    cmd = [str(human), "batch", str(source), "-o", str(output), "--config", str(config), "--json", "--no-log", *more]
    preexec = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    began = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=preexec)
    try:
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if stop_after is not None and stop_after():
                process.send_signal(signal.SIGTERM)
                stop_after = None
            if time.monotonic() > deadline:
                process.kill()
            time.sleep(0.05)
    except BaseException:
        process.kill()
        raise
    finally:
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - began
    try:
        summary = json.loads(stdout.decode() or "null")
    except ValueError:
        summary = None
    return {"rc": process.returncode, "wall_s": wall, "summary": summary, "stderr": stderr.decode()[-2000:]}


def peak_rss_mib(human: Path, source: Path, output: Path, config: Path, *more: str, cpu: int | None,
                 env: dict) -> tuple[dict[str, Any], float]:
    """A run measured with os.wait4, so its own peak RSS is known (not the maximum over
    every child this process ever had, as RUSAGE_CHILDREN would give)."""
    output.unlink(missing_ok=True)
    cmd = [str(human), "batch", str(source), "-o", str(output), "--config", str(config), "--json", "--no-log", *more]
    preexec = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    began = time.perf_counter()
    with open(os.devnull, "wb") as devnull, open(output.with_suffix(".summary.json"), "wb") as summary_file:
        process = subprocess.Popen(cmd, stdout=summary_file, stderr=devnull, env=env, preexec_fn=preexec)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    try:
        summary = json.loads(output.with_suffix(".summary.json").read_text() or "null")
    except ValueError:
        summary = None
    return {"rc": process.returncode, "wall_s": wall, "summary": summary}, usage.ru_maxrss / 1024


def start_upstream(delay: float, cpu: int | None) -> subprocess.Popen:
    cmd = [sys.executable, str(BENCH / "slow_target.py"), "--port", str(LATENCY_PORT), "--delay", str(delay)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.kill()
        raise RuntimeError("bench/slow_target.py did not start")
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()


def upstream_stats() -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{spec.HOST}:{LATENCY_PORT}/stats", timeout=10) as answer:
        return json.loads(answer.read())


def _rates(run: dict[str, Any], lines: int) -> dict[str, Any]:
    summary = run["summary"] or {}
    ok = run["rc"] == 0 and summary.get("succeeded") == lines and summary.get("failed") == 0
    elapsed = summary.get("elapsed") or 0.0
    return {"lines": lines, "ok": ok, "rc": run["rc"], "rps": summary.get("sent", 0) / elapsed if elapsed else 0.0,
            "rps_wall": lines / run["wall_s"], "wall_s": run["wall_s"], "elapsed_s": elapsed}


def measure(*, human: Path, state: Path, cfg: dict, env: dict, client_cpu: int | None, server_cpu: int | None,
            log: Callable[[str], None]) -> dict[str, Any]:
    work = state / "batch"
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"errors": 0, "concurrency": CONCURRENCY}
    nginx_config = write_config(work / "nginx.json", spec.BASE)
    latency_config = write_config(work / "latency.json", f"http://{spec.HOST}:{LATENCY_PORT}/v1")

    lines = cfg["batch_lines"]
    log(f"batch: {lines:,} lines against nginx (zero latency), --concurrency {CONCURRENCY}")
    run, rss = peak_rss_mib(human, write_input(work / f"in-{lines}.jsonl", lines), work / "out.jsonl",
                            nginx_config, "--concurrency", str(CONCURRENCY), cpu=client_cpu, env=env)
    result["zero"] = {**_rates(run, lines), "rss_mib": rss}
    log(f"  {result['zero']['rps']:,.0f} req/s sending ({result['zero']['rps_wall']:,.0f} over the whole command), "
        f"peak RSS {rss:.1f} MiB" + ("" if result["zero"]["ok"] else f"  INVALID: {run}"))

    lines = cfg["batch_latency_lines"]
    log(f"batch: {lines:,} lines against a 100 ms upstream, --concurrency {CONCURRENCY}")
    upstream = start_upstream(0.1, server_cpu)
    try:
        run = run_batch(human, write_input(work / f"in-{lines}.jsonl", lines), work / "out.jsonl", latency_config,
                        "--concurrency", str(CONCURRENCY), cpu=client_cpu, env=env)
    finally:
        stop(upstream)
    result["latency"] = _rates(run, lines)
    log(f"  {result['latency']['rps']:,.0f} req/s sending ({result['latency']['rps_wall']:,.0f} over the whole "
        "command)" + ("" if result["latency"]["ok"] else f"  INVALID: {run['stderr'][-500:]}"))

    window = cfg["batch_rpm_window"]
    expected = 600 * window / 60
    lines = int(expected * 1.2) + 10
    log(f"batch: --rpm 600, requests reaching the upstream in the {window} s after the first")
    upstream = start_upstream(0.0, server_cpu)
    first: list[float] = []

    def window_over() -> bool:
        if not first:
            if upstream_stats()["count"]:
                first.append(time.monotonic())
            return False
        return time.monotonic() > first[0] + window + 1.0

    try:
        run = run_batch(human, write_input(work / f"in-{lines}.jsonl", lines), work / "out.jsonl", latency_config,
                        "--concurrency", "16", "--rpm", "600", cpu=client_cpu, env=env, stop_after=window_over)
        arrivals = upstream_stats()["arrivals"]
    finally:
        stop(upstream)
    sent = sum(1 for t in arrivals if t < window)
    result["rpm"] = {"window_s": window, "expected": expected, "sent": sent, "rc": run["rc"],
                     "ok": abs(sent - expected) <= max(1.0, expected * 0.01)}
    log(f"  {sent} requests in {window} s (expected {expected:.0f} ± 1 %)")
    for key in ("zero", "latency"):
        result["errors"] += 0 if result[key]["ok"] else 1
    return result


def render(result: dict[str, Any], quick: bool) -> list[str]:
    zero, latency, rpm = result["zero"], result["latency"], result["rpm"]
    lines = ["## Batch (`human batch`)", "",
             f"The CLI as a user runs it, pinned to one core, `--concurrency {result['concurrency']}`, every line "
             "the bench's request (two messages, one tool) as an OpenAI Batch line. Requests/s is over the sending "
             "phase (first send to last result); the whole command (start-up and the check of every line before "
             "sending) is beside it.", "",
             "| figure | value | budget | verdict |", "|---|---:|---|---|"]

    def verdict(ok: bool) -> str:
        return "**pass**" if ok else "**FAIL**"

    lines.append(f"| zero-latency upstream (nginx), {zero['lines']:,} lines | {zero['rps']:,.0f} req/s "
                 f"({zero['rps_wall']:,.0f} whole command) | ≥ {BUDGETS['zero_rps']:,.0f} | "
                 f"{verdict(zero['ok'] and zero['rps'] >= BUDGETS['zero_rps'])} |")
    lines.append(f"| 100 ms upstream latency, {latency['lines']:,} lines | {latency['rps']:,.0f} req/s "
                 f"({latency['rps_wall']:,.0f} whole command) | ≥ {BUDGETS['latency_rps']:,.0f} | "
                 f"{verdict(latency['ok'] and latency['rps'] >= BUDGETS['latency_rps'])} |")
    lines.append(f"| peak RSS, {zero['lines']:,}-line input | {zero['rss_mib']:.1f} MiB | "
                 f"≤ {BUDGETS['rss_mib']:.0f} MiB{' (for 100,000 lines)' if zero['lines'] != 100_000 else ''} | "
                 f"{verdict(zero['rss_mib'] <= BUDGETS['rss_mib'])} |")
    lines.append(f"| `--rpm 600`, requests in {rpm['window_s']} s | {rpm['sent']:,} | {rpm['expected']:,.0f} ± 1 % | "
                 f"{verdict(rpm['ok'])} |")
    if quick:
        lines += ["", "Quick run: fewer lines and a shorter `--rpm` window than the budgets name."]
    lines.append("")
    return lines
