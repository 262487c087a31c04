"""A small HTTP/1.1 client over asyncio streams, for the reliability checks.

It keeps connections alive, tells apart the ways a request can end (refused
at connect, closed by the server before any response byte, broken mid
response, timed out, answered), and does the raw-socket tricks the checks
need (trickled heads and bodies, a minimal WebSocket reader). Standard
library only.
"""
import asyncio
import base64
import json
import os
import socket
import time

# How a request ended when it got no complete response.
REFUSED = "refused"          # connect() refused: the listener is closed
UNANSWERED = "unanswered"    # sent, then closed or reset before any response byte
BROKEN = "broken"            # closed or reset after part of the response
TIMEOUT = "timeout"          # no complete response within the bound
CONNECT_ERROR = "connect-error"  # any other connect failure (e.g. timeout)


class Outcome:
    """The end of one request: `status` (int) when answered, else `error`
    (one of the constants above). `reused` tells whether the connection had
    already carried a request."""

    __slots__ = ("status", "error", "headers", "body", "reused", "elapsed", "detail")

    def __init__(self, status=None, error=None, headers=None, body=b"", reused=False, elapsed=0.0,
                 detail=""):
        self.status = status
        self.error = error
        self.headers = headers or {}
        self.body = body
        self.reused = reused
        self.elapsed = elapsed
        self.detail = detail  # what the error was (the exception), for the report

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def label(self):
        return str(self.status) if self.status is not None else self.error

    def __repr__(self):
        return f"Outcome({self.label()}, {self.elapsed:.3f}s)"


class _Incomplete(Exception):
    def __init__(self, got_bytes):
        self.got_bytes = got_bytes


async def read_response(reader, head_only=False):
    """Reads one response: (status, headers, body). Raises _Incomplete with
    whether any byte arrived when the stream ends early."""
    got = 0
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        raise _Incomplete(len(e.partial) > 0) from None
    except asyncio.LimitOverrunError:
        raise _Incomplete(True) from None
    except (ConnectionResetError, BrokenPipeError):
        raise _Incomplete(False) from None
    got = len(head)
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise _Incomplete(True) from None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if head_only:
        return status, headers, b""
    body = b""
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif status not in (204, 304) and headers.get("connection", "").lower() == "close":
            body = await reader.read()
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError, ValueError):
        raise _Incomplete(got > 0) from None
    return status, headers, body


def parse_json(raw):
    try:
        return json.loads(raw)
    except ValueError:
        return None


def build_request(method, path, headers=None, body=None, host="reliability"):
    out = [f"{method} {path} HTTP/1.1", f"host: {host}"]
    data = b""
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if not any(k.lower() == "content-type" for k in (headers or {})):
            out.append("content-type: application/json")
        out.append(f"content-length: {len(data)}")
    for k, v in (headers or {}).items():
        out.append(f"{k}: {v}")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data


class Conn:
    """One keep-alive connection, reopened on demand."""

    def __init__(self, host, port, token=None, connect_timeout=5.0):
        self.host, self.port, self.token = host, port, token
        self.connect_timeout = connect_timeout
        self.reader = self.writer = None
        self.used = 0

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await asyncio.wait_for(self.writer.wait_closed(), 1)
            except (OSError, asyncio.TimeoutError):
                pass
        self.reader = self.writer = None
        self.used = 0

    async def request(self, method, path, body=None, headers=None, timeout=10.0, auth=True):
        started = time.monotonic()
        hdrs = {}
        if auth and self.token:
            hdrs["authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        if self.writer is None:
            try:
                self.reader, self.writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, limit=1 << 20), self.connect_timeout)
            except ConnectionRefusedError:
                return Outcome(error=REFUSED, elapsed=time.monotonic() - started)
            except (OSError, asyncio.TimeoutError) as e:
                return Outcome(error=CONNECT_ERROR, elapsed=time.monotonic() - started,
                               detail=type(e).__name__)
        reused = self.used > 0
        self.used += 1
        try:
            self.writer.write(build_request(method, path, hdrs, body))
            await self.writer.drain()
        except (ConnectionResetError, BrokenPipeError, OSError):
            await self.close()
            return Outcome(error=UNANSWERED, reused=reused, elapsed=time.monotonic() - started)
        try:
            status, rh, rb = await asyncio.wait_for(read_response(self.reader), timeout)
        except _Incomplete as e:
            await self.close()
            return Outcome(error=BROKEN if e.got_bytes else UNANSWERED, reused=reused,
                           elapsed=time.monotonic() - started)
        except asyncio.TimeoutError:
            await self.close()
            return Outcome(error=TIMEOUT, reused=reused, elapsed=time.monotonic() - started)
        if rh.get("connection", "").lower() == "close":
            await self.close()
        return Outcome(status=status, headers=rh, body=rb, reused=reused,
                       elapsed=time.monotonic() - started)


async def one(host, port, method, path, token=None, body=None, headers=None, timeout=10.0):
    """One request on a fresh connection."""
    c = Conn(host, port, token)
    try:
        return await c.request(method, path, body=body, headers=headers, timeout=timeout)
    finally:
        await c.close()


def status_sync(host, port, path, timeout=5.0):
    """GET `path` from synchronous code (also inside a running event loop):
    the status, or None when there is no answer."""
    import http.client
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        res = conn.getresponse()
        res.read()
        return res.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def login_form(email, password):
    from urllib.parse import urlencode
    return urlencode({"username": email, "password": password}).encode()


async def login(host, port, email, password):
    out = await one(host, port, "POST", "/api/v1/auth/token", body=login_form(email, password),
                    headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30)
    if out.status != 200:
        raise RuntimeError(f"login as {email}: {out.label()} {out.body[:200]!r}")
    return out.json()["access_token"]


async def read_until_closed(reader, limit):
    """Reads until EOF/reset or `limit` seconds: (bytes, closed, seconds)."""
    started = time.monotonic()
    buf = b""
    while True:
        left = limit - (time.monotonic() - started)
        if left <= 0:
            return buf, False, time.monotonic() - started
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except asyncio.TimeoutError:
            return buf, False, time.monotonic() - started
        except (ConnectionResetError, BrokenPipeError, OSError):
            return buf, True, time.monotonic() - started
        if not chunk:
            return buf, True, time.monotonic() - started
        buf += chunk


class WebSocket:
    """A minimal WebSocket client: handshake, then text frames from the
    server (unmasked, as RFC 6455 requires of servers)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.closed = False
        self.close_info = None  # (monotonic time, close code or reason) once closed

    @classmethod
    async def connect(cls, host, port, path, timeout=10.0):
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(build_request("GET", path, {
            "upgrade": "websocket", "connection": "Upgrade",
            "sec-websocket-key": key, "sec-websocket-version": "13"}))
        await writer.drain()
        status, _, _ = await asyncio.wait_for(read_response(reader, head_only=True), timeout)
        if status != 101:
            writer.close()
            raise RuntimeError(f"WebSocket handshake answered {status}")
        return cls(reader, writer)

    async def _send(self, opcode, payload=b""):
        mask = os.urandom(4)
        frame = bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
        frame += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(frame)
        await self.writer.drain()

    async def recv_text(self, timeout):
        """The next text frame's text (pings answered on the way); None when
        the time runs out, or when the stream closes (then `closed` is set)."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                head = await asyncio.wait_for(self.reader.readexactly(2), left)
            except asyncio.TimeoutError:
                return None
            except (asyncio.IncompleteReadError, OSError) as e:
                self._closed(type(e).__name__)
                return None
            try:
                # The rest of a frame whose first bytes came: no time limit
                # (cancelling here would lose the stream's framing).
                n = head[1] & 0x7F
                if n == 126:
                    n = int.from_bytes(await self.reader.readexactly(2), "big")
                elif n == 127:
                    n = int.from_bytes(await self.reader.readexactly(8), "big")
                payload = await self.reader.readexactly(n)
                opcode = head[0] & 0x0F
                if opcode == 0x1:
                    return payload.decode()
                if opcode == 0x9:
                    await self._send(0xA, payload)
                elif opcode == 0x8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    self._closed(f"close frame {code} {payload[2:].decode(errors='replace')}".strip())
            except (asyncio.IncompleteReadError, OSError) as e:
                self._closed(type(e).__name__)
        return None

    def _closed(self, why):
        self.closed = True
        self.close_info = (time.monotonic(), why)

    def close(self):
        self.writer.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Sockets(list):
    def __init__(self):
        super().__init__()
        self.idle_since = {}


def open_idle_sockets(port, n, window=400, path="/health/live", seconds=120.0):
    """Opens `n` connections that each make one request and then stay idle
    (kept alive), with plain non-blocking sockets and a selector (an event
    loop per connection is too slow in Python for 10,000 before the server's
    idle timeout): (open sockets, Counter of failures, seconds taken); each
    open socket's `idle_since` (time.monotonic() of its response) is in the
    `idle_since` dict attribute of the returned list.
    At most `window` connections are being opened at a time."""
    import collections
    import errno
    import selectors
    request = build_request("GET", path)
    sel = selectors.DefaultSelector()
    done, failures = _Sockets(), collections.Counter()
    bufs = {}
    started = time.monotonic()
    launched = 0
    in_progress = 0

    def fail(sock, why):
        nonlocal in_progress
        failures[why] += 1
        in_progress -= 1
        try:
            sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    while (launched < n or in_progress) and time.monotonic() - started < seconds:
        while launched < n and in_progress < window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            launched += 1
            in_progress += 1
            if err not in (0, errno.EINPROGRESS):
                fail(s, errno.errorcode.get(err, str(err)))
                continue
            bufs[s] = b""
            sel.register(s, selectors.EVENT_WRITE, "connect")
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            if key.data == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(s, errno.errorcode.get(err, str(err)))
                    continue
                try:
                    s.send(request)
                except OSError as e:
                    fail(s, type(e).__name__)
                    continue
                sel.modify(s, selectors.EVENT_READ, "response")
            else:
                try:
                    chunk = s.recv(65536)
                except OSError as e:
                    fail(s, type(e).__name__)
                    continue
                if not chunk:
                    fail(s, "closed")
                    continue
                buf = bufs[s] + chunk
                bufs[s] = buf
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = buf[:end].decode("latin-1").lower()
                length = 0
                for line in head.split("\r\n"):
                    if line.startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                if len(buf) < end + 4 + length:
                    continue
                sel.unregister(s)
                in_progress -= 1
                if head.startswith("http/1.1 200"):
                    done.append(s)
                    done.idle_since[s] = time.monotonic()
                else:
                    failures[head[9:12]] += 1
                    s.close()
    for key in list(sel.get_map().values()):
        failures["timeout"] += 1
        key.fileobj.close()
    sel.close()
    return done, failures, time.monotonic() - started


def wait_closed_sockets(socks, seconds):
    """Waits until the server closes each socket (at most `seconds`): the
    time.monotonic() at which each closed, None for those still open."""
    import selectors
    sel = selectors.DefaultSelector()
    started = time.monotonic()
    closed = {}
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    while len(closed) < len(socks) and time.monotonic() - started < seconds:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                closed[s] = time.monotonic()
                sel.unregister(s)
    sel.close()
    return [closed.get(s) for s in socks]
