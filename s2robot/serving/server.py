"""The action server: a loaded checkpoint behind a WebSocket (asyncio), MessagePack framing.

One model, many connections: each connection gets its own copy of the runner's per-episode state
(observation history, action queue) over the shared modules, and all inference runs on one worker
thread, so the model never runs concurrently and the event loop keeps answering (health checks,
other clients' handshakes, error replies) while it works.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import ipaddress
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from typing import Any

import numpy as np
from s2robot_client.protocol import (BAD_MESSAGE, INTERNAL, MESSAGE_TOO_LARGE, PROTOCOL_VERSION, UNKNOWN_TYPE,
                                     UNSUPPORTED, ProtocolError, decode_message, error_message, packb)
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from s2robot.errors import UserError
from s2robot.serving.observation import observation_spec, validate_observation

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
DEFAULT_MAX_MESSAGE_BYTES = 8 * 2**20  # a 224 px frame is 150 kB; 672 px is 1.4 MB


class ServingError(UserError, RuntimeError):
    """A server configuration the user must change (unsafe bind, bad limits)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to a public interface


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ServingError(f"refusing to serve on {host}, which is reachable from other machines, without a token: "
                           f"set token=<secret> (or S2ROBOT_SERVE_TOKEN) and give the robot the same token, "
                           f"or bind host=127.0.0.1")


class PolicyServer:
    """``PolicyServer(runner, port=0)``; ``await server.start()`` (or ``start_in_thread()``) binds and
    sets ``server.port``. ``runner`` is a `PolicyController` (anything with ``act``, ``reset``,
    ``metadata``, ``last_timing``, ``n_action_steps``)."""

    def __init__(self, runner: Any, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        check_bind(host, token)
        if max_message_bytes < 1024:
            raise ServingError(f"max_message_bytes={max_message_bytes} is too small for any observation")
        self.runner = runner
        self.host, self.port, self.token = host, port, token or None
        self.max_message_bytes = int(max_message_bytes)
        # Frames up to this size are read and answered with message_too_large; larger ones make
        # websockets close that connection (1009) without buffering them. The server stays up either way.
        self.transport_max_bytes = 2 * self.max_message_bytes + 2**20
        md = dict(runner.metadata)
        n_obs_steps = int(getattr(runner, "n_obs_steps", 1))
        self.chunk_requests = n_obs_steps == 1 and not md.get("temporal_ensemble", False)
        self.metadata = {"type": "metadata", "protocol": PROTOCOL_VERSION, **md, "n_obs_steps": n_obs_steps,
                         "chunk_requests": self.chunk_requests, "max_message_bytes": self.max_message_bytes}
        self.spec = observation_spec(md)
        self.stats = {"connections": 0, "open_connections": 0, "requests": 0, "errors": 0}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2robot-infer")
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self.port, process_request=self._process_request,
                                   compression=None, max_size=self.transport_max_bytes)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("serving %s on ws://%s:%d (health: http://%s:%d%s)%s", self.metadata.get("checkpoint"),
                 self.host, self.port, self.host, self.port, HEALTH_PATH, " with token" if self.token else "")

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        try:
            await self._server.serve_forever()
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def start_in_thread(self) -> int:
        """Serve from a daemon thread (tests, benchmarks); -> the bound port. ``stop()`` ends it."""
        ready = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.start())
            except BaseException as e:  # noqa: BLE001 -- handed to the caller
                failed.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_until_complete(self._server.serve_forever())

        self._thread = threading.Thread(target=run, name="s2robot-server", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]
        return self.port

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
            self._thread.join(timeout=10)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- HTTP: health and authentication --------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request):
        if request.path.split("?")[0] == HEALTH_PATH:
            body = json.dumps({"status": "ok", "protocol": PROTOCOL_VERSION, **self.stats})
            response = connection.respond(HTTPStatus.OK, body + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        if self.token:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                log.warning("refused %s: missing or wrong token", connection.remote_address)
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        return None

    # -- WebSocket ------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        # Own episode state over the shared modules: reset() gives the copy fresh history/queues.
        runner = copy.copy(self.runner)
        runner.reset(1)
        self.stats["connections"] += 1
        self.stats["open_connections"] += 1
        peer = ws.remote_address
        log.info("client %s connected", peer)
        try:
            await ws.send(packb(self.metadata))
            async for data in ws:
                reply = await self._reply(runner, data)
                await ws.send(packb(reply))
        except ConnectionClosed as e:
            log.info("client %s went away (%s)", peer, e)
        finally:
            self.stats["open_connections"] -= 1
            log.info("client %s disconnected", peer)

    async def _reply(self, runner: Any, data: bytes | str) -> dict:
        t0 = time.perf_counter()
        self.stats["requests"] += 1
        rid = None
        try:
            if len(data) > self.max_message_bytes:
                raise ProtocolError(MESSAGE_TOO_LARGE, f"message of {len(data)} bytes is over the server's limit of "
                                                       f"{self.max_message_bytes} (max_message_bytes)")
            msg = decode_message(data)
            rid = msg.get("id")
            kind = msg["type"]
            if kind == "infer":
                return await self._infer(runner, msg, rid, t0)
            if kind == "reset":
                runner.reset(1)  # this connection's requests are sequential: no inference of it is in flight
                return {"type": "reset", "id": rid}
            if kind == "metadata":
                return {**self.metadata, "id": rid}
            raise ProtocolError(UNKNOWN_TYPE, f"unknown message type {kind!r}; send infer, reset or metadata")
        except ProtocolError as e:
            self.stats["errors"] += 1
            log.warning("bad request: %s: %s", e.code, e)
            return error_message(e.code, str(e), rid)
        except Exception as e:  # noqa: BLE001 -- the model failing on one request must not end the connection
            self.stats["errors"] += 1
            log.exception("inference failed")
            return error_message(INTERNAL, f"inference failed: {type(e).__name__}: {e}", rid)

    async def _infer(self, runner: Any, msg: dict, rid: Any, t0: float) -> dict:
        flags = {}
        for name in ("chunk", "reset"):
            value = msg.get(name, False)
            if not isinstance(value, bool):
                raise ProtocolError(BAD_MESSAGE, f'"{name}" must be true or false, got {value!r}')
            flags[name] = value
        if flags["chunk"] and not self.chunk_requests:
            raise ProtocolError(UNSUPPORTED, "this policy cannot serve chunks (it keeps an observation history or "
                                             "ensembles chunks); send one infer per control step")
        obs = validate_observation(msg.get("obs"), self.spec)
        t_queued = time.perf_counter()
        result = await asyncio.get_running_loop().run_in_executor(
            self._executor, _infer_sync, runner, obs, flags["chunk"], flags["reset"], t_queued)
        result["timing"]["server_ms"] = (time.perf_counter() - t0) * 1e3
        return {"type": "action", "id": rid, **result}


def _infer_sync(runner: Any, obs: dict[str, np.ndarray], chunk: bool, reset: bool, t_queued: float) -> dict:
    queue_ms = (time.perf_counter() - t_queued) * 1e3
    if reset or chunk:
        # A chunk request is stateless (memoryless head): predict afresh from this observation.
        runner.reset(1)
    batch = {k: v[None] for k, v in obs.items()}
    action = runner.act(batch)[0]
    out: dict[str, Any] = {"action": action, "timing": {**runner.last_timing, "queue_ms": queue_ms}}
    if chunk:
        # The rest of the executed part of the chunk: act() pops the queued actions without running the model.
        out["actions"] = np.stack([action] + [runner.act(batch)[0] for _ in range(runner.n_action_steps - 1)])
    return out
