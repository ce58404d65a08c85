"""The operations HTTP server (``server.enabled``): ``/healthz`` and ``/metrics`` on ``server.host:server.port``.

- ``GET /healthz``: 200 ``{"status": "ok", ...}`` when the gateway is connected (every shard this process runs) and
  the model is loaded; otherwise 503 with ``{"status": "unavailable", "problems": [...]}`` naming each reason. The
  body's ``shards`` gives each shard's connection and latency. The Docker health check calls it.
- ``GET /metrics``: Prometheus text format from the bot's own registry (see ``bot.metrics``).

The bot starts it first thing in ``setup_hook``, so ``/healthz`` answers 503 ("model not loaded") while the model
loads, and stops it last in ``close``. Port 0 picks a free port: the bound port is logged
("metrics on http://HOST:PORT/metrics") and written to ``storage.dir/server.port``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from bot.metrics import Metrics, Watched, gateway_problem, shard_states

log = logging.getLogger(__name__)

PORT_FILE = "server.port"


def health_problems(bot: Watched) -> list[str]:
    """Everything that keeps the bot from serving requests; empty when healthy."""
    problems = []
    gateway = gateway_problem(bot)
    if gateway is not None:
        problems.append(gateway)
    if bot.generation is None:
        problems.append("model not loaded")
    if bot.storage is None:
        problems.append("storage not open")
    return problems


def _write_port_file(path: Path, port: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{port}\n", encoding="utf-8")


class OpsServer:
    def __init__(self, bot: Watched, metrics: Metrics, host: str, port: int) -> None:
        self.bot = bot
        self.metrics = metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    async def healthz(self, request: web.Request) -> web.Response:
        problems = health_problems(self.bot)
        queue = None if self.bot.generation is None else self.bot.generation.queue
        body = {
            "status": "unavailable" if problems else "ok",
            "problems": problems,
            "queue": None if queue is None else {"depth": queue.depth, "running": queue.running,
                                                 "paused": queue.paused},
            "shards": shard_states(self.bot),
        }
        return web.json_response(body, status=503 if problems else 200)

    async def metrics_page(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render(self.bot))
        response.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
        return response

    async def start(self, port_file_dir: Path | None = None) -> int:
        """Listen; returns the bound port (the real one when ``port`` is 0)."""
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # the asyncio server: the only place the port chosen for port 0 is found
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host  # a name to show only
        log.info("metrics on http://%s:%d/metrics (health on /healthz)", shown, self.port)
        if port_file_dir is not None:
            await asyncio.to_thread(_write_port_file, port_file_dir / PORT_FILE, self.port)
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
