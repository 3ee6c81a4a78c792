"""What the benchmarks need on the machine: the paths, a log line, the bench venv (peers and
human), and the nginx that serves the fixed answers every client and gateway is measured
against. Shared by bench/run.py and bench/gateway.py (which also run alone)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import spec

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STATE = BENCH / ".state"
VENV = STATE / "venv"
PY = VENV / "bin" / "python"
NGINX_DIR = STATE / "nginx"
RESULTS = BENCH / "results"
DOC = REPO / "docs" / "performance.md"
KEEP_MARK = "<!-- notes below this line are kept by bench/run.py -->"

SERVER_CPU = 0  # nginx's worker and the servers; the measured client or gateway gets CPU 1


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- setup: nginx and the venv ----------------------------------------------------------


def run_quiet(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def apt_install(*packages: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if run_quiet(cmd, env=env).returncode == 0:
        return True
    log("apt-get install failed; running apt-get update and trying again")
    run_quiet(["apt-get", "update"], env=env)
    r = run_quiet(cmd, env=env)
    if r.returncode != 0:
        log(r.stdout[-2000:])
    return r.returncode == 0


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def ensure_nginx() -> str:
    path = find_nginx()
    if path:
        return path
    log("installing nginx-light (apt)")
    if not apt_install("nginx-light"):
        apt_install("nginx")
    path = find_nginx()
    if not path:
        sys.exit("could not install nginx (apt-get install nginx-light / nginx failed)")
    return path


def ensure_venv() -> None:
    reqs = BENCH / "requirements.txt"
    stamp = STATE / "venv.stamp"
    want = hashlib.sha256(reqs.read_bytes() + (REPO / "pyproject.toml").read_bytes()
                          + sys.version.encode()).hexdigest()
    if PY.exists() and stamp.exists() and stamp.read_text() == want:
        return
    STATE.mkdir(parents=True, exist_ok=True)
    if not PY.exists():
        log(f"creating {VENV.relative_to(REPO)}")
        r = run_quiet([sys.executable, "-m", "venv", str(VENV)])
        if r.returncode != 0:
            log("venv failed; installing python3-venv (apt)")
            shutil.rmtree(VENV, ignore_errors=True)
            apt_install("python3-venv")
            r = run_quiet([sys.executable, "-m", "venv", str(VENV)])
            if r.returncode != 0:
                sys.exit("could not create the bench venv:\n" + r.stdout)
    log("installing the peers (bench/requirements.txt) and human (pip install -e .)")
    pip = [str(PY), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for cmd in (pip + ["-r", str(reqs)], pip + ["-e", str(REPO)]):
        r = run_quiet(cmd)
        if r.returncode != 0:
            sys.exit(f"pip failed: {' '.join(cmd)}\n{r.stdout[-4000:]}")
    stamp.write_text(want)


# ---- the target ------------------------------------------------------------------------


def nginx_string(body: str) -> list[str]:
    """Split a body into single-quoted nginx strings of < 4 KB (nginx's token limit)."""
    assert "$" not in body and "\\" not in body and "'" not in body, "body needs escaping nginx can't do"
    parts = []
    for i in range(0, len(body), 3000):
        parts.append("'" + body[i:i + 3000].replace("\n", "\\n") + "'")
    return parts


def location(path: str, content_type: str, body: str, name: str, chunked: bool) -> str:
    parts = nginx_string(body)
    lines = [f"        location = {path} {{", f"            default_type {content_type};"]
    if chunked:
        # sub_filter with a pattern that never matches only drops Content-Length, so the
        # stream goes out chunked, as real SSE endpoints send it
        lines += [f"            sub_filter_types {content_type};", "            sub_filter 'zq#never#qz' '';"]
    if len(parts) == 1:
        lines.append(f"            return 200 {parts[0]};")
    else:
        for i, p in enumerate(parts):
            lines.append(f"            set ${name}{i} {p};")
        lines.append("            return 200 \"" + "".join(f"${{{name}{i}}}" for i in range(len(parts))) + "\";")
    lines.append("        }")
    return "\n".join(lines)


def write_nginx_conf(pin: bool) -> Path:
    NGINX_DIR.mkdir(parents=True, exist_ok=True)
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (NGINX_DIR / "tmp" / d).mkdir(parents=True, exist_ok=True)
    completion = spec.completion_body()
    stream50 = spec.stream_body(50)
    stream5000 = spec.stream_body(5000)
    (NGINX_DIR / "bodies").mkdir(exist_ok=True)
    (NGINX_DIR / "bodies" / "completion.json").write_text(completion)
    (NGINX_DIR / "bodies" / "stream50.sse").write_text(stream50)
    affinity = f"worker_cpu_affinity {'0' * (os.cpu_count() - 1 - SERVER_CPU)}1{'0' * SERVER_CPU};" if pin else ""
    conf = f"""# written by bench/run.py; do not edit
daemon off;
master_process on;
worker_processes 1;
{affinity}
worker_rlimit_nofile 16384;
pid {NGINX_DIR}/nginx.pid;
error_log {NGINX_DIR}/error.log warn;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    client_body_temp_path {NGINX_DIR}/tmp/body;
    proxy_temp_path {NGINX_DIR}/tmp/proxy;
    fastcgi_temp_path {NGINX_DIR}/tmp/fastcgi;
    uwsgi_temp_path {NGINX_DIR}/tmp/uwsgi;
    scgi_temp_path {NGINX_DIR}/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_max_body_size 1m;
    client_body_buffer_size 64k;
    server_tokens off;
    server {{
        listen {spec.HOST}:{spec.PORT} reuseport backlog=4096;
{location("/v1/chat/completions", "application/json", completion, "c", False)}
{location("/stream/v1/chat/completions", "text/event-stream", stream50, "s", True)}
{location("/stream5000/v1/chat/completions", "text/event-stream", stream5000, "l", True)}
        location / {{
            return 404 '{{"error":{{"message":"not found","type":"invalid_request_error"}}}}';
        }}
    }}
}}
"""
    path = NGINX_DIR / "nginx.conf"
    path.write_text(conf)
    return path


def port_open() -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((spec.HOST, spec.PORT)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_stale_nginx() -> None:
    """A previous run that was killed hard may have left its nginx: stop it by its pid file,
    and only if that pid is an nginx with our config."""
    pidfile = NGINX_DIR / "nginx.pid"
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (ValueError, OSError):
        return
    if "nginx" in cmdline and str(NGINX_DIR) in cmdline:
        log(f"stopping the nginx left by an earlier run (pid {pid})")
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not pid_alive(pid):
                break
            time.sleep(0.1)


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes `pids` have used so far; one that has gone
    counts nothing."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


class Nginx:
    def __init__(self, binary: str, pin: bool):
        self.binary = binary
        self.pin = pin
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        stop_stale_nginx()
        if port_open():
            sys.exit(f"port {spec.PORT} on {spec.HOST} is taken by another process; free it and run again")
        conf = write_nginx_conf(self.pin)
        r = run_quiet([self.binary, "-t", "-p", str(NGINX_DIR), "-c", str(conf)])
        if r.returncode != 0:
            sys.exit("nginx rejected the generated config:\n" + r.stdout)
        self.proc = subprocess.Popen([self.binary, "-p", str(NGINX_DIR), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        for _ in range(100):
            if port_open():
                break
            if self.proc.poll() is not None:
                sys.exit(f"nginx exited with {self.proc.returncode}; see {NGINX_DIR / 'error.log'}")
            time.sleep(0.05)
        self.check()
        log(f"nginx up on {spec.ORIGIN} (master pid {self.proc.pid}, worker pid {self.worker_pids()})")

    def check(self) -> None:
        def post(path: str) -> tuple[int, str, bytes]:
            req = urllib.request.Request(spec.ORIGIN + path, data=json.dumps(spec.request_body()).encode(),
                                         headers=spec.HEADERS, method="POST")
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.headers.get("Transfer-Encoding", ""), r.read()

        status, _, body = post("/v1/chat/completions")
        assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == spec.COMPLETION_TEXT
        status, te, body = post("/stream/v1/chat/completions")
        assert status == 200 and body.decode() == spec.stream_body(50) and te == "chunked", (status, te)
        status, te, body = post("/stream5000/v1/chat/completions")
        assert status == 200 and body.decode() == spec.stream_body(5000), status

    def worker_pids(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(c) for c in children]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.worker_pids())

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self.proc.pid
        os.kill(pid, signal.SIGTERM)  # fast shutdown of master and worker
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            self.proc.wait()
        log(f"nginx stopped (pid {pid})")
