"""Serve one service in distributed mode: `python -m common.serve <service>`.

This is what each service's container image runs: an image holds only its own package and
`common`, so the entry point cannot live in the all-in-one package. `sigmasight serve <service>`
calls the same `serve_service`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
from collections.abc import Sequence
from typing import Any

import uvicorn
import uvloop

from common.bus import AmqpBus
from common.db import Database
from common.http_protocol import CoalescingHttpToolsProtocol
from common.logging import configure
from common.service import Service
from common.settings import DEFAULT_PORTS, SERVICES


def service_settings(name: str, **overrides: Any) -> Any:
    """Each service's Settings class read from the environment, with overrides (e.g. database_url)."""
    module = importlib.import_module(f"{name}.settings")
    return module.Settings(**overrides)


def freeze_heap() -> None:
    """Move everything allocated at start-up out of the garbage collector's reach. Full collections
    over ~270k long-lived objects stalled the event loop for 150-300 ms (measured in make bench);
    frozen objects are never scanned again."""
    gc.collect()
    gc.freeze()


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    """The uvicorn settings every SigmaSight process serves with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,  # httptools, one socket write per response
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_keep_alive=30,
        backlog=2048,
    )


def build_distributed(service: str, settings: Any, db: Database, bus: AmqpBus) -> Service:
    """The service's `create_service` on RabbitMQ; the gateway proxies to the others over HTTP."""
    module = importlib.import_module(f"{service}.main")
    created: Service = module.create_service(settings, db, bus)
    return created


async def serve_service(service: str, *, host: str, port: int) -> None:
    """One service, distributed mode, until SIGTERM/SIGINT (uvicorn stops gracefully on both)."""
    settings = service_settings(service, mode="distributed")
    configure(service, settings.log_level)
    settings.require_distributed()
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        application_name=f"sigmasight-{service}",
        parallel_workers_per_gather=settings.db_parallel_workers,
    )
    bus = AmqpBus(settings.amqp_url, namespace=settings.bus_namespace, prefetch=settings.bus_prefetch)
    svc = build_distributed(service, settings, db, bus)
    await bus.connect()
    await svc.start()
    await bus.start()
    server = uvicorn.Server(uvicorn_config(svc.app, host, port))
    freeze_heap()
    try:
        await server.serve()
    finally:
        await svc.stop()
        await bus.close()
        await db.close()


def default_port(service: str) -> int:
    """`<SERVICE>_PORT` or the service's default port."""
    return int(os.environ.get(f"{service.upper()}_PORT", DEFAULT_PORTS[service]))


def main(argv: Sequence[str] | None = None) -> None:
    """Command line of a service image: `python -m common.serve <service> [--host H] [--port P]`."""
    parser = argparse.ArgumentParser(prog="python -m common.serve", description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default <SERVICE>_PORT or the service default)")
    args = parser.parse_args(argv)
    uvloop.run(serve_service(args.service, host=args.host, port=args.port or default_port(args.service)))


if __name__ == "__main__":
    main()
