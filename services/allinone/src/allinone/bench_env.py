"""What `make bench` runs against: a throw-away database, the all-in-one server as a child process,
distributed `sigmasight serve` processes on RabbitMQ, and the clean-up of all of it.

Every child process is started by this module, stopped by its pid, and (on Linux) told to die with
the bench process (PR_SET_PDEATHSIG), so an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp

from common.testing import drop_database, reachable, recreate_database, test_amqp_url, test_database_url

log = logging.getLogger(__name__)

FIXTURE_AS_OF = date(2026, 11, 24)
DEMO_PASSWORD = "demo12345"
ADMIN_EMAIL = "demo_admin@sigmasight.com"
HEDGEFUND_EMAIL = "demo_hedgefundstyle@sigmasight.com"
INDIVIDUAL_EMAIL = "demo_individual@sigmasight.com"
# High enough that 32 connections for minutes never meet the per-user limit (100/min by default).
RATE_LIMIT_PER_MINUTE = 1_000_000_000
READY_TIMEOUT = 300.0
TERMINAL = frozenset({"completed", "partial", "failed", "cancelled"})

# Variables that configure SigmaSight; a developer's values never leak into the benchmark children.
_CONFIG_PREFIXES = ("SIGMASIGHT_", "GATEWAY_", "INGEST_", "MARKETDATA_", "GREEKS_", "FACTORS_", "STRESS_")
_CONFIG_NAMES = frozenset(
    {
        "DATABASE_URL",
        "AMQP_URL",
        "JWT_SECRET",
        "JWT_ACCESS_TTL_SECONDS",
        "DEMO_ADMIN_PASSWORD",
        "LOG_LEVEL",
        "POLYGON_API_KEY",
        "FMP_API_KEY",
        "FRED_API_KEY",
    }
)

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _kill_leftovers() -> None:
    """Last resort at interpreter exit: SIGKILL children this module started that still run."""
    for proc in list(_CHILDREN.values()):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()


atexit.register(_kill_leftovers)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the bench process dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(cmd: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start a child with its output in `log_path`."""
    with log_path.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - argv built here from sys.executable and fixed args
            cmd,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM (graceful shutdown), SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
    _CHILDREN.pop(proc.pid, None)


def tail(path: Path, lines: int = 30) -> str:
    """The end of a log file."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    """A TCP port free on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_admin_url() -> str:
    """The local PostgreSQL server (BENCH_DATABASE_URL, else TEST_DATABASE_URL, else 127.0.0.1:5432)."""
    return os.environ.get("BENCH_DATABASE_URL") or test_database_url()


def amqp_url() -> str:
    """The local RabbitMQ broker (BENCH_AMQP_URL, else TEST_AMQP_URL, else 127.0.0.1:5672)."""
    return os.environ.get("BENCH_AMQP_URL") or test_amqp_url()


def postgres_reachable() -> bool:
    return reachable(pg_admin_url(), 5432)


def rabbitmq_reachable() -> bool:
    return reachable(amqp_url(), 5672)


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=5, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else None


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, OS, Python and tool versions."""
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wrk = shutil.which("wrk")
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": cpu_model,
        "memory_gib": mem_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "wrk": _first_line([wrk, "-v"]) if wrk else None,
    }


async def server_version(url: str) -> str | None:
    """`SHOW server_version` of a PostgreSQL URL."""
    import asyncpg

    from common.db import asyncpg_dsn

    try:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    except Exception:
        return None
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


@dataclass
class Secrets:
    """Per-run secrets shared by every child (never the developer's)."""

    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    admin_password: str = field(default_factory=lambda: "bench-" + secrets.token_urlsafe(18))


def child_env(secrets_: Secrets, data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """Environment for SigmaSight children: the caller's minus SigmaSight config, plus ours."""
    env = {k: v for k, v in os.environ.items() if not (k in _CONFIG_NAMES or k.startswith(_CONFIG_PREFIXES))}
    env.update(
        {
            "SIGMASIGHT_DATA_DIR": str(data_dir),
            "JWT_SECRET": secrets_.jwt_secret,
            "DEMO_ADMIN_PASSWORD": secrets_.admin_password,
            "MARKETDATA_PROVIDER": "fixture",
            "MARKETDATA_FIXTURE_END_DATE": FIXTURE_AS_OF.isoformat(),
            "MARKETDATA_SCHEDULER_ENABLED": "false",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class BenchDatabase:
    """A dedicated database on the local server, created fresh and dropped at the end."""

    def __init__(self) -> None:
        self.admin_url = pg_admin_url()
        self.name = f"sigmasight_bench_{uuid.uuid4().hex[:10]}"
        self.url: str | None = None

    async def create(self) -> str:
        self.url = await recreate_database(self.admin_url, self.name)
        return self.url

    async def drop(self) -> None:
        if self.url is not None:
            await drop_database(self.admin_url, self.name)
            self.url = None


async def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    """Poll `url` until it answers 200, failing early when the process exits."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode}:\n{tail(log_path)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not ready within {timeout:.0f} s:\n{tail(log_path)}")
            await asyncio.sleep(0.2)


class AllInOneServer:
    """`sigmasight run` on a free port, in its own process, with a throw-away data dir."""

    def __init__(self, secrets_: Secrets, workdir: Path, database_url: str | None, history_days: int) -> None:
        self.secrets = secrets_
        self.workdir = workdir
        self.database_url = database_url
        self.history_days = history_days
        self.port = free_port()
        self.data_dir = workdir / "allinone-data"
        self.log_path = workdir / "allinone.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        extra = {"SIGMASIGHT_MODE": "allinone"}
        if self.database_url:
            extra["DATABASE_URL"] = self.database_url
        env = child_env(self.secrets, self.data_dir, extra)
        cmd = [sys.executable, "-m", "allinone.cli", "run", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--history-days", str(self.history_days)]
        started = time.perf_counter()
        # cwd = the throw-away dir, so no developer `.env` is read.
        self.proc = spawn(cmd, env=env, cwd=self.workdir, log_path=self.log_path)
        await wait_http_ok(f"{self.url}/healthz", self.proc, self.log_path, READY_TIMEOUT)
        self.startup_seconds = time.perf_counter() - started

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(stop_process, self.proc)
            self.proc = None
        self._stop_embedded_postgres()

    def _stop_embedded_postgres(self) -> None:
        """The embedded server (when used) stops with its last client; make sure it did."""
        pidfile = self.data_dir / "pgdata" / "postmaster.pid"
        if not pidfile.exists():
            return
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pidfile.read_text().splitlines()[0])
            if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return  # a stale pid file; that pid now belongs to something else
            os.kill(pid, signal.SIGINT)  # fast shutdown of the postmaster this run started
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)


class Cluster:
    """Distributed mode: `sigmasight serve <svc>` processes on local PostgreSQL and RabbitMQ."""

    def __init__(self, secrets_: Secrets, workdir: Path, database_url: str, services: tuple[str, ...]) -> None:
        self.secrets = secrets_
        self.workdir = workdir
        self.database_url = database_url
        self.amqp_url = amqp_url()
        self.services = services
        self.namespace = f"bench{uuid.uuid4().hex[:8]}"
        self.ports = {svc: free_port() for svc in services}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.data_dir = workdir / "distributed-data"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log_path(self, service: str) -> Path:
        return self.workdir / f"{service}.log"

    def pid(self, service: str) -> int | None:
        proc = self.procs.get(service)
        return proc.pid if proc else None

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        extra = {
            "SIGMASIGHT_MODE": "distributed",
            "DATABASE_URL": self.database_url,
            "AMQP_URL": self.amqp_url,
            "SIGMASIGHT_BUS_NAMESPACE": self.namespace,
        }
        extra.update({f"GATEWAY_{svc.upper()}_URL": self.url(svc) for svc in self.services})
        env = child_env(self.secrets, self.data_dir, extra)
        for svc in self.services:
            cmd = [sys.executable, "-m", "allinone.cli", "serve", svc, "--host", "127.0.0.1"]
            cmd += ["--port", str(self.ports[svc])]
            self.procs[svc] = spawn(cmd, env=env, cwd=self.workdir, log_path=self.log_path(svc))
        for svc in self.services:
            await wait_http_ok(f"{self.url(svc)}/readyz", self.procs[svc], self.log_path(svc), READY_TIMEOUT)

    async def stop(self) -> None:
        """Stop every process (gateway first), then delete this namespace's queues and exchanges."""
        for svc in self.services:
            proc = self.procs.pop(svc, None)
            if proc is not None:
                await asyncio.to_thread(stop_process, proc)
        await self.delete_queues()

    async def _queue_names(self) -> list[str]:
        """Every queue the started services declare (built without connecting)."""
        from allinone.compose import build_service
        from common.bus import AmqpBus
        from common.db import Database

        names: list[str] = []
        for svc in self.services:
            if svc == "gateway":
                continue  # the gateway declares the exchange only
            bus = AmqpBus(self.amqp_url, namespace=self.namespace)
            db = Database(self.database_url)
            try:
                build_service(svc, db, bus, mode="distributed", jwt_secret=self.secrets.jwt_secret)
            finally:
                await db.close()
            names += [bus.queue_name(sub) for sub in bus.subscriptions]
            names += [f"{bus.namespace}rpc.{name}" for name in bus.responders]
        return names

    async def delete_queues(self) -> None:
        import aio_pika

        names = await self._queue_names()
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel()
            for name in names:
                for queue in (name, f"{name}.dlq"):
                    try:
                        await channel.queue_delete(queue)
                    except Exception:  # a queue that was never declared closes the channel
                        channel = await connection.channel()
            for exchange in (f"{self.namespace}.sigmasight.events", f"{self.namespace}.sigmasight.dlx"):
                try:
                    await channel.exchange_delete(exchange)
                except Exception:
                    channel = await connection.channel()
        finally:
            await connection.close()


class Api:
    """A small client for the running system's public API."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    async def close(self) -> None:
        await self.http.close()

    async def token(self, email: str, password: str) -> str:
        async with self.http.post(
            f"{self.base_url}/api/v1/auth/login", json={"email": email, "password": password}
        ) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"login as {email} failed: {resp.status} {body}")
        return str(body["data"]["access_token"])

    async def get(self, path: str, token: str, **params: str) -> tuple[int, dict[str, Any]]:
        async with self.http.get(
            f"{self.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, params=params or None
        ) as resp:
            return resp.status, await resp.json()

    async def post_json(
        self, path: str, token: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        async with self.http.post(
            f"{self.base_url}{path}", json=body, headers={"Authorization": f"Bearer {token}", **(headers or {})}
        ) as resp:
            return resp.status, await resp.json()

    async def post_form(
        self, path: str, token: str, form: aiohttp.FormData, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        async with self.http.post(
            f"{self.base_url}{path}", data=form, headers={"Authorization": f"Bearer {token}", **(headers or {})}
        ) as resp:
            return resp.status, await resp.json()


def make_workdir() -> Path:
    """A throw-away directory for data dirs and logs."""
    return Path(tempfile.mkdtemp(prefix="sigmasight-bench-"))
