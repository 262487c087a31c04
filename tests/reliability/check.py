"""System-level reliability checks of the reference service (issue 11).

usage: check.py --bin PATH --work DIR [--long] [--only NAME,...]

Runs the real service binary on 127.0.0.1 and prints, per check, `ok`/`FAIL`
lines and one `FIGURE <check> | <figures> | PASSED|FAILED` line (the figures
docs/reliability.md quotes). Exit status 1 when any check failed.

Checks, in this order (soak and timeouts at the same time): shutdown, writes,
faults, soak, timeouts, idle, security. docs/reliability.md says what each
does and the bounds it applies.
"""
import argparse
import asyncio
import collections
import gzip
import json
import os
import resource
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import httpc  # noqa: E402
import servers  # noqa: E402
from load import EXPECTED, Load, percentile  # noqa: E402

JWT_SECRET = "reliability-check-secret-0123456789"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "reliability-admin-password"
# Configured server timeouts (crates/ferrapi/src/server.rs ServeConfig
# defaults; the service has no variable for them).
GRACE_PERIOD = 30.0
HEADER_READ_TIMEOUT = 10.0
# Scheduling slack allowed on top of a timeout on a loaded 2-core machine.
SLACK = 10.0

CHECKS = ["shutdown", "writes", "faults", "soak", "timeouts", "idle", "security"]
# Checks in one group run at the same time (each against its own service
# process): the slow-client checks wait on timeouts while the soak runs.
GROUPS = [["shutdown"], ["writes"], ["faults"], ["soak", "timeouts"], ["idle"], ["security"]]


class Check:
    """One check's verdicts and figures."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.figures = []

    def expect(self, cond, what):
        print(("ok    " if cond else "FAIL  ") + f"{self.name}: {what}", flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def figure(self, text):
        self.figures.append(text)

    def info(self, text):
        print(f"      {self.name}: {text}", flush=True)

    def line(self):
        verdict = "PASSED" if not self.failures else "FAILED"
        return f"FIGURE {self.name} | {'; '.join(self.figures)} | {verdict}"


class Ctx:
    def __init__(self, args):
        self.bin = args.bin
        self.work = args.work
        self.long = args.long

    def service(self, name, **env):
        base = {
            "DATABASE_URL": f"sqlite://{self.work}/{name}.db",
            "STORAGE_URL": f"file://{self.work}/{name}-uploads",
            "JWT_SECRET": JWT_SECRET,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "RATE_LIMIT": "1000000/1s",
        }
        base.update(env)
        return servers.Service(self.bin, self.work, name, base)


def counts_text(counter):
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1]))


async def create_users(port, token, n, tag):
    ids = []
    for i in range(n):
        out = await httpc.one("127.0.0.1", port, "POST", "/api/v1/users", token,
                              {"name": f"Seed {i}", "email": f"{tag}-seed{i}@example.com", "age": 40},
                              timeout=30)
        if out.status != 201:
            raise RuntimeError(f"seed user {i}: {out.label()} {out.body[:200]!r}")
        ids.append(out.json()["id"])
    return ids


async def all_users(port, token):
    """Every user, by keyset pages of 1000: {id: email}."""
    users, cursor = {}, None
    for _ in range(1000):
        path = "/api/v2/users?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        out = await httpc.one("127.0.0.1", port, "GET", path, token, timeout=30)
        if out.status != 200:
            raise RuntimeError(f"GET {path}: {out.label()} {out.body[:200]!r}")
        page = out.json()
        users.update({u["id"]: u["email"] for u in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return users
    raise RuntimeError("paging did not end")


async def welcomes(port, token, ids, seconds, conns=8):
    """Waits until each user of `ids` has its welcome notification (at most
    `seconds`): ({id: number of welcomes}, seconds taken)."""
    started = time.monotonic()
    found = {}
    todo = list(ids)
    while True:
        queue = list(todo)

        async def worker():
            conn = httpc.Conn("127.0.0.1", port, token)
            try:
                while queue:
                    uid = queue.pop()
                    out = await conn.request("GET", f"/api/v1/users/{uid}/notifications", timeout=30)
                    if out.status == 200:
                        found[uid] = sum(1 for n in out.json() if n["kind"] == "welcome")
            finally:
                await conn.close()

        await asyncio.gather(*(worker() for _ in range(conns)))
        todo = [uid for uid in todo if found.get(uid, 0) == 0]
        if not todo or time.monotonic() - started > seconds:
            return found, time.monotonic() - started
        await asyncio.sleep(0.5)


# --------------------------------------------------------------------------
# Graceful shutdown under load
# --------------------------------------------------------------------------

async def check_shutdown(ctx):
    c = Check("shutdown")
    # Welcomes wait 1.5 s: those of the last creates are still queued when
    # SIGTERM arrives, and must run after the restart.
    svc = ctx.service("shutdown", NOTIFICATION_DELAY_MS="1500").start()
    port = svc.port
    token = await httpc.login("127.0.0.1", port, ADMIN_EMAIL, ADMIN_PASSWORD)
    seed = await create_users(port, token, 10, "shutdown")
    load = Load(port, token, clients=16, ids=seed, tag="shutdown", stop_on_refused=True,
                mix=[("get_user", 30), ("list", 10), ("me", 10), ("notif", 10), ("create", 35),
                     ("create_pw", 5)])
    ready_polls = []  # (seconds since SIGTERM or negative before, label)
    sigterm_at = [None]

    async def poll_ready():
        # Until the first refused connect after SIGTERM (at most 15 s).
        while not sigterm_at[0] or time.monotonic() - sigterm_at[0] < 15:
            out = await httpc.one("127.0.0.1", port, "GET", "/health/ready", timeout=5)
            at = time.monotonic() - sigterm_at[0] if sigterm_at[0] else -1.0
            ready_polls.append((at, out.label()))
            if sigterm_at[0] and out.error == httpc.REFUSED:
                return
            await asyncio.sleep(0.05)

    load_task = asyncio.ensure_future(load.run())
    ready_task = asyncio.ensure_future(poll_ready())
    await asyncio.sleep(8 if ctx.long else 4)
    load.phase = "after-sigterm"
    sigterm_at[0] = time.monotonic()
    svc.signal(signal.SIGTERM)
    code = await asyncio.get_running_loop().run_in_executor(None, svc.wait, GRACE_PERIOD + 15)
    exit_after = time.monotonic() - sigterm_at[0]
    # The clients stop at their first refused connect; any still waiting
    # now have their answer or their error.
    try:
        await asyncio.wait_for(asyncio.shield(load_task), 20)
    except asyncio.TimeoutError:
        pass
    load.stop.set()
    await asyncio.wait_for(load_task, 30)
    await asyncio.wait_for(ready_task, 10)

    total = load.summary()
    answered = sum(n for k, n in total.items() if k.isdigit())
    after = load.summary("after-sigterm")
    first_refused = next((at for at, label in ready_polls if at >= 0 and label == httpc.REFUSED), None)
    during = [label for at, label in ready_polls if at >= 0]
    c.info(f"requests: {counts_text(total)}; after SIGTERM: {counts_text(after)}")
    c.info(f"readiness polls after SIGTERM: {during[:12]}")

    c.expect(code == 0, f"exit status {code} after SIGTERM")
    c.expect(code is not None and exit_after < GRACE_PERIOD,
             f"exited {exit_after:.2f} s after SIGTERM (grace period {GRACE_PERIOD:.0f} s)")
    c.expect(first_refused is not None and first_refused < 5,
             f"listener closed (connect refused) {first_refused if first_refused is None else round(first_refused, 2)} s "
             "after SIGTERM (contract: within 5 s)")
    saw_503 = any(label == "503" for label in during)
    c.expect(saw_503, "readiness answered 503 after SIGTERM before the listener closed "
             f"(polls every 50 ms on new connections: {collections.Counter(during)})")

    # The restart on the same database: every acknowledged create is there.
    svc.start()
    users = await all_users(port, token)
    lost = [uid for uid, email in load.acknowledged.items() if users.get(uid) != email]
    emails = set(users.values())
    unanswered_done = [e for e in load.pending_creates if e in emails]
    refused_done = [e for e in load.refused_creates if e in emails]

    # How each request ended.
    fivexx = sum(n for k, n in total.items() if k.isdigit() and int(k) >= 500)
    unexpected = sum(n for (ph, op, label), n in load.counts.items()
                     if label.isdigit() and int(label) not in EXPECTED[op] and int(label) < 500)
    # A connect that failed (other than refused: reset, timed out) once
    # SIGTERM had come was never accepted: the listener was closing, as for
    # a refused one. Before SIGTERM it is a failure.
    connect_errors = [r for r in load.records if r.outcome.error == httpc.CONNECT_ERROR]
    not_accepted = [r for r in connect_errors if r.t - r.outcome.elapsed >= sigterm_at[0]]
    broken = (total.get(httpc.BROKEN, 0) + total.get(httpc.TIMEOUT, 0)
              + len(connect_errors) - len(not_accepted))
    # Closed before any response byte: on a new connection, the server never
    # accepted it (reset from the listen backlog when the listener closed:
    # the same as a refused connect); on a reused keep-alive connection, the
    # server closed a connection its client had just sent a request on.
    unanswered = [r for r in load.records if r.outcome.error == httpc.UNANSWERED]
    backlog = sum(1 for r in unanswered if not r.outcome.reused)
    keepalive_cut = len(unanswered) - backlog
    in_flight = sum(1 for r in load.records if r.outcome.status is not None
                    and r.t - r.outcome.elapsed < sigterm_at[0] < r.t)
    # A request is failed when it was answered 5xx or an unexpected status,
    # broken mid-response, timed out, cut unanswered on its keep-alive
    # connection, or took effect without an answer.
    failed = fivexx + unexpected + broken + keepalive_cut + len(unanswered_done) + len(refused_done)
    c.info(f"{in_flight} requests in flight at SIGTERM were answered")
    if connect_errors:
        c.info(f"connects failed (not refused): {len(connect_errors)}, {len(not_accepted)} of them after "
               f"SIGTERM (never accepted: counted with the refused): "
               f"{collections.Counter(r.outcome.detail for r in connect_errors)}")
    c.expect(fivexx == 0, f"{fivexx} answers 5xx")
    c.expect(unexpected == 0, f"{unexpected} answers with an unexpected status")
    c.expect(broken == 0, f"{broken} responses broken mid-way or timed out")
    c.expect(not unanswered_done,
             f"{len(unanswered_done)} creates took effect but were never answered "
             f"({len(load.pending_creates)} creates unanswered in all)")
    c.expect(not refused_done, f"{len(refused_done)} creates answered with an error took effect")
    c.expect(keepalive_cut == 0,
             f"{keepalive_cut} requests sent on a kept-alive connection were cut unanswered when the "
             f"server closed it at SIGTERM ({backlog} more reset from the accept backlog count as refused)")
    c.expect(not lost, f"{len(load.acknowledged)} acknowledged creates, {len(lost)} missing after "
             f"the restart on the same database {lost[:5]}")
    found, took = await welcomes(port, token, list(load.acknowledged), 45)
    missing = [uid for uid in load.acknowledged if found.get(uid, 0) == 0]
    doubled = [uid for uid in load.acknowledged if found.get(uid, 0) > 1]
    c.expect(not missing and not doubled,
             f"every acknowledged user has exactly one welcome after the restart "
             f"({len(missing)} missing, {len(doubled)} doubled; waited {took:.1f} s)")
    svc.stop()
    c.figure(f"sent {load.sent}, answered {answered} ({in_flight} in flight at SIGTERM), "
             f"refused {total.get(httpc.REFUSED, 0) + backlog + len(not_accepted)}, cut unanswered on keep-alive "
             f"{keepalive_cut} ({len(unanswered_done)} took effect), failed {failed}; "
             f"creates acknowledged {len(load.acknowledged)}, lost {len(lost)}; "
             f"welcomes missing {len(missing)}; exit {code} after {exit_after:.2f} s "
             f"(grace {GRACE_PERIOD:.0f} s); listener closed after "
             f"{first_refused if first_refused is None else round(first_refused, 2)} s; "
             f"readiness 503 before close: {'yes' if saw_503 else 'no'}")
    return c


# --------------------------------------------------------------------------
# Concurrent writers on the embedded SQLite database
# --------------------------------------------------------------------------

WRITERS = 8


async def check_writes(ctx):
    """The default deployment (one SQLite file): several users at once, each
    updating itself — which drops its cached principal, so that its next
    request loads it again — and creating users. Nothing may answer 5xx."""
    c = Check("writes")
    svc = ctx.service("writes", ACCESS_LOG="off").start()
    port = svc.port
    admin = await httpc.login("127.0.0.1", port, ADMIN_EMAIL, ADMIN_PASSWORD)
    users = []
    for i in range(WRITERS):
        out = await httpc.one("127.0.0.1", port, "POST", "/api/v1/users", admin,
                              {"name": f"Writer {i}", "email": f"writer{i}@example.com", "age": 30,
                               "password": "writer-password"}, timeout=30)
        if out.status != 201:
            raise RuntimeError(f"writer {i}: {out.label()} {out.body[:200]!r}")
        users.append((out.json()["id"], await httpc.login("127.0.0.1", port, f"writer{i}@example.com",
                                                          "writer-password")))
    counts = collections.Counter()
    stop = time.monotonic() + (20 if ctx.long else 6)

    async def writer(i, uid, token):
        conn = httpc.Conn("127.0.0.1", port, token)
        n = 0
        try:
            while time.monotonic() < stop:
                n += 1
                if n % 2:
                    out = await conn.request("PATCH", f"/api/v1/users/{uid}", {"age": 18 + n % 90}, timeout=30)
                    counts[f"PATCH self {out.label()}"] += 1
                else:
                    out = await conn.request("POST", "/api/v1/users", {
                        "name": f"By {i}", "email": f"by{i}-{n}@example.com", "age": 30}, timeout=30)
                    counts[f"POST {out.label()}"] += 1
        finally:
            await conn.close()

    await asyncio.gather(*(writer(i, uid, tok) for i, (uid, tok) in enumerate(users)))
    total = sum(counts.values())
    failed = sum(n for k, n in counts.items() if not k.endswith(("200", "201")))
    errors = [(httpc.parse_json(line) or {}).get("error", line)[:90] for line in svc.log_text().splitlines()
              if '"level":"ERROR"' in line][:2]
    c.expect(failed == 0, f"{WRITERS} users writing at once: {total} requests, {dict(counts)}"
             + (f"; logged: {errors}" if errors else ""))
    svc.stop()
    c.figure(f"{WRITERS} users at once, {total} writes (self-updates and creates), {failed} failed"
             + (f" ({errors[0]})" if errors else ""))
    return c


# --------------------------------------------------------------------------
# Fault injection: PostgreSQL, Redis, NATS stopped and restarted under load
# --------------------------------------------------------------------------

# What each dependency's outage should do to each operation of the load:
# the statuses allowed while it is down. The rest of the time every
# operation must get its normal status (load.EXPECTED).
DOWN_EXPECTED = {
    # The database: reads of cached users (and the caller's cached
    # principal) need no query; everything else answers 503.
    "postgresql": {"get_user": {200}, "me": {200}, "list": {503}, "notif": {503}, "create": {503}},
    # The cache: lookups fail and count as misses (reads go to the
    # database), the rate limiter fails open: nothing needs Redis.
    "redis": {op: EXPECTED[op] for op in ("get_user", "me", "list", "notif", "create")},
    # The bus: events are published best effort, welcome tasks are in the
    # database: nothing needs NATS.
    "nats": {op: EXPECTED[op] for op in ("get_user", "me", "list", "notif", "create")},
}
READY_CHECK = {"postgresql": "database", "redis": "cache", "nats": "bus"}
FAIL_FAST = 5.0  # seconds: the slowest answer allowed while a dependency is down


NATS_BURST = 300


async def create_burst(port, token, n, tag, conns=8):
    """`n` creates over `conns` connections: {id: email} of the acknowledged."""
    todo = list(range(n))
    done = {}

    async def worker():
        conn = httpc.Conn("127.0.0.1", port, token)
        try:
            while todo:
                i = todo.pop()
                email = f"{tag}-{i}@example.com"
                out = await conn.request("POST", "/api/v1/users", {"name": f"Burst {i}", "email": email, "age": 30},
                                         timeout=30)
                if out.status == 201:
                    done[out.json()["id"]] = email
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return done


async def ready_state(port):
    out = await httpc.one("127.0.0.1", port, "GET", "/health/ready", timeout=10)
    body = out.json() if out.status else None
    return out.status, (body or {}).get("checks", {}), out.elapsed


async def wait_ready(port, want, check_name, seconds):
    """Polls readiness every 100 ms until it answers `want` (with
    `check_name` failing when 503): seconds taken, or None."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        status, checks, _ = await ready_state(port)
        if status == want and (want == 200 or checks.get(check_name, "ok") != "ok"):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def check_faults(ctx):
    c = Check("faults")
    work = ctx.work
    pg, redis, nats = await asyncio.get_running_loop().run_in_executor(
        None, servers.private_stack, work, "faults")
    deps = {"postgresql": pg, "redis": redis, "nats": nats}
    svc = ctx.service("faults", NOTIFICATION_DELAY_MS="1000",
                      **servers.shared_env(pg, redis, nats, "reliability")).start()
    port = svc.port
    token = await httpc.login("127.0.0.1", port, ADMIN_EMAIL, ADMIN_PASSWORD)
    seed = await create_users(port, token, 10, "faults")
    load = Load(port, token, clients=8, ids=seed, tag="faults", pause=0.01,
                mix=[("get_user", 35), ("me", 10), ("list", 20), ("notif", 20), ("create", 15)])
    load.phase = "warm-up"
    load_task = asyncio.ensure_future(load.run())
    ws = await httpc.WebSocket.connect("127.0.0.1", port, f"/ws/events?token={token}")
    seen = {}  # user id -> when its user.created arrived on the WebSocket

    async def read_events():
        # Read all the time: the server drops a client that falls behind.
        while not load.stop.is_set() and not ws.closed:
            text = await ws.recv_text(1.0)
            if text:
                msg = json.loads(text)
                if msg.get("type") == "user.created":
                    seen[msg["data"]["id"]] = time.monotonic()

    ws_task = asyncio.ensure_future(read_events())
    # Seconds each server stays down: long enough for several requests that
    # need the database to fail (each waits for the pool's 3 s acquire
    # timeout) while strictly inside the outage.
    outages = {"postgresql": 20 if ctx.long else 8, "redis": 12 if ctx.long else 4, "nats": 12 if ctx.long else 4}
    # name -> (stop begun, stopped, restart begun, ready again, end of the after phase)
    windows = {}
    readiness = {}  # name -> (seconds to 503, seconds to 200 after the restart)
    ws_outcome = "not reached"  # what the WebSocket saw after the NATS restart
    try:
        await asyncio.sleep(1)
        for name, dep in deps.items():
            check = READY_CHECK[name]
            load.phase = name
            await asyncio.sleep(1.5)
            stopping_at = time.monotonic()
            await asyncio.get_running_loop().run_in_executor(None, dep.down)
            stopped_at = time.monotonic()
            try:
                took = await wait_ready(port, 503, check, 15)
                c.expect(took is not None and took <= 5,
                         f"{name} stopped: readiness 503 naming '{check}' after "
                         f"{took if took is None else round(took, 2)} s (bound 5 s)")
                _, checks, _ = await ready_state(port)
                c.info(f"{name} down: readiness checks {checks}")
                if name == "nats":
                    # More events than a WebSocket subscriber may fall behind
                    # (the hub's 256): published while NATS is away, they
                    # reach the bus only when it is back.
                    burst = await create_burst(port, token, NATS_BURST, "faults-burst")
                    load.acknowledged.update(burst)
                    c.info(f"{len(burst)} of {NATS_BURST} creates acknowledged while NATS was down")
                await asyncio.sleep(max(0.0, outages[name] - (time.monotonic() - stopped_at)))
            finally:
                restarting_at = time.monotonic()
                await asyncio.get_running_loop().run_in_executor(None, dep.up)
            back = await wait_ready(port, 200, check, 60)
            c.expect(back is not None, f"{name} restarted: readiness 200 again after "
                     f"{back if back is None else round(back, 2)} s, without restarting the service")
            back_at = time.monotonic()
            await asyncio.sleep(2)
            windows[name] = (stopping_at, stopped_at, restarting_at, back_at, time.monotonic())
            readiness[name] = (took, back)
            if name == "nats":
                # Events flow again through the restarted NATS: a user
                # created now reaches the WebSocket opened before the outage.
                out = await httpc.one("127.0.0.1", port, "POST", "/api/v1/users", token,
                                      {"name": "After NATS", "email": "after-nats@example.com", "age": 30})
                uid = out.json()["id"] if out.status == 201 else None
                deadline = time.monotonic() + 15
                while uid not in seen and not ws.closed and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                ws_outcome = ("got the next event" if uid in seen else
                              f"closed {ws.close_info[1]}" if ws.closed else "no event")
                c.expect(uid in seen, "events flow again after the NATS restart: the WebSocket opened "
                         f"before the outage (and {NATS_BURST} creates during it) received user.created of a "
                         "user created after it "
                         f"({len(seen)} events received in all" + (
                             f"; the WebSocket was closed {ws.close_info[0] - restarting_at:+.1f} s from the "
                             f"restart: {ws.close_info[1]}" if ws.closed else "") + ")")
    finally:
        load.stop.set()
        await asyncio.wait_for(load_task, 60)
        await asyncio.wait_for(ws_task, 10)
        ws.close()

    # Each request is judged by when it ran: begun after the stop and over
    # before the restart, it gets the outage's answer (503 where the
    # dependency is needed); overlapping the stop or the restart (until
    # readiness is back), either; otherwise its normal status. A 500 is
    # never right.
    figures = []
    judged = collections.Counter()
    for r in load.records:
        label = r.outcome.label()
        status = r.outcome.status
        began, ended = r.t - r.outcome.elapsed, r.t
        allowed, where = EXPECTED[r.op], "normal"
        for name, (stopping, stopped, restarting, back_at, _) in windows.items():
            if began >= stopped and ended <= restarting:
                allowed, where = DOWN_EXPECTED[name][r.op], f"{name} down"
            elif began < back_at and ended > stopping:
                allowed, where = DOWN_EXPECTED[name][r.op] | EXPECTED[r.op], f"{name} stopping or restarting"
        if status is None or status not in allowed:
            judged[f"{where}: {r.op} {label}"] += 1
    c.expect(not judged, f"every request got its expected status for when it ended (normal; 503 where the "
             f"stopped dependency is needed; either while it comes back): wrong: {dict(judged) or 'none'}")
    for name, (_, stopped, restarting, back_at, end) in windows.items():
        down = [r for r in load.records if stopped <= r.t <= restarting]
        after = [r for r in load.records if back_at <= r.t < end]
        lat = [r.outcome.elapsed for r in down if r.outcome.status is not None]
        slowest = max(lat, default=0.0)
        statuses = collections.Counter(r.outcome.label() for r in down)
        c.info(f"{name} down {outages[name]} s: {counts_text(statuses)}; after: "
               f"{counts_text(collections.Counter(r.outcome.label() for r in after))}")
        c.expect(slowest <= FAIL_FAST, f"{name} down: slowest answer {slowest:.2f} s (bound {FAIL_FAST:.0f} s), "
                 f"p50 {percentile(lat, 50) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms")
        took, back = readiness[name]
        figures.append(f"{name}: ready 503 after {took if took is None else round(took, 1)} s, "
                       f"{len(down)} answered while down ({statuses.get('503', 0)} × 503, "
                       f"{statuses.get('500', 0)} × 500, slowest {slowest:.2f} s), ready again "
                       f"{back if back is None else round(back, 1)} s after the restart")
    # Nothing acknowledged is lost; no welcome is lost or doubled; nothing
    # refused took effect.
    users = await all_users(port, token)
    lost = [uid for uid, email in load.acknowledged.items() if users.get(uid) != email]
    emails = set(users.values())
    phantom = [e for e, label in load.refused_creates.items() if e in emails]
    unknown_done = [e for e in load.pending_creates if e in emails]
    c.expect(not lost, f"{len(load.acknowledged)} acknowledged creates, {len(lost)} missing {lost[:5]}")
    c.expect(not phantom, f"{len(load.refused_creates)} creates refused (503), {len(phantom)} of them "
             f"took effect anyway {phantom[:3]}")
    c.expect(not load.pending_creates, f"{len(load.pending_creates)} creates got no answer "
             f"({len(unknown_done)} took effect)")
    found, took = await welcomes(port, token, list(load.acknowledged), 60)
    missing = [uid for uid in load.acknowledged if found.get(uid, 0) == 0]
    doubled = [uid for uid in load.acknowledged if found.get(uid, 0) > 1]
    c.expect(not missing and not doubled, f"every acknowledged user has exactly one welcome "
             f"({len(missing)} missing, {len(doubled)} doubled; waited {took:.1f} s)")
    total = load.summary()
    c.figure(f"{load.sent} requests under load, {total.get('500', 0)} × 500, "
             f"{len(load.acknowledged)} creates acknowledged, {len(lost)} lost, "
             f"{len(missing)} welcomes lost; " + "; ".join(figures)
             + f"; WebSocket after the NATS restart ({NATS_BURST} creates during the outage): {ws_outcome}")
    svc.stop()
    # The machine's own servers (which this check never touches) are up.
    for name, p in (("PostgreSQL", 5432), ("Redis", 6379), ("NATS", 4222)):
        c.info(f"shared {name} on :{p}: {'up' if servers.port_open(p) else 'DOWN'}")
    return c


# --------------------------------------------------------------------------
# Soak: mixed traffic, RSS and open descriptors sampled
# --------------------------------------------------------------------------

SOAK_RSS_BOUND_KIB = 8 * 1024   # or 10 % of the first post-warm-up sample, whichever is larger
SOAK_FD_BOUND = 4


async def check_soak(ctx):
    c = Check("soak")
    duration = 600 if ctx.long else 60
    warmup = 60 if ctx.long else 15
    every = 5 if ctx.long else 2
    # Shared mode (PostgreSQL, Redis, NATS: private servers), where every
    # storage client of the service is in the loop; the database's own cache
    # is then outside the process measured.
    pg, redis, nats = await asyncio.get_running_loop().run_in_executor(
        None, servers.private_stack, ctx.work, "soak")
    svc = ctx.service("soak", ACCESS_LOG="on", **servers.shared_env(pg, redis, nats, "soak")).start()
    port = svc.port
    token = await httpc.login("127.0.0.1", port, ADMIN_EMAIL, ADMIN_PASSWORD)
    seed = await create_users(port, token, 20, "soak")
    # Creates are balanced by deletes (each client deletes what it made), so
    # the tables stay the same size; "patch_self" changes the caller itself,
    # which drops its cached principal (the next request reloads it).
    load = Load(port, token, clients=8, ids=seed, tag="soak", record=False,
                mix=[("get_user", 30), ("me", 8), ("list", 10), ("notif", 8), ("create", 10),
                     ("patch", 6), ("patch_self", 2), ("delete", 10), ("invalid", 5), ("missing", 5),
                     ("ready", 5)])
    load_task = asyncio.ensure_future(load.run())
    samples = await servers.sample(svc, duration, every)
    load.stop.set()
    await asyncio.wait_for(load_task, 60)
    total = load.summary()
    bad = collections.Counter({f"{op} {label}": n for (ph, op, label), n in load.counts.items()
                               if not (label.isdigit() and int(label) in EXPECTED[op])})
    unexpected = sum(bad.values())
    post = [s for s in samples if s[0] >= warmup and s[1] is not None]
    c.info(f"requests: {counts_text(total)}")
    c.info("RSS KiB / fds every ~{} s: {}".format(every, " ".join(f"{r}/{f}" for _, r, f in samples)))
    if not c.expect(len(post) >= 3, f"{len(post)} samples after the {warmup} s warm-up"):
        return c
    first, last = post[0][1], post[-1][1]
    peak = max(s[1] for s in post)
    growth = last - first
    bound = max(SOAK_RSS_BOUND_KIB, first // 10)
    # Least-squares slope over the post-warm-up samples, in KiB per minute.
    n = len(post)
    mt = sum(s[0] for s in post) / n
    mr = sum(s[1] for s in post) / n
    var = sum((s[0] - mt) ** 2 for s in post) or 1.0
    slope = sum((s[0] - mt) * (s[1] - mr) for s in post) / var * 60
    fds = [s[2] for s in post]
    rate = load.sent / duration
    c.expect(unexpected == 0, f"{load.sent} requests ({rate:.0f}/s), {unexpected} with an unexpected "
             f"status or no answer {dict(bad)}")
    c.expect(growth <= bound, f"RSS after warm-up {first} KiB -> {last} KiB at the end "
             f"({growth:+d} KiB, bound {bound} KiB; peak {peak} KiB; trend {slope:+.0f} KiB/min)")
    c.expect(max(fds) - min(fds) <= SOAK_FD_BOUND,
             f"open descriptors after warm-up {min(fds)}..{max(fds)} (flat within ±{SOAK_FD_BOUND // 2})")
    svc.stop()
    c.figure(f"{duration} s, {load.sent} requests ({rate:.0f}/s), {unexpected} failed; RSS "
             f"{samples[0][1]} KiB at start, {first} KiB after {warmup} s warm-up, {last} KiB at end "
             f"({growth:+d} KiB, {slope:+.0f} KiB/min; bound {bound} KiB); fds {min(fds)}..{max(fds)}")
    return c


# --------------------------------------------------------------------------
# Idle keep-alive connections
# --------------------------------------------------------------------------

def close_sockets(socks):
    for s in socks:
        s.close()


IDLE_ROUNDS = 3


async def check_idle(ctx):
    c = Check("idle")
    n = 10_000
    svc = ctx.service("idle", ACCESS_LOG="off").start()
    port = svc.port
    limit = servers.fd_limit(svc.pid)
    c.info(f"the service's open-file limit: {limit} (no max-connections setting of its own)")
    loop = asyncio.get_running_loop()
    warm, _, _ = await loop.run_in_executor(None, httpc.open_idle_sockets, port, 300)
    close_sockets(warm)
    await asyncio.sleep(1)
    rss0, sockets0 = svc.rss_kib(), svc.sockets()
    conns, failures, took = await loop.run_in_executor(None, httpc.open_idle_sockets, port, n, 1000)
    rss1, sockets1 = svc.rss_kib(), svc.sockets()
    held = sockets1 - sockets0
    fresh = await httpc.one("127.0.0.1", port, "GET", "/health/ready", timeout=10)
    per_conn = (rss1 - rss0) * 1024 / max(held, 1)
    c.expect(not failures, f"{len(conns)} of {n} connections opened in {took:.1f} s "
             f"({dict(failures) or 'no failures'})")
    c.expect(held >= n * 0.98, f"{held} connections held by the service at once "
             f"(its sockets {sockets0} -> {sockets1})" + ("" if took < HEADER_READ_TIMEOUT else
             f"; opening them took {took:.0f} s, longer than the server's idle timeout: the machine "
             "is too loaded for this check"))
    c.expect(fresh.status == 200, f"a fresh request while they are held: {fresh.label()} "
             f"in {fresh.elapsed * 1000:.0f} ms")
    c.expect(per_conn < 64 * 1024, f"RSS {rss0} KiB -> {rss1} KiB: {per_conn:.0f} bytes per idle "
             "connection (bound 64 KiB)")
    # The server closes idle connections itself after the header read
    # timeout (between 1 and 1.5 times it): wait for that, at most 30 s.
    waited = await loop.run_in_executor(None, httpc.wait_closed_sockets, conns,
                                        HEADER_READ_TIMEOUT * 1.5 + SLACK + 5)
    reaped = [t - conns.idle_since[sock] for sock, t in zip(conns, waited) if t is not None]
    close_sockets(conns)
    await asyncio.sleep(1)
    rss2, sockets2 = svc.rss_kib(), svc.sockets()
    c.expect(len(reaped) == len(conns) and reaped and max(reaped) <= HEADER_READ_TIMEOUT * 1.5 + SLACK,
             f"{len(reaped)} of {len(conns)} idle connections closed by the server "
             f"{min(reaped, default=0):.1f}..{max(reaped, default=0):.1f} s after going idle "
             f"(header read timeout {HEADER_READ_TIMEOUT:.0f} s, closed within 1-1.5x)")
    c.expect(sockets2 <= sockets0 + 2, f"the service's sockets back to {sockets2} (before: {sockets0}); "
             f"RSS {rss2} KiB after (the allocator keeps the pages)")
    # More rounds reuse that memory rather than add to it. What stays
    # resident once a round's connections are closed (and the service has
    # let go of every socket) grows less each round as the allocator's pages
    # fill; a per-connection leak would add the same amount every round.
    kept = [rss2]
    for _ in range(IDLE_ROUNDS + (2 if ctx.long else 0) - 1):
        again, more_failures, _ = await loop.run_in_executor(None, httpc.open_idle_sockets, port, n, 1000)
        close_sockets(again)
        failures.update(more_failures)
        for _ in range(200):
            if svc.sockets() <= sockets0 + 2:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        kept.append(svc.rss_kib())
    added = [b - a for a, b in zip(kept, kept[1:])]
    c.expect(not failures and added[-1] <= (rss1 - rss0) // 4,
             f"{len(kept)} rounds of {n}: resident after each round closed {' -> '.join(str(k // 1024) for k in kept)} "
             f"MiB, later rounds adding {', '.join(f'{a // 1024:+d}' for a in added)} MiB (the last at most a "
             f"quarter of the first round's {(rss1 - rss0) // 1024} MiB)")
    after = await httpc.one("127.0.0.1", port, "GET", "/health/ready", timeout=10)
    c.expect(after.status == 200, f"still serving afterwards: {after.label()}")
    svc.stop()
    c.figure(f"{held} idle keep-alive connections held (opened in {took:.1f} s); RSS {rss0} KiB -> "
             f"{rss1} KiB = {per_conn:.0f} bytes per connection; fresh request {fresh.label()} in "
             f"{fresh.elapsed * 1000:.0f} ms while held; reaped by the server after "
             f"{min(reaped, default=0):.1f}..{max(reaped, default=0):.1f} s idle; RSS {rss2} KiB after "
             f"(kept by the allocator); after {len(kept)} rounds: {' -> '.join(str(k // 1024) for k in kept)} MiB; "
             f"fd limit {limit}, no connection limit")
    return c


# --------------------------------------------------------------------------
# Slow clients: slowloris heads, slow and stalled bodies
# --------------------------------------------------------------------------

SLOWLORIS_CLIENTS = 20
# The service's body timeouts for this check (BODY_READ_TIMEOUT: a read
# waiting longer for the next bytes; BODY_TOTAL_TIMEOUT: the whole body),
# shorter than the defaults (30 s, none) so that both show within the check.
BODY_READ_TIMEOUT = 10.0
BODY_TOTAL_TIMEOUT = 20.0
SLOW_BODY_WAIT = BODY_TOTAL_TIMEOUT + SLACK + 5


async def slowloris(port, interval):
    """One client trickling a never-ending head, a byte every `interval` s:
    (seconds until the server closed the connection or None, bytes sent,
    what the server sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    sent = 0
    stop = asyncio.Event()

    async def trickle():
        nonlocal sent
        try:
            writer.write(b"GET /health/live HTTP/1.1\r\nhost: x\r\n")
            await writer.drain()
            for i in range(100000):
                for b in f"x-pad-{i}: a\r\n".encode():
                    if stop.is_set():
                        return
                    writer.write(bytes([b]))
                    await writer.drain()
                    sent += 1
                    await asyncio.sleep(interval)
        except OSError:
            return

    task = asyncio.ensure_future(trickle())
    data, closed, _ = await httpc.read_until_closed(reader, HEADER_READ_TIMEOUT * 1.5 + SLACK + 5)
    took = time.monotonic() - started if closed else None
    stop.set()
    await task
    writer.close()
    return took, sent, data


async def slow_body(port, token, trickle_every):
    """A create whose body (200 bytes announced) stops after 20 bytes, then
    trickles a byte every `trickle_every` s (None: never): (status or
    None, seconds, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /api/v1/users HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n"
            "content-type: application/json\r\ncontent-length: 200\r\n\r\n").encode()
    writer.write(head + b'{"name": "Slow Body"')
    await writer.drain()
    started = time.monotonic()
    stop = asyncio.Event()

    async def trickle():
        try:
            for _ in range(150):
                await asyncio.sleep(trickle_every)
                if stop.is_set():
                    return
                writer.write(b" ")
                await writer.drain()
        except OSError:
            return

    task = asyncio.ensure_future(trickle()) if trickle_every else None
    try:
        status, _, body = await asyncio.wait_for(httpc.read_response(reader), SLOW_BODY_WAIT)
    except (asyncio.TimeoutError, httpc._Incomplete, OSError):
        status, body = None, b""
    took = time.monotonic() - started
    stop.set()
    if task:
        await task
    writer.close()
    return status, took, body


async def check_timeouts(ctx):
    c = Check("timeouts")
    svc = ctx.service("timeouts", ACCESS_LOG="off", BODY_READ_TIMEOUT=str(BODY_READ_TIMEOUT),
                      BODY_TOTAL_TIMEOUT=str(BODY_TOTAL_TIMEOUT)).start()
    port = svc.port
    token = await httpc.login("127.0.0.1", port, ADMIN_EMAIL, ADMIN_PASSWORD)
    lorises = [asyncio.ensure_future(slowloris(port, 0.2)) for _ in range(SLOWLORIS_CLIENTS)]
    bodies = [asyncio.ensure_future(slow_body(port, token, None)),
              asyncio.ensure_future(slow_body(port, token, 1.0))]
    # Everyone else is served meanwhile.
    served = collections.Counter()
    for _ in range(10):
        await asyncio.sleep(1)
        out = await httpc.one("127.0.0.1", port, "GET", "/api/v1/users/me", token, timeout=10)
        served[out.label()] += 1
    cut = await asyncio.gather(*lorises)
    times = [t for t, _, _ in cut if t is not None]
    sent = sum(n for _, n, _ in cut)
    answers = collections.Counter((d[:12].decode("latin-1") or "nothing") for _, _, d in cut)
    c.expect(len(times) == SLOWLORIS_CLIENTS and max(times) <= HEADER_READ_TIMEOUT * 1.5 + SLACK,
             f"{len(times)} of {SLOWLORIS_CLIENTS} slowloris clients (a header byte every 200 ms) cut "
             f"after {min(times, default=0):.1f}..{max(times, default=0):.1f} s (header read timeout "
             f"{HEADER_READ_TIMEOUT:.0f} s, cut within 1-1.5x); {sent} bytes trickled; answered {dict(answers)}")
    c.expect(served == collections.Counter({"200": 10}),
             f"other clients served meanwhile: {dict(served)}")
    (stalled, stalled_s, stalled_body), (trickled, trickled_s, trickled_body) = await asyncio.gather(*bodies)
    for what, status, took, body, limit in (
            ("stalled after 20 of 200 bytes", stalled, stalled_s, stalled_body,
             f"BODY_READ_TIMEOUT={BODY_READ_TIMEOUT:.0f} s"),
            ("trickled a byte a second", trickled, trickled_s, trickled_body,
             f"BODY_TOTAL_TIMEOUT={BODY_TOTAL_TIMEOUT:.0f} s")):
        bound = BODY_READ_TIMEOUT if what.startswith("stalled") else BODY_TOTAL_TIMEOUT
        detail = isinstance((httpc.parse_json(body) or {}).get("detail"), str)
        c.expect(status == 408 and detail and bound - 1 <= took <= bound + SLACK,
                 f"a body {what}: " + (f"answered {status} after {took:.1f} s {body[:80]!r}" if status is not None
                                       else f"no answer within {SLOW_BODY_WAIT:.0f} s")
                 + f" ({limit}: 408 JSON within {bound:.0f}..{bound + SLACK:.0f} s)")
    out = await httpc.one("127.0.0.1", port, "GET", "/health/ready", timeout=10)
    c.expect(out.status == 200, f"still serving afterwards: {out.label()}")
    svc.stop()

    def fmt(status, took):
        return f"{status} after {took:.1f} s" if status is not None else f"none in {SLOW_BODY_WAIT:.0f} s"

    c.figure(f"slowloris x{SLOWLORIS_CLIENTS}: cut after {min(times, default=0):.1f}..{max(times, default=0):.1f} s "
             f"(header timeout {HEADER_READ_TIMEOUT:.0f} s); others served {served.get('200', 0)}/10; "
             f"stalled body: {fmt(stalled, stalled_s)} (BODY_READ_TIMEOUT {BODY_READ_TIMEOUT:.0f} s); "
             f"trickled body: {fmt(trickled, trickled_s)} (BODY_TOTAL_TIMEOUT {BODY_TOTAL_TIMEOUT:.0f} s)")
    return c


# --------------------------------------------------------------------------
# Security cases over HTTP
# --------------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1",
    "1 OR 1=1",
    "1; DROP TABLE users; --",
    "1' UNION SELECT id, password_hash, email, created_at FROM users --",
    "'); DELETE FROM users; --",
    "1' AND (SELECT pg_sleep(3)) IS NULL --",
    "1 AND SLEEP(3)",
    "\\' OR 1=1 /*",
    "$1",
    "?",
    "%",
    "_",
    "\u0000",
]


LOGIN_FLOOD = 64
LOGIN_FLOOD_RSS_KIB = 256 * 1024
LOGIN_SETTLED_KIB = 16 * 1024


def b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_jwt(header, claims, secret=JWT_SECRET, digest="sha256", signature=None):
    import hashlib
    import hmac
    signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    if signature is None:
        signature = b64url(hmac.new(secret.encode(), signing.encode(), getattr(hashlib, digest)).digest())
    return f"{signing}.{signature}"


def quote(text):
    from urllib.parse import quote as q
    return q(text, safe="")


async def raw_exchange(port, data, seconds=10):
    """Sends raw bytes on a new connection and reads one response: (status
    or None when the server answered nothing, seconds)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        writer.write(data)
        await writer.drain()
    except OSError:
        pass
    try:
        status, _, _ = await asyncio.wait_for(httpc.read_response(reader), seconds)
    except (httpc._Incomplete, asyncio.TimeoutError, OSError):
        status = None
    writer.close()
    return status, time.monotonic() - started


def json_items(value):
    """Every (key, value) of the objects in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from json_items(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_items(v)


async def check_security(ctx):
    c = Check("security")
    svc = ctx.service("security", INTERNAL_TOKEN="reliability-internal-token",
                      CORS_ORIGINS="https://app.example.com").start()
    port = svc.port
    admin = await httpc.login("127.0.0.1", port, ADMIN_EMAIL, ADMIN_PASSWORD)
    passwords = {f"secret{i}@example.com": f"Pw-{os.urandom(6).hex()}-reliability" for i in range(3)}
    for i, (email, pw) in enumerate(passwords.items()):
        out = await httpc.one("127.0.0.1", port, "POST", "/api/v1/users", admin,
                              {"name": f"Secret {i}", "email": email, "age": 30, "password": pw})
        c.expect(out.status == 201, f"user with a password created ({out.label()})")
    victim = out.json()["id"]
    user_token = await httpc.login("127.0.0.1", port, email, pw)
    before = await all_users(port, admin)
    responses = []  # every response body, for the password check
    statuses = collections.Counter()
    slowest = 0.0

    async def call(method, path, token=admin, body=None, headers=None):
        nonlocal slowest
        out = await httpc.one("127.0.0.1", port, method, path, token, body, headers, timeout=15)
        responses.append(out.body)
        statuses[out.label()] += 1
        slowest = max(slowest, out.elapsed)
        return out

    # 1. SQL injection strings in every parameter of the users API.
    bad = []
    for inj in INJECTIONS:
        q = quote(inj)
        cases = [
            ("GET", f"/api/v1/users/{q}", None, {422}),
            ("PATCH", f"/api/v1/users/{q}", {"name": "Patched"}, {422}),
            ("DELETE", f"/api/v1/users/{q}", None, {422}),
            ("GET", f"/api/v1/users/{q}/notifications", None, {422}),
            ("GET", f"/api/v1/users/{q}/avatar", None, {422}),
            ("GET", f"/api/v1/users?skip={q}", None, {422}),
            ("GET", f"/api/v1/users?limit={q}", None, {422}),
            ("GET", f"/api/v1/users?skip=0&limit=5&{q}={q}", None, {200}),
            ("GET", f"/api/v2/users?cursor={q}", None, {422}),
            ("GET", f"/api/v2/users?limit={q}", None, {422}),
        ]
        for method, path, body, want in cases:
            out = await call(method, path, body=body)
            if out.status not in want:
                bad.append(f"{method} {path} -> {out.label()}")
            elif out.status == 200 and path.startswith("/api/v1/users?") and len(out.json()) > 5:
                bad.append(f"{method} {path} returned {len(out.json())} rows (limit 5)")
        # In a body: stored verbatim (bound parameters), or refused by validation.
        name = ("N" + inj)[:50] if len(inj) >= 1 else "NN"
        out = await call("POST", "/api/v1/users",
                         body={"name": name.ljust(2, "x"), "email": f"inj{len(responses)}@example.com", "age": 30})
        if out.status != 201 or out.json()["name"] != name.ljust(2, "x"):
            bad.append(f"POST name={name!r} -> {out.label()} {out.body[:80]!r}")
        else:
            uid = out.json()["id"]
            back = await call("GET", f"/api/v1/users/{uid}")
            if back.status != 200 or back.json()["name"] != name.ljust(2, "x"):
                bad.append(f"GET back name={name!r} -> {back.label()}")
            out = await call("PATCH", f"/api/v1/users/{uid}", body={"name": ("P" + inj)[:50].ljust(2, "x")})
            if out.status != 200 or out.json()["name"] != ("P" + inj)[:50].ljust(2, "x"):
                bad.append(f"PATCH name={inj!r} -> {out.label()}")
            out = await call("DELETE", f"/api/v1/users/{uid}")
            if out.status != 204:
                bad.append(f"DELETE {uid} -> {out.label()}")
        out = await call("POST", "/api/v1/users", body={"name": "Email Inj", "email": inj, "age": 30})
        if out.status != 422:
            bad.append(f"POST email={inj!r} -> {out.label()}")
        out = await call("POST", "/api/v1/users", body={"name": "Age Inj", "email": "age-inj@example.com",
                                                        "age": inj})
        if out.status != 422:
            bad.append(f"POST age={inj!r} -> {out.label()}")
        # The login form: never a token.
        for form in ({"username": f"{ADMIN_EMAIL}' --", "password": inj},
                     {"username": inj, "password": inj},
                     {"username": ADMIN_EMAIL, "password": inj}):
            out = await call("POST", "/api/v1/auth/token", token=None, body=httpc.login_form(form["username"], form["password"]),
                             headers={"content-type": "application/x-www-form-urlencoded"})
            if out.status not in (401, 422):
                bad.append(f"login {form} -> {out.label()}")
        out = await call("GET", "/api/v1/users/me", headers={"x-request-id": inj.replace("\u0000", "")[:100]})
        if out.status != 200:
            bad.append(f"x-request-id {inj!r} -> {out.label()}")
    after = await all_users(port, admin)
    c.expect(not bad, f"{len(INJECTIONS)} injection strings in path, query, body, login form and "
             f"header: {sum(statuses.values())} requests, statuses {dict(statuses)}; wrong: {bad[:4]}")
    c.expect(before == after, f"the users table is unchanged by them ({len(before)} users before and after)")
    c.expect(slowest < 2.5, f"no injected sleep ran: slowest answer {slowest:.2f} s")
    fivexx = sum(n for k, n in statuses.items() if k.isdigit() and int(k) >= 500)

    # 2. Path traversal in file routes (avatars, docs assets).
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    escape = os.path.join(ctx.work, "escaped.png")
    for filename in ("../../../../../../" + escape.lstrip("/"), "..%2F..%2Fescaped.png", "/" + escape.lstrip("/")):
        boundary = "reliability-boundary"
        body = (f"--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                f"content-type: image/png\r\n\r\n").encode() + png + f"\r\n--{boundary}--\r\n".encode()
        out = await call("PUT", f"/api/v1/users/{victim}/avatar", body=body,
                         headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        c.expect(out.status == 204 and not os.path.exists(escape),
                 f"avatar upload named {filename[:40]!r}: {out.label()}, stored under the user's key only")
    out = await call("GET", f"/api/v1/users/{victim}/avatar")
    c.expect(out.status == 200 and out.body == png, f"the avatar reads back ({out.label()}, {len(out.body)} bytes)")
    leaks = []
    for path in ("/api/v1/users/..%2F..%2F..%2Fetc%2Fpasswd/avatar", "/api/v1/users/1/avatar/../../../../etc/passwd",
                 "/api/v1/users/%2e%2e%2f%2e%2e%2fetc%2fpasswd/avatar", "/docs/../../../../etc/passwd",
                 "/docs/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/docs/..%2f..%2f..%2fetc%2fpasswd",
                 "/redoc/..%5c..%5c..%5cetc%5cpasswd", "/static/../../etc/passwd", "//etc/passwd",
                 "/api/v1/users/1/avatar%00.png"):
        out = await call("GET", path)
        if out.status is None or out.status >= 500 or out.status == 200 or b"root:" in out.body:
            leaks.append(f"{path} -> {out.label()}")
    c.expect(not leaks, f"10 traversal paths: none served a file ({leaks or 'all 4xx'})")

    # 3. Oversized and malformed heads.
    head_cases = []
    for kib in (8, 16, 32, 64, 128, 256, 512, 1024):
        status, _ = await raw_exchange(
            port, b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (kib * 1024) + b"\r\n\r\n", 5)
        head_cases.append((f"{kib} KiB header", status))
    accepted = [k for k, st in head_cases if st == 200]
    refused = [k for k, st in head_cases if st == 431]
    malformed = {
        "150 headers": (b"GET /health/live HTTP/1.1\r\nhost: x\r\n"
                        + b"".join(b"x-%d: v\r\n" % i for i in range(150)) + b"\r\n", {431}),
        "70 KB URI": (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", {414}),
        "header without colon": (b"GET /health/live HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n", {400}),
        "NUL in a value": (b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-a: a\x00b\r\n\r\n", {400}),
        "bare CR in a value": (b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-a: a\rb\r\n\r\n", {400}),
        "space in a name": (b"GET /health/live HTTP/1.1\r\nhost: x\r\nx a: b\r\n\r\n", {400}),
        "obsolete line folding": (b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-a: b\r\n c\r\n\r\n", {400}),
        "two content-lengths": (b"POST /api/v1/users HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
                                b"content-length: 6\r\n\r\nabcde", {400}),
        "content-length: abc": (b"POST /api/v1/users HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n", {400}),
        "unknown HTTP version": (b"GET /health/live HTTP/9.9\r\nhost: x\r\n\r\n", {400, 505}),
        "binary garbage": (os.urandom(512) + b"\r\n\r\n", {400, None}),
        "HTTP/1.1 without Host": (b"GET /health/live HTTP/1.1\r\n\r\n", {400}),
        "two Host headers": (b"GET /health/live HTTP/1.1\r\nhost: x\r\nhost: y\r\n\r\n", {400}),
    }
    wrong = []
    for what, (data, want) in malformed.items():
        status, _ = await raw_exchange(port, data, 5)
        head_cases.append((what, status))
        if status not in want:
            wrong.append(f"{what} -> {status}")
    out = await httpc.one("127.0.0.1", port, "GET", "/health/ready", timeout=10)
    c.expect(not wrong and out.status == 200,
             f"malformed heads refused: {', '.join(f'{k} {v}' for k, v in head_cases[8:])}; still serving "
             f"({out.label()}); wrong: {wrong}")
    c.expect(refused and not any(st is None or st >= 500 for _, st in head_cases[:8]),
             f"header size: served up to {accepted[-1] if accepted else '-'}, 431 from "
             f"{refused[0] if refused else 'never'} (hyper's read buffer limit)")

    # 4. /internal/* and /admin/* without credentials.
    checks = [("GET", "/internal/config", None, {}, 403), ("GET", "/internal/config", None,
              {"x-internal-token": "wrong"}, 403), ("GET", "/internal/config", admin, {}, 403),
              ("GET", "/admin/stats", None, {}, 401), ("GET", "/admin/stats", user_token, {}, 403),
              ("GET", "/admin/stats", admin + "x", {}, 401)]
    # Tokens signed with the right secret but not as the service signs them.
    now = int(time.time())
    forged = {
        "alg HS512 (same secret)": forge_jwt({"alg": "HS512", "typ": "JWT"}, {"sub": "1", "exp": now + 600},
                                             digest="sha512"),
        "alg HS384 (same secret)": forge_jwt({"alg": "HS384", "typ": "JWT"}, {"sub": "1", "exp": now + 600},
                                             digest="sha384"),
        "alg RS256 with an HMAC signature": forge_jwt({"alg": "RS256", "typ": "JWT"},
                                                      {"sub": "1", "exp": now + 600}),
        "alg none": forge_jwt({"alg": "none", "typ": "JWT"}, {"sub": "1", "exp": now + 600}, signature=""),
        "signature stripped": forge_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1", "exp": now + 600},
                                        signature=""),
        "nbf in the future": forge_jwt({"alg": "HS256", "typ": "JWT"},
                                       {"sub": "1", "exp": now + 600, "nbf": now + 300}),
        "no exp": forge_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1"}),
        "expired": forge_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1", "exp": now - 10}),
        "sub '1 OR 1=1' (valid signature)": forge_jwt({"alg": "HS256", "typ": "JWT"},
                                                      {"sub": "1 OR 1=1", "exp": now + 600}),
        "sub of no user (valid signature)": forge_jwt({"alg": "HS256", "typ": "JWT"},
                                                      {"sub": "987654321", "exp": now + 600}),
        "wrong secret": forge_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1", "exp": now + 600},
                                  secret="another-secret-of-some-length"),
    }
    for what, token in forged.items():
        checks.append(("GET", "/admin/stats", token, {}, 401))
    good = forge_jwt({"alg": "HS256", "typ": "JWT"}, {"sub": "1", "exp": now + 600})
    refusals = []
    for method, path, token, headers, want in checks:
        out = await call(method, path, token=token, headers=headers)
        if out.status != want or not isinstance((out.json() or {}).get("detail"), str):
            refusals.append(f"{path} {headers or ''} -> {out.label()} (want {want})")
    out = await call("GET", "/admin/stats", token=good)
    c.expect(out.status == 200, f"a token forged with the right secret the way the service signs works "
             f"({out.label()}): the forgeries below differ only in what they test")
    c.expect(not refusals, f"{len(checks)} requests to /internal and /admin without valid credentials "
             f"({len(forged)} forged tokens: {', '.join(forged)}) refused with JSON 401/403: {refusals or 'all'}")
    out = await call("GET", "/internal/config", token=None, headers={"x-internal-token": "reliability-internal-token"})
    c.expect(out.status == 200 and b"reliability-internal-token" not in out.body and JWT_SECRET.encode()
             not in out.body and ADMIN_PASSWORD.encode() not in out.body,
             f"/internal/config with the token: {out.label()}, secrets masked")

    # 5. CORS: a refused origin gets no allow-origin; never * with credentials.
    out = await call("OPTIONS", "/api/v1/users", token=None, headers={
        "origin": "https://evil.example.com", "access-control-request-method": "GET"})
    ok_evil = "access-control-allow-origin" not in out.headers
    out2 = await call("GET", "/api/v1/users/me", headers={"origin": "https://app.example.com"})
    allow = out2.headers.get("access-control-allow-origin")
    c.expect(ok_evil and allow == "https://app.example.com" and not (
        allow == "*" and out2.headers.get("access-control-allow-credentials") == "true"),
        f"CORS: a foreign origin's preflight gets no allow-origin ({out.label()}), the listed one is echoed")

    # 6. A decompression bomb: 64 MiB of zeros gzip-compressed to ~64 KiB.
    bomb = gzip.compress(b"\0" * (64 << 20), 9)
    rss_before = svc.rss_kib()
    out = await call("POST", "/api/v1/users", body=bomb,
                     headers={"content-type": "application/json", "content-encoding": "gzip"})
    rss_after = svc.rss_kib()
    c.expect(out.status == 413, f"a gzip bomb ({len(bomb)} bytes -> 64 MiB): {out.label()} in "
             f"{out.elapsed:.2f} s {out.body[:100]!r}; RSS {rss_before} -> {rss_after} KiB")
    c.expect(rss_after - rss_before < 32 * 1024, f"the bomb did not inflate the process "
             f"({rss_after - rss_before:+d} KiB)")
    bomb_status = out.status
    small = gzip.compress(json.dumps({"name": "Gzip Body", "email": "gzip@example.com", "age": 30}).encode())
    out = await call("POST", "/api/v1/users", body=small,
                     headers={"content-type": "application/json", "content-encoding": "gzip"})
    c.info(f"a small gzip-compressed JSON body: {out.label()} {out.body[:100]!r}")
    small_status = out.status

    # 7. Passwords never in responses or in the JSON logs.
    for email, pw in passwords.items():
        await call("POST", "/api/v1/auth/token", token=None, body=httpc.login_form(email, pw),
                   headers={"content-type": "application/x-www-form-urlencoded"})
        await call("POST", "/api/v1/auth/token", token=None, body=httpc.login_form(email, pw + "-wrong"),
                   headers={"content-type": "application/x-www-form-urlencoded"})
    await call("PATCH", f"/api/v1/users/{victim}", body={"password": "Pw-patched-reliability"})
    await call("GET", "/api/v1/users?limit=1000")
    await call("GET", "/api/v2/users?limit=1000")
    await call("GET", f"/api/v1/users/{victim}")
    await call("GET", "/admin/stats")
    await asyncio.sleep(0.5)
    secrets = list(passwords.values()) + [ADMIN_PASSWORD, "Pw-patched-reliability"]
    secrets += [p + "-wrong" for p in passwords.values()]
    in_responses = [p for p in secrets if any(p.encode() in r for r in responses)]
    hashes = [r for r in responses if b"$argon2" in r
              or any("password" in k.lower() and v != "***" for k, v in json_items(httpc.parse_json(r)))]
    log = svc.log_text()
    in_logs = [p for p in secrets if p in log] + (["$argon2"] if "$argon2" in log else [])
    lines = log.count("\n")
    c.expect(not in_responses and not hashes, f"{len(responses)} responses: no password or hash in any "
             f"({in_responses}, {len(hashes)} with a hash or a password field {hashes[:2]})")
    c.expect(not in_logs and lines > 100, f"{lines} JSON log lines: no password or hash ({in_logs})")
    # 8. A login flood: anonymous wrong-password logins, all at once. Each
    # costs an Argon2id hash (19 MiB of memory): their number at a time,
    # and the memory they hold, must be bounded whatever clients do.
    rss_before = svc.rss_kib()
    started = time.monotonic()
    outs = await asyncio.gather(*(httpc.one(
        "127.0.0.1", port, "POST", "/api/v1/auth/token", body=httpc.login_form(ADMIN_EMAIL, f"wrong-{i}"),
        headers={"content-type": "application/x-www-form-urlencoded"}, timeout=120) for i in range(LOGIN_FLOOD)))
    took = time.monotonic() - started
    flood = collections.Counter(o.label() for o in outs)
    rss_flood = svc.rss_kib()
    threads = len(os.listdir(f"/proc/{svc.pid}/task"))
    c.expect(set(flood) <= {"401", "429", "503"}, f"{LOGIN_FLOOD} concurrent wrong-password logins: "
             f"{dict(flood)} in {took:.1f} s")
    c.expect(rss_flood - rss_before <= LOGIN_FLOOD_RSS_KIB,
             f"memory bounded under the login flood: RSS {rss_before} -> {rss_flood} KiB "
             f"({(rss_flood - rss_before) // 1024:+d} MiB, bound {LOGIN_FLOOD_RSS_KIB // 1024} MiB), "
             f"{threads} threads")
    # Once no hash runs, the hash memory (19 MiB per place) is given back:
    # what stays is less than one place's.
    rss_settled = svc.rss_kib()
    for _ in range(20):
        if rss_settled - rss_before < LOGIN_SETTLED_KIB:
            break
        await asyncio.sleep(0.25)
        rss_settled = svc.rss_kib()
    c.expect(rss_settled - rss_before < LOGIN_SETTLED_KIB,
             f"hash memory given back after the flood: RSS {rss_before} -> {rss_settled} KiB "
             f"({(rss_settled - rss_before) // 1024:+d} MiB, bound {LOGIN_SETTLED_KIB // 1024} MiB)")
    svc.stop()
    c.figure(f"{sum(statuses.values())} requests, {fivexx} × 5xx; {len(INJECTIONS)} injection strings × "
             f"14 parameters: users unchanged ({len(after)}); 13 traversal attempts: none served; "
             f"headers accepted up to {accepted[-1] if accepted else '-'}, 431 from "
             f"{refused[0] if refused else 'never'}; {len(malformed)} malformed heads: 4xx; "
             f"{len(checks)} credential-less or forged requests: 401/403; gzip bomb: {bomb_status}, a small gzip body: {small_status}; "
             f"passwords in {len(responses)} responses / {lines} log lines: {len(in_responses) + len(in_logs)}; "
             f"{LOGIN_FLOOD} concurrent logins: RSS {rss_before // 1024} -> {rss_flood // 1024} MiB "
             f"({rss_settled // 1024} MiB once idle), "
             f"{threads} threads")
    return c


# --------------------------------------------------------------------------

async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--long", action="store_true")
    p.add_argument("--only", default=",".join(CHECKS))
    args = p.parse_args()
    # SIGTERM (the CI time limit) ends the run through the normal exit
    # path, so that every process started here is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = Ctx(args)
    wanted = [n for n in args.only.split(",") if n]
    unknown = set(wanted) - set(CHECKS)
    if unknown:
        p.error(f"unknown checks {sorted(unknown)}")
    results = []

    async def run(name):
        started = time.monotonic()
        print(f"== {name}", flush=True)
        try:
            check = await globals()[f"check_{name}"](ctx)
        except Exception as e:  # a check that could not run is a failed check
            import traceback
            traceback.print_exc()
            check = Check(name)
            check.expect(False, f"the check could not run: {type(e).__name__}: {e}")
        check.figure(f"{time.monotonic() - started:.0f} s")
        print(check.line(), flush=True)
        return check

    for group in GROUPS:
        names = [n for n in group if n in wanted]
        try:
            results += await asyncio.gather(*(run(n) for n in names))
        finally:
            servers.stop_all()
    print("== figures")
    for check in results:
        print(check.line())
    failed = [c.name for c in results if c.failures]
    print(f"{len(failed)} of {len(results)} checks failed{': ' + ', '.join(failed) if failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
