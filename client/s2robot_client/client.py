"""A blocking WebSocket client for the action server: connect (bounded retries with backoff),
read the metadata, ``infer(obs)``, ``reset()``, ``reconnect()`` after a lost connection.

Requests carry an id; a reply that arrives after its request timed out is recognised and
dropped, so a late action is never applied to a newer observation. Every action reply is checked
(an action of the metadata's size, floating point) before it is returned: a malformed reply raises
`BadReply`, never a KeyError or a wrong array.

Somewhat over 250 lines: one client class, whose connection, retry and reply checks share its state.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from s2robot_client.protocol import PROTOCOL_VERSION, ProtocolError, decode_message, packb

log = logging.getLogger(__name__)

# What the robot side needs to run a policy it knows nothing else about.
REQUIRED_METADATA = ("action_dim", "action_low", "action_high", "control_freq", "n_action_steps")


class ServerError(RuntimeError):
    """The server answered a request with an error reply: ``code`` and ``str(e)`` say why."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class BadReply(RuntimeError):
    """The server's reply could not be used: not MessagePack, not a map, or an action reply
    without a well-formed ``action`` (``actions`` for a chunk)."""


class ConnectError(ConnectionError):
    """No server could be reached (after the retries) or it refused us."""


class PolicyClient:
    """``PolicyClient("ws://127.0.0.1:8000", token=...)``: connects on construction.

    ``retries`` extra attempts are made when nothing answers, waiting ``backoff * 2**k`` seconds
    (at most ``max_backoff``) before attempt k+1; a refused token fails at once.
    """

    def __init__(
        self,
        uri: str = "ws://127.0.0.1:8000",
        token: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 5.0,
        open_timeout: float = 10.0,
        max_message_bytes: int = 64 * 2**20,
    ):
        self.uri = uri
        self._token = token
        self._max_message_bytes = max_message_bytes
        self._next_id = 0
        self._pending: int | None = None  # id of a request whose reply has not come yet
        self._cm = None
        self.metadata: dict = self._open(retries, backoff, max_backoff, open_timeout)

    def _open(self, retries: int, backoff: float, max_backoff: float, open_timeout: float) -> dict:
        self._ws = self._connect(retries, backoff, max_backoff, open_timeout)
        try:
            first = self._recv(timeout=open_timeout)
        except TimeoutError:
            self.close()
            raise ConnectError(
                f"{self.uri} accepted the connection but sent no metadata within {open_timeout} s; "
                f"is it an s2robot action server?"
            ) from None
        except (ProtocolError, ConnectionClosed) as e:
            self.close()
            raise ConnectError(
                f"{self.uri} did not send a readable metadata message ({e}); is it an s2robot action server?"
            ) from None
        if first.get("type") != "metadata":
            self.close()
            raise ConnectError(f"{self.uri} did not start with a metadata message (got {first.get('type')!r})")
        if first.get("protocol") != PROTOCOL_VERSION:
            self.close()
            raise ConnectError(
                f"{self.uri} speaks protocol {first.get('protocol')}, this client speaks "
                f"{PROTOCOL_VERSION}; install the s2robot-client that matches the server"
            )
        missing = [k for k in REQUIRED_METADATA if k not in first]
        if missing:
            self.close()
            raise ConnectError(
                f"{self.uri} sent metadata without {missing}; install the s2robot-client that matches the server"
            )
        self._pending = None  # a fresh connection owes us no reply
        return first

    def _connect(self, retries, backoff, max_backoff, open_timeout) -> ClientConnection:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else None
        last: Exception | None = None
        for attempt in range(retries + 1):
            if attempt:
                delay = min(max_backoff, backoff * 2 ** (attempt - 1))
                log.info("connecting to %s failed (%s); retry %d/%d in %.1f s", self.uri, last, attempt, retries, delay)
                time.sleep(delay)
            try:
                # proxy=None: never route the robot's traffic through an HTTP(S)_PROXY from the environment.
                # compression=None: images do not deflate well and the CPU time would add latency.
                # Entered as a context manager: what websockets >= 17.1 asks for, and what keeps working when
                # its connect() starts returning a reconnecting wrapper.
                cm = connect(
                    self.uri,
                    additional_headers=headers,
                    proxy=None,
                    compression=None,
                    open_timeout=open_timeout,
                    max_size=self._max_message_bytes,
                )
                ws = cm.__enter__()
                self._cm = cm
                return ws
            except InvalidStatus as e:
                status = e.response.status_code
                if status in (401, 403):
                    raise ConnectError(
                        f"{self.uri} refused the connection (HTTP {status}): "
                        f"{'wrong' if self._token else 'missing'} token; pass the server's token "
                        f"(token=... / --token / S2ROBOT_SERVE_TOKEN)"
                    ) from None
                last = e  # 503: the server is at its connection limit; it may free up
            except InvalidURI as e:
                raise ConnectError(f"bad server address {self.uri!r}: {e}; use ws://host:port") from None
            except (OSError, TimeoutError) as e:
                last = e
        tries = f" after {retries + 1} attempts (last error: {last})" if retries else f" ({last})"
        raise ConnectError(
            f"could not connect to {self.uri}{tries}; is serve_policy.py running there, and is the host/port right?"
        )

    def reconnect(self, open_timeout: float = 2.0) -> None:
        """One attempt to open a new connection after the old one was lost (ConnectError on failure).
        The server must still serve the same checkpoint: a different policy is refused."""
        old = self.metadata
        self.close()
        md = self._open(0, 0.0, 0.0, open_timeout)
        if md.get("checkpoint") != old.get("checkpoint"):
            self.close()
            raise ConnectError(
                f"{self.uri} now serves checkpoint {md.get('checkpoint')}, not "
                f"{old.get('checkpoint')} that this run started with; restart the robot run"
            )
        self.metadata = md

    # -- requests -----------------------------------------------------------------------------

    def _recv(self, timeout: float | None) -> dict:
        return decode_message(self._ws.recv(timeout=timeout))

    def _request(self, msg: dict, timeout: float | None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        # A request that timed out earlier is still being answered: wait for (and drop) that reply
        # before sending, so requests never pile up on a stalled server. An unreadable frame is taken
        # as that reply: should the real one follow, its id marks it stale below.
        while self._pending is not None:
            try:
                if self._answers(self._recv(left()), self._pending):
                    self._pending = None
            except ProtocolError:
                self._pending = None
        self._next_id += 1
        rid = msg["id"] = self._next_id
        self._ws.send(packb(msg))
        self._pending = rid
        while True:
            try:
                reply = self._recv(left())  # TimeoutError propagates; _pending stays set
            except ProtocolError as e:
                self._pending = None
                raise BadReply(f"unreadable reply from {self.uri}: {e}") from None
            if not self._answers(reply, rid):
                continue  # a stale reply of an older request
            self._pending = None
            if reply.get("type") == "error":
                raise ServerError(str(reply.get("code")), str(reply.get("message")))
            return reply

    @staticmethod
    def _answers(reply: dict, rid: int) -> bool:
        # The server answers a connection's requests in order. An error without an id (a request too
        # large to be read) answers the oldest one outstanding, which is the one we wait for.
        got = reply.get("id")
        return (type(got) is int and got == rid) or (reply.get("type") == "error" and got is None)

    def _check_action(self, value: Any, name: str, ndim: int) -> np.ndarray:
        dim = self.metadata.get("action_dim")
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.ndim != ndim:
            raise BadReply(
                f'reply "{name}" must be a floating-point array of {ndim} dimension(s), got {_describe(value)}'
            )
        if value.shape[-1] != dim or (ndim == 2 and value.shape[0] == 0):
            raise BadReply(f'reply "{name}" has shape {list(value.shape)}; this policy\'s actions have {dim} entries')
        return value

    def infer(
        self, obs: dict[str, np.ndarray], chunk: bool = False, reset: bool = False, timeout: float | None = None
    ) -> dict:
        """One observation (no batch axis) -> ``{"action": (A,), "timing": {...}}``, plus ``"actions"``
        (n x A) when ``chunk``. ``reset``: this observation starts a new episode.
        Raises TimeoutError after ``timeout`` s, ServerError on an error reply, BadReply on a malformed one."""
        reply = self._request({"type": "infer", "obs": obs, "chunk": chunk, "reset": reset}, timeout)
        if reply.get("type") != "action":
            raise BadReply(f"expected an action reply, got type {reply.get('type')!r}")
        self._check_action(reply.get("action"), "action", 1)
        if chunk:
            self._check_action(reply.get("actions"), "actions", 2)
        return reply

    def reset(self, timeout: float | None = None) -> None:
        """Forget this connection's episode state (observation history, queued actions) on the server."""
        self._request({"type": "reset"}, timeout)

    def send_raw(self, data: bytes | str, timeout: float | None = None) -> dict:
        """Send a frame as is and return the next message (for tests and probes of the server)."""
        self._ws.send(data)
        return self._recv(timeout)

    def close(self) -> None:
        if self._cm is not None:
            cm, self._cm = self._cm, None
            try:
                cm.__exit__(None, None, None)
            except (OSError, ConnectionClosed):  # already gone: nothing left to close
                pass

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {list(value.shape)}"
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]


__all__ = ["PolicyClient", "ServerError", "BadReply", "ConnectError", "ConnectionClosed"]
