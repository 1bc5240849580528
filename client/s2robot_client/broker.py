"""Action-chunk execution on the robot side: one action per control tick from the last chunk,
a new chunk requested when it runs out (the metadata's ``n_action_steps``)."""

from __future__ import annotations

from collections import deque

import numpy as np

from s2robot_client.client import PolicyClient


class ActionChunkBroker:
    """``act(obs)`` -> the next action. With a server that serves chunks (metadata
    ``chunk_requests``), one request per ``n_action_steps`` ticks; otherwise one request per tick
    and the server executes the chunk itself. Both give the same actions as in-process execution.

    ``reset()`` starts a new episode: queued actions are dropped and the next request tells the
    server to forget this connection's history (no extra round trip).
    """

    def __init__(self, client: PolicyClient, use_chunks: bool | None = None):
        self.client = client
        supported = bool(client.metadata.get("chunk_requests", False))
        self.use_chunks = supported if use_chunks is None else (use_chunks and supported)
        self._queue: deque[np.ndarray] = deque()
        self._new_episode = True
        self.last_reply: dict | None = None

    def reset(self) -> None:
        self._queue.clear()
        self._new_episode = True

    def reconnect(self, timeout: float) -> None:
        """One attempt to reconnect the client (ConnectError on failure). The new connection has no
        history on the server, and queued actions are stale by now: both start afresh."""
        self.client.reconnect(open_timeout=timeout)
        self.reset()

    def act(self, obs: dict[str, np.ndarray], timeout: float | None = None) -> np.ndarray:
        if not self._queue:
            reply = self.client.infer(obs, chunk=self.use_chunks, reset=self._new_episode, timeout=timeout)
            self._new_episode = False
            self.last_reply = reply
            self._queue.extend(reply["actions"] if self.use_chunks else [reply["action"]])
        return self._queue.popleft()
