"""Errors every layer raises about its input; the CLI prints them as one line."""


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key and its source."""


class UnknownName(ValueError):
    """A name no registry holds (a dataset, a corpus format); the message lists the names that would work."""

    def __init__(self, kind: str, name: str, known) -> None:
        self.kind, self.name, self.known = kind, name, list(known)
        super().__init__(f"Unknown {kind} {name!r}; known: {', '.join(self.known)}")


class InvalidValue(ConfigError):
    """A key holds a value outside what it takes; the config loader adds where the value was set."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"key '{key}' takes {allowed}, got {value!r}")
