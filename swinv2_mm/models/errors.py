"""The error a backbone raises for arguments it cannot work with."""


class ConfigError(ValueError):
    """A backbone argument that is invalid (the message names it and the fix); the tools
    print it without a traceback."""
