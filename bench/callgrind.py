#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: the noise-free companion of
harness.py. On a shared two-core machine requests per second move with the
neighbours' load; the number of instructions a server executes per request
does not (callgrind counts them, whatever else the machine does).

For each server and endpoint: start the server under
`valgrind --tool=callgrind --instr-atstart=no`, send a warm-up, switch
instrumentation on (`callgrind_control -i on`), send N requests one after another
on one keep-alive connection, stop the server, and divide. User-space
instructions only: the kernel's share (sockets, epoll) is not counted, and it
is about the same for every Rust server, so the ratios here exaggerate the
differences in whole CPU time a little.

Also writes, per server and endpoint, the functions with the most inclusive
and self cost (callgrind_annotate), which is where a slower endpoint shows why.

    bench/.venv/bin/python bench/callgrind.py --bin-dir bench/target/profiling
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import BENCH, ENDPOINTS, HOST, STARTED, stop_all  # noqa: E402


def send(port: int, ep, n: int) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    body = json.dumps(ep.body, separators=(",", ":")) if ep.body is not None else None
    headers = {"Content-Type": "application/json"} if body else {}
    try:
        for _ in range(n):
            conn.request(ep.method, ep.path, body=body, headers=headers)
            res = conn.getresponse()
            res.read()
            if res.status != ep.status:
                raise RuntimeError(f"{ep.path}: status {res.status}, expected {ep.status}")
    finally:
        conn.close()


# vgdb (behind callgrind_control) finds the server by a file named after the
# user and $HOST of both sides: give both the same.
VG_ENV = {"USER": os.environ.get("USER") or "bench", "LOGNAME": os.environ.get("LOGNAME") or "bench", "HOST": HOST}


def control(pid: int, *args: str) -> None:
    res = subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, **VG_ENV))
    if res.returncode != 0 or "error" in res.stderr:
        raise RuntimeError(f"callgrind_control {' '.join(args)} failed: {res.stdout}{res.stderr}")


def total_ir(path: Path) -> int:
    text = path.read_text(errors="replace")
    m = re.search(r"^totals:\s*(\d+)", text, re.M)
    if not m:
        raise RuntimeError(f"no totals in {path}")
    return int(m.group(1))


def measure(server, ep, n: int, warmup: int, database_url: str | None, out: Path,
            cpu: int | None = 1) -> int:
    if not harness.port_free(server.port):
        raise RuntimeError(f"port {server.port} is taken")
    cg_out = out / f"callgrind.{server.key}.{ep.key}.out"
    cg_out.unlink(missing_ok=True)
    # No console access line, as uvicorn runs with --no-access-log (see harness.start).
    env = dict(os.environ, PORT=str(server.port), RUST_LOG="warn", FERRAPI_CONSOLE_LOG="startup",
               **VG_ENV, **server.env)
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    # Pinned to one core, as in the load runs: each Rust runtime starts one
    # worker, so the counts do not depend on how two workers happened to
    # share the work (which made them vary by up to 10 % between runs).
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    argv = [*pin, "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={cg_out}",
            *server.argv]
    log = open(out / f"{server.key}.{ep.key}.log", "wb")
    server.proc = subprocess.Popen(argv, cwd=server.cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    STARTED.append(server.proc)
    try:
        harness.wait_ready(server, timeout=180)
        send(server.port, ep, warmup)
        control(server.proc.pid, "-i", "on")
        send(server.port, ep, n)
        control(server.proc.pid, "-i", "off")
    finally:
        # SIGINT: every server stops on it (ctrl-c handler or default action),
        # and callgrind writes its file on the way out.
        if server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGINT)
            try:
                server.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                harness.stop(server.proc)
        STARTED.remove(server.proc)
    deadline = time.monotonic() + 30
    while not cg_out.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return total_ir(cg_out)


def annotate(path: Path, inclusive: bool, top: int) -> str:
    res = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=99", str(path)],
        capture_output=True, text=True, timeout=300,
    )
    lines = [ln for ln in res.stdout.splitlines() if re.match(r"^\s*[\d,]+ \(", ln)]
    return "\n".join(lines[: top + 1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", type=Path, default=BENCH / "target" / "profiling")
    p.add_argument("--servers", default="ferrapi,ferrapi_mw,axum,hyper")
    p.add_argument("--endpoints", default=",".join(e.key for e in ENDPOINTS))
    p.add_argument("--requests", type=int, default=2000, help="measured requests per Rust server and endpoint")
    p.add_argument("--fastapi-requests", type=int, default=200, help="measured requests for FastAPI (slow under valgrind)")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    p.add_argument("--out", type=Path, default=BENCH / "target" / "callgrind")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--server-cpu", type=int, default=1,
                   help="the core each server is pinned to (one runtime worker); -1: not pinned")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, harness.on_signal)

    srv = {s.key: s for s in harness.servers(BENCH / ".venv" / "bin" / "python", args.bin_dir)
           if s.key in args.servers.split(",")}
    endpoints = [e for e in ENDPOINTS if e.key in args.endpoints.split(",")]
    if not args.database_url:
        endpoints = [e for e in endpoints if not e.needs_db]
    per_req: dict[str, dict[str, float]] = {}
    try:
        for ep in endpoints:
            per_req[ep.key] = {}
            for s in srv.values():
                n = args.fastapi_requests if s.key == "fastapi" else args.requests
                ir = measure(s, ep, n, args.warmup if s.key != "fastapi" else args.warmup // 10,
                             args.database_url, args.out,
                             None if args.server_cpu < 0 else args.server_cpu)
                per_req[ep.key][s.key] = ir / n
                print(f"{ep.key:<12} {s.key:<8} {ir / n:>12,.0f} instructions/request", flush=True)
    finally:
        stop_all()

    keys = list(srv)
    lines = ["| endpoint | " + " | ".join(f"{srv[k].title} Ir/req" for k in keys)
             + " | ferrapi ÷ axum | ferrapi ÷ hyper |" + (" FastAPI ÷ ferrapi |" if "fastapi" in keys else ""),
             "|---|" + "---:|" * (len(keys) + 2 + ("fastapi" in keys))]
    for ep in endpoints:
        row = per_req[ep.key]
        cells = [f"{row[k]:,.0f}" for k in keys]

        def ratio(a, b):
            return f"{row[a] / row[b]:.2f}" if a in row and b in row else "—"

        extra = f" {ratio('fastapi', 'ferrapi')}× |" if "fastapi" in keys else ""
        lines.append(f"| {ep.title} | " + " | ".join(cells) + f" | {ratio('ferrapi', 'axum')} | {ratio('ferrapi', 'hyper')} |" + extra)
    table = "\n".join(lines) + "\n"
    (args.out / "instructions.md").write_text(table)
    (args.out / "instructions.json").write_text(json.dumps(per_req, indent=1))
    for ep in endpoints:
        for s in srv.values():
            f = args.out / f"callgrind.{s.key}.{ep.key}.out"
            if f.exists():
                (args.out / f"top.{s.key}.{ep.key}.txt").write_text(
                    "inclusive:\n" + annotate(f, True, args.top) + "\n\nself:\n" + annotate(f, False, args.top) + "\n")
    print()
    print(table)
    print(f"written: {args.out}/instructions.md, top.<server>.<endpoint>.txt (callgrind_annotate)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
