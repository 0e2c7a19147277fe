"""Errors every layer raises about its input; the CLI prints them as one line."""


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and its source."""
