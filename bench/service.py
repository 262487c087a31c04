#!/usr/bin/env python3
"""The reference service under load: its own endpoints with its full default
stack, its idle RSS, and its peak RSS at 64 and 256 connections.

    bench/.venv/bin/python bench/service.py --bin target/release/ferrapi-service

The service runs pinned to core 1 on a fresh SQLite file under
bench/target/service-run/, and wrk runs pinned to core 0. One user is created
first; then, for each round and each connection count, the script runs
`GET /api/v1/users/{id}` and then `POST /api/v1/users`, where each request
has a unique e-mail address and no password, so that argon2 is not what gets
measured. Every request carries the admin's bearer token (one login at the
start: the v1 routes require a token), and the per-client rate limit is set
out of reach (`RATE_LIMIT`), so the limiter runs but refuses nothing.
Writes bench/target/service-run/service.md and service.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import urllib.parse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import BENCH, HOST, STARTED, REPORT_LUA, Endpoint, Server, stop_all  # noqa: E402

POST_LUA = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
-- LuaJIT's generator starts from the same seed in every wrk process: seed it,
-- or every run repeats the e-mails of the one before (409).
math.randomseed(os.time())
local salt = tostring(math.random(1, 1000000000)) .. tostring(os.time())
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil,
    '{"name":"Bench User","email":"u' .. salt .. '-' .. n .. '@example.com","age":30}')
end
"""


ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "bench-admin-password"


def call(port: int, method: str, path: str, body: bytes | None, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", type=Path, default=BENCH.parent / "target" / "release" / "ferrapi-service")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--connections", default="64,256")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--load-cpu", type=int, default=0)
    args = p.parse_args()
    args.connections_list = [int(c) for c in args.connections.split(",")]
    if not args.bin.exists():
        print(f"{args.bin} does not exist: build the reference service first "
              "(cargo build --release -p ferrapi-service at the repository root)", file=sys.stderr)
        return 2
    out = BENCH / "target" / "service-run"
    out.mkdir(parents=True, exist_ok=True)
    db = out / "bench.db"
    for f in out.glob("bench.db*"):
        f.unlink()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, harness.on_signal)

    server = Server("service", "reference service", 18005, [str(args.bin.resolve())], cwd=out)
    os.environ.update(LOG_FORMAT="json", ADMIN_EMAIL=ADMIN_EMAIL, ADMIN_PASSWORD=ADMIN_PASSWORD,
                      RATE_LIMIT="1000000000/1s")
    os.environ.pop("WORKERS", None)
    rows = []
    try:
        harness.start(server, args.server_cpu, f"sqlite://{db}", out)
        time.sleep(1.0)
        idle = harness.proc_status(server.proc.pid).get("VmRSS", 0)
        form = urllib.parse.urlencode({"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).encode()
        status, body = call(server.port, "POST", "/api/v1/auth/token", form,
                            {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise RuntimeError(f"POST /api/v1/auth/token answered {status}: {body[:200]!r}")
        token = json.loads(body)["access_token"]
        auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        status, body = call(server.port, "POST", "/api/v1/users",
                            json.dumps({"name": "Jane Doe", "email": "jane@example.com", "age": 30}).encode(),
                            {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        if status != 201:
            raise RuntimeError(f"POST /api/v1/users answered {status}: {body[:200]!r}")
        uid = json.loads(body)["id"]
        get_ep = Endpoint("get", f"GET /api/v1/users/{{id}}", "GET", f"/api/v1/users/{uid}", 200)
        post_ep = Endpoint("post", "POST /api/v1/users (unique e-mails)", "POST", "/api/v1/users", 201)
        lua_dir = BENCH / "target" / "wrk-scripts"
        lua_dir.mkdir(parents=True, exist_ok=True)
        get_lua = lua_dir / "service_get.lua"
        get_lua.write_text(auth + REPORT_LUA)
        post_lua = lua_dir / "service_post.lua"
        post_lua.write_text(POST_LUA + auth + REPORT_LUA)
        runs = []
        for c in args.connections_list:
            args.connections = c
            harness.run_wrk(server, get_ep, args, get_lua, args.warmup, 0)
        for rnd in range(1, args.rounds + 1):
            for c in args.connections_list:
                args.connections = c
                for ep, lua in ((get_ep, get_lua), (post_ep, post_lua)):
                    r = harness.run_wrk(server, ep, args, lua, args.duration, rnd)
                    r.endpoint = f"{ep.key}@{c}"
                    runs.append(r)
                    print(f"round {rnd} {ep.title:<36} c={c:<4} {r.rps:>9,.0f} req/s  p99 {r.p99_ms:6.2f} ms  "
                          f"{r.cpu_us_per_req:6.1f} µs/req  peak RSS {r.peak_rss_kib / 1024:5.1f} MiB"
                          + (f"  ERRORS {r.errors + r.bad_status}" if r.errors + r.bad_status else ""), flush=True)
    finally:
        stop_all()

    lines = [f"Reference service `{args.bin}`; idle RSS after start-up: **{idle / 1024:.1f} MiB**. "
             f"{args.rounds} rounds × {args.duration:.0f} s, wrk -t1 on core {args.load_cpu}, "
             f"the service on core {args.server_cpu}, SQLite file database.\n",
             "| endpoint | connections | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in args.connections_list:
        for ep in (get_ep, post_ep):
            rs = [r for r in runs if r.endpoint == f"{ep.key}@{c}"]
            lines.append(
                f"| {ep.title} | {c} | {statistics.median(r.rps for r in rs):,.0f} | "
                f"{statistics.median(r.p50_ms for r in rs):.2f} | {statistics.median(r.p99_ms for r in rs):.2f} | "
                f"{statistics.median(r.cpu_us_per_req for r in rs):.1f} | {max(r.peak_rss_kib for r in rs) / 1024:.1f} | "
                f"{sum(r.errors + r.bad_status for r in rs)} |")
    md = "\n".join(lines) + "\n"
    (out / "service.md").write_text(md)
    (out / "service.json").write_text(json.dumps({"idle_rss_kib": idle, "runs": [r.as_dict() for r in runs]}, indent=1))
    print()
    print(md)
    print(f"written: {out / 'service.md'}, {out / 'service.json'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        stop_all()
