"""Robot-side client of the s2robot action server (numpy + websockets + msgpack only)."""

from s2robot_client.broker import ActionChunkBroker
from s2robot_client.client import BadReply, ConnectError, PolicyClient, ServerError
from s2robot_client.protocol import PROTOCOL_VERSION, ProtocolError, packb, unpackb
from s2robot_client.recording import EpisodeBuffer, RecordingError, SpoolWriter, read_spool
from s2robot_client.robot import LoopStats, Robot, clip_action, hold_action, hold_for, run_control_loop

__all__ = [
    "ActionChunkBroker",
    "BadReply",
    "ConnectError",
    "PolicyClient",
    "ServerError",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "packb",
    "unpackb",
    "LoopStats",
    "Robot",
    "clip_action",
    "hold_action",
    "hold_for",
    "EpisodeBuffer",
    "RecordingError",
    "SpoolWriter",
    "read_spool",
    "run_control_loop",
]
