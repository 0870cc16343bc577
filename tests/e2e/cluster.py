"""Distributed mode for tests: every service in its own `sigmasight serve` process on real
PostgreSQL and RabbitMQ, isolated on the shared broker by a bus namespace."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import httpx

from common.settings import SERVICES

READY_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def queue_names(namespace: str, amqp_url: str, database_url: str) -> list[str]:
    """Every queue the services declare (built without connecting), for clean-up."""
    from allinone.compose import build_service
    from common.bus import AmqpBus
    from common.db import Database

    names: list[str] = []
    for svc in SERVICES:
        if svc == "gateway":
            continue
        bus = AmqpBus(amqp_url, namespace=namespace)
        build_service(svc, Database(database_url), bus, mode="distributed", jwt_secret="queue-listing-only-" + "x" * 32)
        names += [bus.queue_name(sub) for sub in bus.subscriptions]
        names += [f"{bus.namespace}rpc.{name}" for name in bus.responders]
    return names


@dataclass
class Cluster:
    """Six processes, one per service, with their logs in `log_dir`."""

    database_url: str
    amqp_url: str
    namespace: str
    env: dict[str, str]
    log_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def log_path(self, service: str) -> Path:
        return self.log_dir / f"{service}.log"

    def start(self, service: str) -> None:
        """Start (or restart) one service process."""
        log = open(self.log_path(service), "ab")  # noqa: SIM115 - the child owns the handle
        self.procs[service] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "allinone.cli",
                "serve",
                service,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports[service]),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, service: str) -> None:
        """SIGKILL: no clean-up, no acks, no flush."""
        proc = self.procs[service]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    async def wait_ready(self, services: list[str] | None = None) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=2) as client:
            for svc in services or list(SERVICES):
                while True:
                    proc = self.procs[svc]
                    if proc.poll() is not None:
                        raise RuntimeError(f"{svc} exited with {proc.returncode}:\n{self.tail(svc)}")
                    try:
                        resp = await client.get(f"http://127.0.0.1:{self.ports[svc]}/readyz")
                        if resp.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{svc} not ready:\n{self.tail(svc)}")
                    await asyncio.sleep(0.2)

    def tail(self, service: str, lines: int = 40) -> str:
        path = self.log_path(service)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    async def delete_queues(self) -> None:
        names = queue_names(self.namespace, self.amqp_url, self.database_url)
        connection = await aio_pika.connect(self.amqp_url)
        try:
            channel = await connection.channel()
            for name in names:
                for queue in (name, f"{name}.dlq"):
                    await channel.queue_delete(queue)
            await channel.exchange_delete(f"{self.namespace}.sigmasight.events")
            await channel.exchange_delete(f"{self.namespace}.sigmasight.dlx")
        finally:
            await connection.close()


def make_cluster(database_url: str, amqp_url: str, namespace: str, log_dir: Path, extra_env: dict[str, str]) -> Cluster:
    """Configure ports and environment for a distributed cluster (not started yet)."""
    ports = {svc: free_port() for svc in SERVICES}
    env = dict(os.environ)
    env.update(extra_env)
    env.update(
        {
            "SIGMASIGHT_MODE": "distributed",
            "DATABASE_URL": database_url,
            "AMQP_URL": amqp_url,
            "SIGMASIGHT_BUS_NAMESPACE": namespace,
            "SIGMASIGHT_DATA_DIR": str(log_dir),
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for svc, port in ports.items():
        env[f"GATEWAY_{svc.upper()}_URL"] = f"http://127.0.0.1:{port}"
    return Cluster(database_url, amqp_url, namespace, env, log_dir, ports)
