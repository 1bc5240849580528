"""What command-line entries treat as the user's mistake: one clear line, exit code 2, no traceback."""

from s2robot.checkpoint import CheckpointError
from s2robot.encoders import UnknownEncoderError
from s2robot.replay_buffer import StoreError
from s2robot.s2 import S2Error
from s2robot.train import ConfigError
from s2robot.weights import WeightsError

USER_ERRORS = (ConfigError, CheckpointError, UnknownEncoderError, StoreError, S2Error, WeightsError)
