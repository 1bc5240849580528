"""The user's mistakes, as one exception family: command-line entries print the message as one
line and exit 2, with no traceback. Imports nothing, so every module may raise these."""


class UserError(Exception):
    """A mistake the user can fix (bad config value, missing file, corrupt store, ...). The
    message says what was wrong and what to do."""


class ConfigError(UserError, ValueError):
    """A bad configuration value, caught before any work starts."""
