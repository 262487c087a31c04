"""Two instances behind nginx behave as one service (issue 9).

usage: check.py --a HOST:PORT --b HOST:PORT --lb HOST:PORT --a-pid PID --password P
"""
import argparse
import asyncio
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import websockets

p = argparse.ArgumentParser()
p.add_argument("--a")
p.add_argument("--b")
p.add_argument("--lb")
p.add_argument("--a-pid", type=int)
p.add_argument("--password")
args = p.parse_args()
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what, flush=True)
    if not cond:
        failures.append(what)


def call(host, method, path, token=None, body=None, form=None, timeout=10):
    headers = {}
    data = None
    if token:
        headers["authorization"] = f"Bearer {token}"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    req = urllib.request.Request(f"http://{host}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            raw = res.read()
            return res.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def login(host, user, password):
    status, body = call(host, "POST", "/api/v1/auth/token", form={"username": user, "password": password})
    assert status == 200, (status, body)
    return body["access_token"]


# 1. A token issued through nginx works on A and on B directly.
token = login(args.lb, "admin@example.com", args.password)
for name, host in (("A", args.a), ("B", args.b)):
    status, me = call(host, "GET", "/api/v1/users/me", token)
    check(status == 200 and me["email"] == "admin@example.com", f"the token works on instance {name} ({status})")


# 2. A user created through A appears on a WebSocket connected to B.
async def ws_sees_user():
    async with websockets.connect(f"ws://{args.b}/ws/events?token={token}") as ws:
        await asyncio.sleep(0.3)
        status, user = await asyncio.to_thread(
            call, args.a, "POST", "/api/v1/users", token,
            {"name": "Cross Instance", "email": "cross@example.com", "age": 30})
        check(status == 201, f"user created through A ({status})")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = json.loads(await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic()))
            if msg.get("type") == "user.created" and msg["data"]["id"] == user["id"]:
                return True
    return False


check(asyncio.run(ws_sees_user()), "B's WebSocket received user.created for the user made on A")

# 3. The rate limit is shared: a fresh user's 200/min across both instances.
status, _ = call(args.lb, "POST", "/api/v1/users", token,
                 {"name": "Limited", "email": "limited@example.com", "age": 30, "password": "limited-pass"})
limited = login(args.lb, "limited@example.com", "limited-pass")
refused_at = None
for i in range(400):
    status, _ = call(args.a if i % 2 == 0 else args.b, "GET", "/api/v1/users/me", limited)
    if status == 429:
        refused_at = i
        break
# 200 per minute is a burst of 200 plus one more every 0.3 s while the
# loop runs (a second or a few on a loaded machine): separate buckets per
# instance would allow 400 or more.
check(refused_at is not None and 195 <= refused_at < 300,
      f"one limit across A and B: request {refused_at} (0-based) refused, quota 200/min")

# 4. SIGKILL of A under light load through nginx: no acknowledged write is
#    lost, and nginx fails over.
acknowledged, results, stop = [], [], threading.Event()
killed_at = [None]


def writer():
    for i in range(120):
        if stop.is_set():
            break
        status, body = call(args.lb, "POST", "/api/v1/users", token,
                            {"name": f"Load {i}", "email": f"load{i}@example.com", "age": 30}, timeout=5)
        results.append((time.monotonic(), status))
        if status == 201:
            acknowledged.append(body["id"])
        time.sleep(0.02)


t = threading.Thread(target=writer)
t.start()
time.sleep(1.0)
# A welcome task enqueued on A right before the kill (A waits 2.5 s before
# running its tasks): the survivor must run it.
status, doomed = call(args.a, "POST", "/api/v1/users", token,
                      {"name": "Doomed Welcome", "email": "doomed@example.com", "age": 30})
check(status == 201, f"user created on A just before the kill ({status})")
os.kill(args.a_pid, signal.SIGKILL)
killed_at[0] = time.monotonic()
t.join(timeout=60)
stop.set()
after = [s for (at, s) in results if at > killed_at[0] + 1.0]
failed = [s for (_, s) in results if s != 201]
check(len(acknowledged) >= 60, f"{len(acknowledged)} writes acknowledged under load")
check(after and all(s == 201 for s in after),
      f"nginx fails over: all {len(after)} requests from 1 s after the kill succeed")
check(len(failed) <= 3, f"at most the in-flight requests failed at the kill ({len(failed)}: {failed})")
# One read of the whole table on the survivor (keyset pages of 1000).
present, cursor = set(), None
for _ in range(20):
    path = "/api/v2/users?limit=1000" + (f"&cursor={cursor}" if cursor else "")
    status, page = call(args.b, "GET", path, token)
    if status != 200:
        break
    present.update(u["id"] for u in page["items"])
    cursor = page["next_cursor"]
    if not cursor:
        break
missing = [uid for uid in acknowledged if uid not in present]
check(status == 200 and not missing,
      f"every acknowledged write is on the survivor ({len(acknowledged)} checked, missing {missing[:5]})")

# 5. The welcome task enqueued on the killed instance runs on the survivor.
notes = []
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    status, notes = call(args.b, "GET", f"/api/v1/users/{doomed['id']}/notifications", token)
    if status == 200 and notes:
        break
    time.sleep(0.3)
check(len(notes) == 1 and notes[0]["kind"] == "welcome",
      f"the welcome of the user made on A ran on B ({notes})")

print(f"{len(failures)} failed")
raise SystemExit(1 if failures else 0)
