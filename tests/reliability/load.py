"""The load generator of the reliability checks: N concurrent keep-alive
clients doing a weighted mix of the users API's operations, recording how
every request ended (status, or how it failed) and which creates were
acknowledged."""
import asyncio
import collections
import random
import time

import httpc

# op -> the statuses that mean "worked" in normal operation.
EXPECTED = {
    "get_user": {200},   # a known user (served from the cache after the first read)
    "me": {200},
    "list": {200},       # GET /api/v1/users?limit=10 (always the database)
    "create": {201},
    "create_pw": {201},  # with a password: an Argon2id hash, the slowest request
    "notif": {200},      # a known user's notifications (always the database)
    "patch": {200},      # the client's own created user
    "patch_self": {200},  # the caller itself (drops its cached principal)
    "delete": {204},     # the client's own created user
    "invalid": {422},    # a create with a bad body
    "missing": {404},    # a user id that does not exist
    "ready": {200},
}


class Record:
    __slots__ = ("t", "phase", "op", "outcome")

    def __init__(self, t, phase, op, outcome):
        self.t, self.phase, self.op, self.outcome = t, phase, op, outcome


class Load:
    def __init__(self, port, token, clients, mix, ids, tag, record=True, stop_on_refused=False,
                 timeout=15.0, pause=0.0):
        self.port, self.token, self.clients = port, token, clients
        self.ops = [op for op, _ in mix]
        self.weights = [w for _, w in mix]
        self.ids = list(ids)
        self.tag = tag
        self.record = record
        self.stop_on_refused = stop_on_refused
        self.timeout = timeout
        self.pause = pause
        self.self_id = 1  # the admin, whose token the clients use
        self.phase = "run"
        self.stop = asyncio.Event()
        self.records = []
        self.counts = collections.Counter()      # (phase, op, label)
        self.acknowledged = {}                   # id -> email
        self.pending_creates = {}                # email -> phase, for creates with no answer
        self.refused_creates = {}                # email -> label, for creates refused with a status
        self.sent = 0
        self.started = time.monotonic()
        self.latencies = collections.defaultdict(list)  # (phase, op) -> seconds (answered only)

    def summary(self, phase=None):
        c = collections.Counter()
        for (ph, op, label), n in self.counts.items():
            if phase is None or ph == phase:
                c[label] += n
        return c

    def _request(self, op, rng, own, client, seq):
        if op == "get_user":
            return "GET", f"/api/v1/users/{rng.choice(self.ids)}", None
        if op == "me":
            return "GET", "/api/v1/users/me", None
        if op == "list":
            return "GET", "/api/v1/users?limit=10", None
        if op == "notif":
            return "GET", f"/api/v1/users/{rng.choice(self.ids)}/notifications", None
        if op == "invalid":
            return "POST", "/api/v1/users", {"name": "x", "email": "not-an-email", "age": 7}
        if op == "missing":
            return "GET", f"/api/v1/users/{900000000 + seq}", None
        if op == "ready":
            return "GET", "/health/ready", None
        if op == "patch_self":
            return "PATCH", f"/api/v1/users/{self.self_id}", {"age": 30 + seq % 60}
        if op in ("patch", "delete") and own:
            uid = own[-1] if op == "patch" else own.pop(0)
            if op == "patch":
                return "PATCH", f"/api/v1/users/{uid}", {"age": 18 + seq % 90}
            return "DELETE", f"/api/v1/users/{uid}", None
        email = f"{self.tag}-{client}-{seq}@example.com"
        body = {"name": f"Load {client}-{seq}", "email": email, "age": 30}
        if op == "create_pw":
            body["password"] = f"password-{seq}"
        return "POST", "/api/v1/users", body

    async def _client(self, client):
        rng = random.Random(f"{self.tag}-{client}")
        conn = httpc.Conn("127.0.0.1", self.port, self.token)
        own = []
        seq = 0
        try:
            while not self.stop.is_set():
                seq += 1
                op = rng.choices(self.ops, self.weights)[0]
                if op in ("patch", "delete") and not own:
                    op = "create"
                method, path, body = self._request(op, rng, own, client, seq)
                phase = self.phase
                self.sent += 1
                out = await conn.request(method, path, body=body, timeout=self.timeout)
                label = out.label()
                self.counts[(phase, op, label)] += 1
                if self.record:
                    self.records.append(Record(time.monotonic(), phase, op, out))
                if out.status is not None:
                    self.latencies[(phase, op)].append(out.elapsed)
                if op in ("create", "create_pw"):
                    email = body["email"]
                    if out.status == 201:
                        uid = out.json()["id"]
                        self.acknowledged[uid] = email
                        own.append(uid)
                    elif out.status is None and out.error != httpc.REFUSED:
                        self.pending_creates[email] = phase
                    else:
                        self.refused_creates[email] = label
                if out.error == httpc.REFUSED and self.stop_on_refused:
                    return
                if out.error in (httpc.REFUSED, httpc.CONNECT_ERROR):
                    await asyncio.sleep(0.05)
                elif self.pause:
                    await asyncio.sleep(self.pause)
        finally:
            await conn.close()

    async def run(self):
        await asyncio.gather(*(self._client(i) for i in range(self.clients)))


def percentile(values, p):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]
