"""Errors a user can fix. The command line prints them as one line on stderr and exits with 2."""


class UserError(Exception):
    """Bad input: a missing or malformed file, a bad flag or config value, a run directory clash."""


class DataError(UserError):
    """The data given cannot be used as it is."""


class ConfigError(UserError):
    """An unknown key or a bad value in a config file or a --set override."""


class DamagedFileError(UserError):
    """A file of a run directory that cannot be read back: truncated, cut short by a full disk, or
    not what seqlab wrote. The message names the file and what to do."""

    def __init__(self, path, reason: str, advice: str = "restore it from a copy, or train the run again") -> None:
        reason = str(reason).strip().splitlines()[0] if str(reason).strip() else "unreadable"
        self.path, self.reason = path, reason[:200]
        super().__init__(f"{path} is damaged ({self.reason}); {advice}")
