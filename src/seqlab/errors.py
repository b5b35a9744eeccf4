"""Errors a user can fix. The command line prints them as one line on stderr and exits with 2."""


class UserError(Exception):
    """Bad input: a missing or malformed file, a bad flag or config value, a run directory clash."""


class DataError(UserError):
    """The data given cannot be used as it is."""


class ConfigError(UserError):
    """An unknown key or a bad value in a config file or a --set override."""
