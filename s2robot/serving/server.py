"""The action server: a loaded checkpoint behind a WebSocket (asyncio), MessagePack framing.

One model, many connections: each connection gets its own copy of the runner's per-episode state
(observation history, action queue) over the shared modules, and all inference runs on one worker
thread, so the model never runs concurrently and the event loop keeps answering (health checks,
other clients' handshakes, error replies) while it works. Requests of several connections that
arrive within ``batch_window_ms`` run as one forward pass of up to ``max_batch`` (batching.py);
before listening the model is run once per batch shape it will see (``warm_up``), so a compiled
fast path never stalls a robot's first request.

What a client can make the server hold is bounded: at most ``max_connections`` connections (more
get HTTP 503), each buffering at most ``max_queue`` frames of at most ``transport_max_bytes``, and
closed after ``idle_timeout_s`` without a request. Refused requests are logged through a
`ThrottledLog`, so a misbehaving client cannot fill the disk either.

Over 250 lines: the connection's whole life (handshake checks, limits, replies, warm-up) reads in one
place; what runs the model is batching.py.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import logging
import threading
import time
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from s2robot.serving.batching import Batcher, Request, check_batching, warm_up
from s2robot.serving.limits import ThrottledLog, check_limits
from s2robot.serving.listen import ServingError, check_bind, check_port
from s2robot.serving.observation import observation_spec, validate_observation
from s2robot_client.protocol import (
    BAD_MESSAGE,
    INTERNAL,
    MESSAGE_TOO_LARGE,
    PROTOCOL_VERSION,
    UNKNOWN_TYPE,
    UNSUPPORTED,
    ProtocolError,
    decode_message,
    error_message,
    packb,
)

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
DEFAULT_MAX_QUEUE = 4  # frames one connection may have waiting; a robot sends one at a time
DEFAULT_IDLE_TIMEOUT_S = 120.0  # longer than a scene reset between episodes; the robot reconnects anyway
DEFAULT_MAX_CONNECTIONS = 32  # robots per server are few; 1,000 idle connections were accepted before
DEFAULT_MAX_BATCH = 16
# Waiting for other robots' requests costs the first one this much at most; it ends early once every
# open connection has a request waiting, and a lone connection never waits.
DEFAULT_BATCH_WINDOW_MS = 1.0


class PolicyServer:
    """``PolicyServer(runner, port=0)``; ``await server.start()`` (or ``start_in_thread()``) binds and
    sets ``server.port``. ``runner`` is a `PolicyController` (anything with ``act``, ``reset``,
    ``metadata``, ``last_timing``, ``n_action_steps``)."""

    def __init__(
        self,
        runner: Any,
        host: str = "127.0.0.1",
        port: int = 8000,
        token: str | None = None,
        max_message_bytes: int | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
        idle_timeout_s: float | None = DEFAULT_IDLE_TIMEOUT_S,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        log_interval_s: float = 10.0,
        max_batch: int = DEFAULT_MAX_BATCH,
        batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS,
        warm: bool = True,
    ):
        check_bind(host, token)
        check_batching(max_batch, batch_window_ms)
        self.runner = runner
        self.host, self.port, self.token = host, check_port(port), token or None
        md = dict(runner.metadata)
        self.spec = observation_spec(md)
        self.max_message_bytes = check_limits(
            self.spec, max_message_bytes, max_queue, idle_timeout_s, max_connections, log_interval_s
        )
        # Frames up to this size are read and answered with message_too_large; larger ones make
        # websockets close that connection (1009) without buffering them. The server stays up either way.
        self.transport_max_bytes = 2 * self.max_message_bytes + 64 * 1024
        self.max_queue, self.idle_timeout_s, self.max_connections = max_queue, idle_timeout_s, max_connections
        n_obs_steps = int(getattr(runner, "n_obs_steps", 1))
        self.chunk_requests = n_obs_steps == 1 and not md.get("temporal_ensemble", False)
        self.metadata = {
            "type": "metadata",
            "protocol": PROTOCOL_VERSION,
            **md,
            "n_obs_steps": n_obs_steps,
            "chunk_requests": self.chunk_requests,
            "max_message_bytes": self.max_message_bytes,
            "idle_timeout_s": self.idle_timeout_s,
            "max_batch": max_batch,
        }
        self._describe_inference()
        self.stats = {
            "connections": 0,
            "open_connections": 0,
            "requests": 0,
            "errors": 0,
            "refused_busy": 0,
            "closed_idle": 0,
            "max_connections": max_connections,
        }
        self.trouble = ThrottledLog(log, interval_s=log_interval_s)
        # Connections let through the handshake and not yet finished: what max_connections counts. Kept
        # here rather than read from websockets, whose own set fills only after the handshake completed.
        self._admitted: set[ServerConnection] = set()
        self.batcher = Batcher(max_batch, batch_window_ms)
        self.warm = warm
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.warm:  # on the inference thread: CUDA graphs belong to the thread that captured them
            t0 = time.perf_counter()
            shapes = await asyncio.wrap_future(
                self.batcher.call(warm_up, self.runner, self.spec, self.batcher.max_batch)
            )
            log.info("warmed up batch sizes %s in %.1f s", shapes, time.perf_counter() - t0)
            self._describe_inference()  # a compile that failed while warming up runs eager now
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self.port,
                process_request=self._process_request,
                compression=None,
                max_size=self.transport_max_bytes,
                max_queue=self.max_queue,
            )
        except OSError as e:  # port in use, an address not on this machine
            raise ServingError(
                f"cannot listen on {self.host}:{self.port}: {e.strerror or e}; pick another port= "
                f"or a host= that is an address of this machine"
            ) from None
        if not self._server.sockets:  # newer asyncio skips addresses it cannot assign instead of failing
            self._server.close()
            raise ServingError(
                f"cannot listen on {self.host}:{self.port}: not an address of this machine; pick another host="
            )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "serving %s on ws://%s:%d (health: http://%s:%d%s)%s",
            self.metadata.get("checkpoint"),
            self.host,
            self.port,
            self.host,
            self.port,
            HEALTH_PATH,
            " with token" if self.token else "",
        )

    def _describe_inference(self) -> None:
        """The metadata's ``inference``: what the encoders run as, after any fallback."""
        if (inference := getattr(self.runner, "inference", None)) is None:
            return
        described = inference.describe()
        encoders = getattr(self.runner, "encoders", {}).values()
        if described["compile"] and any(getattr(e.compiled, "failed", True) for e in encoders):
            described["compile"] = False
        self.metadata["inference"] = described

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        try:
            await self._server.serve_forever()
        finally:
            self.batcher.close()

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
        self.batcher.close()

    # -- HTTP: health and authentication --------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request):
        if request.path.split("?")[0] == HEALTH_PATH:
            body = json.dumps({"status": "ok", "protocol": PROTOCOL_VERSION, **self.stats, **self.batcher.stats})
            response = connection.respond(HTTPStatus.OK, body + "\n")
            response.headers["Content-Type"] = "application/json"
            return response
        if self.token:
            given = request.headers.get_all("Authorization")
            if len(given) > 1:
                self.trouble.warn(
                    "auth", "auth", "refused %s: %d Authorization headers", connection.remote_address, len(given)
                )
                return connection.respond(HTTPStatus.BAD_REQUEST, "send exactly one Authorization header\n")
            if not hmac.compare_digest((given or [""])[0].encode(), f"Bearer {self.token}".encode()):
                self.trouble.warn("auth", "auth", "refused %s: missing or wrong token", connection.remote_address)
                return connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
        # A handshake that failed after this point never reaches _handle: its transport is closed.
        self._admitted = {c for c in self._admitted if not c.transport.is_closing()}
        if len(self._admitted) >= self.max_connections:
            self.stats["refused_busy"] += 1
            self.trouble.warn(
                "busy",
                "busy",
                "refused %s: already %d connections (max_connections)",
                connection.remote_address,
                len(self._admitted),
            )
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"server busy: it serves at most {self.max_connections} connections "
                f"(max_connections); try again later\n",
            )
        self._admitted.add(connection)
        return None

    # -- WebSocket ------------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        # Own episode state over the shared modules: reset() gives the copy fresh history/queues.
        runner = copy.copy(self.runner)
        runner.reset(1)
        self.stats["connections"] += 1
        self.stats["open_connections"] += 1
        self.batcher.connections += 1
        peer = ws.remote_address
        counts = {"requests": 0, "errors": 0}
        log.info("client %s connected", peer)
        try:
            await ws.send(packb(self.metadata))
            while True:
                try:
                    # Cancelling recv() loses nothing (websockets guarantees it): the timeout is clean.
                    data = await asyncio.wait_for(ws.recv(), self.idle_timeout_s)
                except TimeoutError:
                    self.stats["closed_idle"] += 1
                    log.info("client %s sent nothing for %g s: closing (idle_timeout_s)", peer, self.idle_timeout_s)
                    await ws.close(1000, f"idle for {self.idle_timeout_s:g} s")
                    break
                reply = await self._reply(runner, data, ws, counts)
                await ws.send(packb(reply))
        except ConnectionClosed as e:
            log.info("client %s went away (%s)", peer, e)
        finally:
            self._admitted.discard(ws)
            self.trouble.forget(ws)
            self.stats["open_connections"] -= 1
            self.batcher.connections -= 1
            log.info(
                "client %s disconnected after %d requests (%d refused)", peer, counts["requests"], counts["errors"]
            )

    async def _reply(self, runner: Any, data: bytes | str, ws: ServerConnection, counts: dict) -> dict:
        t0 = time.perf_counter()
        self.stats["requests"] += 1
        counts["requests"] += 1
        rid = None
        try:
            if len(data) > self.max_message_bytes:
                raise ProtocolError(
                    MESSAGE_TOO_LARGE,
                    f"message of {len(data)} bytes is over the server's limit of "
                    f"{self.max_message_bytes} (max_message_bytes)",
                )
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
            counts["errors"] += 1
            self.trouble.warn(ws, e.code, "bad request from %s: %s: %s", ws.remote_address, e.code, e)
            return error_message(e.code, str(e), rid)
        except Exception as e:  # noqa: BLE001 -- the model failing on one request must not end the connection
            self.stats["errors"] += 1
            counts["errors"] += 1
            self.trouble.warn(ws, INTERNAL, "inference failed for %s", ws.remote_address, exc_info=e)
            return error_message(INTERNAL, f"inference failed: {type(e).__name__}: {e}", rid)

    async def _infer(self, runner: Any, msg: dict, rid: Any, t0: float) -> dict:
        flags = {}
        for name in ("chunk", "reset"):
            value = msg.get(name, False)
            if not isinstance(value, bool):
                raise ProtocolError(BAD_MESSAGE, f'"{name}" must be true or false, got {value!r}')
            flags[name] = value
        if flags["chunk"] and not self.chunk_requests:
            raise ProtocolError(
                UNSUPPORTED,
                "this policy cannot serve chunks (it keeps an observation history or "
                "ensembles chunks); send one infer per control step",
            )
        obs = validate_observation(msg.get("obs"), self.spec)
        req = Request(runner, obs, chunk=flags["chunk"], reset=flags["reset"])
        result = await asyncio.wrap_future(self.batcher.submit(req))
        result["timing"]["server_ms"] = (time.perf_counter() - t0) * 1e3
        return {"type": "action", "id": rid, **result}
