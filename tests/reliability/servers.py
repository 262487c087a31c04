"""Processes the reliability checks start: the reference service, and
private PostgreSQL, Redis and NATS servers (the machine's binaries, each on
its own free port and data folder) that the fault-injection check stops and
restarts without disturbing the shared servers other tests use.

Every process is started here and stopped by its PID (or its own stop
command for PostgreSQL); `stop_all` runs at exit whatever happened.
"""
import asyncio
import atexit
import glob
import os
import shutil
import signal
import subprocess
import time

import httpc

_started = []


def _remember(work, pid):
    """Notes a started PID in <work>/pids, for .ci/reliability.sh to stop
    should this process itself be killed."""
    with open(os.path.join(work, "pids"), "a") as f:
        f.write(f"{pid}\n")


def stop_all():
    for proc in reversed(_started):
        try:
            proc.stop()
        except Exception as e:  # cleanup must go on with the others
            print(f"warning: stopping {proc!r}: {e}", flush=True)
    _started.clear()


atexit.register(stop_all)


def port_open(port, host="127.0.0.1"):
    import socket
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(port, up, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(port) == up:
            return True
        time.sleep(0.1)
    return False


def proc_status(pid, field):
    """A field of /proc/<pid>/status in KiB (VmRSS, VmHWM), or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def socket_count(pid):
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return None
    return n


def fd_limit(pid):
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        return None
    return None


class Service:
    """The reference service binary on 127.0.0.1:<free port>."""

    def __init__(self, binary, work, name, env):
        self.binary, self.work, self.name = binary, work, name
        self.env = dict(env)
        self.port = httpc.free_port()
        self.proc = None
        self.log_path = os.path.join(work, f"{name}.log")
        self.exit_code = None

    def __repr__(self):
        return f"service {self.name} on :{self.port}"

    def start(self, startup_seconds=90):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "RUST_LOG"))}
        env.update({"HOST": "127.0.0.1", "PORT": str(self.port), "LOG_FORMAT": "json"})
        env.update(self.env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        _remember(self.work, self.proc.pid)
        self.exit_code = None
        if self not in _started:
            _started.append(self)
        deadline = time.monotonic() + startup_seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self!r} exited with {self.proc.returncode} at startup:\n"
                                   + self.tail())
            if httpc.status_sync("127.0.0.1", self.port, "/health/startup") == 200:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"{self!r} not started within {startup_seconds} s:\n" + self.tail())

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def wait(self, seconds):
        try:
            self.exit_code = self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None
        return self.exit_code

    def stop(self):
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(40) is None:
                self.proc.kill()
                self.proc.wait()

    def rss_kib(self):
        return proc_status(self.pid, "VmRSS")

    def fds(self):
        return fd_count(self.pid)

    def sockets(self):
        return socket_count(self.pid)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, n=15):
        return "\n".join(self.log_text().splitlines()[-n:])


class _Child:
    """A server run as our child process, stopped with SIGTERM."""

    def __init__(self, name, port, argv, log_path):
        self.name, self.port, self.argv, self.log_path = name, port, argv, log_path
        self.proc = None

    def __repr__(self):
        return f"private {self.name} on :{self.port}"

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        _remember(os.path.dirname(self.log_path), self.proc.pid)
        if self not in _started:
            _started.append(self)
        if not wait_port(self.port, True, 30):
            raise RuntimeError(f"{self!r} did not start (see {self.log_path})")

    def down(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        wait_port(self.port, False, 10)

    def up(self):
        self.start()

    stop = down


class PrivateRedis(_Child):
    """redis-server as the machine runs it (no persistence), on its own port."""

    def __init__(self, work, name):
        port = httpc.free_port()
        super().__init__("redis", port, [
            shutil.which("redis-server") or "/usr/bin/redis-server", "--bind", "127.0.0.1",
            "--port", str(port), "--save", "", "--appendonly", "no", "--dir", work,
            "--daemonize", "no"], os.path.join(work, f"{name}-redis.log"))

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"


class PrivateNats(_Child):
    """nats-server with JetStream, as the machine runs it, on its own port
    and store folder."""

    def __init__(self, work, name):
        port = httpc.free_port()
        store = os.path.join(work, f"{name}-nats-store")
        os.makedirs(store, exist_ok=True)
        super().__init__("nats", port, [
            shutil.which("nats-server") or "/usr/sbin/nats-server", "-a", "127.0.0.1",
            "-p", str(port), "-js", "-sd", store], os.path.join(work, f"{name}-nats.log"))

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"


def _pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql")
    return found[-1]


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in the work folder, its own
    port), run as the postgres user when we are root; stopped with
    `pg_ctl -m immediate` (a crash: committed work must survive by its WAL)."""

    def __init__(self, work, name):
        self.dir = os.path.join(work, f"{name}-pg")
        self.port = httpc.free_port()
        self.name = "postgresql"
        os.makedirs(self.dir, exist_ok=True)
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(work, 0o755)
        self._run([_pg_bin("initdb"), "-D", os.path.join(self.dir, "data"), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8"], 120)

    def __repr__(self):
        return f"private postgresql on :{self.port}"

    def _run(self, argv, seconds):
        if self.root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {out.stdout}{out.stderr}")

    def _ctl(self, *args, seconds=60):
        self._run([_pg_bin("pg_ctl"), "-D", os.path.join(self.dir, "data"), *args], seconds)

    def up(self):
        self._ctl("-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                  "-l", os.path.join(self.dir, "log"), "-w", "-t", "60", "start", seconds=90)
        if self not in _started:
            _started.append(self)

    start = up

    def down(self):
        self._ctl("-m", "immediate", "-w", "-t", "30", "stop", seconds=60)
        wait_port(self.port, False, 10)

    def stop(self):
        if port_open(self.port):
            self.down()

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


def private_stack(work, name):
    """A private PostgreSQL, Redis and NATS, started: (pg, redis, nats)."""
    pg = PrivatePostgres(work, name)
    pg.up()
    redis = PrivateRedis(work, name)
    redis.start()
    nats = PrivateNats(work, name)
    nats.start()
    return pg, redis, nats


def shared_env(pg, redis, nats, namespace):
    """The service's variables for shared mode on those servers."""
    return {"DATABASE_URL": pg.url, "REDIS_URL": redis.url, "NATS_URL": nats.url,
            "SHARED_NAMESPACE": namespace}


async def sample(service, seconds, every):
    """RSS (KiB) and fd samples of `service` every `every` s for `seconds`."""
    out = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        out.append((time.monotonic() - started, service.rss_kib(), service.fds()))
        await asyncio.sleep(every)
    return out
