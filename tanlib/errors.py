"""Exceptions of the kit.

Every error a user can cause (bad data, bad parameters, bad checkpoints) is a
``TANError`` subclass with a message that names the file, line or parameter and what
was expected. The command line prints the message and exits with the class's
``exit_code`` instead of showing a traceback.
"""


class TANError(Exception):
    """Base class: a user-facing error with a specific message."""

    exit_code = 1


class ConfigError(TANError, ValueError):
    """A configuration key or value is unknown or out of range."""

    exit_code = 2


class DataError(TANError):
    """A dataset, manifest or label file is missing, malformed or inconsistent."""

    exit_code = 3


class CheckpointError(TANError):
    """A checkpoint or weight file cannot be used (format, architecture, coverage)."""

    exit_code = 4


class RunDirError(TANError):
    """A run directory would be overwritten, or is incomplete for what was asked."""

    exit_code = 5


class RunDirBusyError(RunDirError):
    """Another process holds the run directory's lock (it is writing there right now).

    ``holder`` is what that process recorded beside the lock (host, pid, start time,
    command), or an empty dict when it could not be read."""

    def __init__(self, message: str, run_dir: str = "", holder: dict | None = None):
        super().__init__(message)
        self.run_dir = run_dir
        self.holder = dict(holder or {})


class RecordError(RunDirError):
    """A run record (or a run directory read as one) is damaged, altered, incomplete or
    missing from the index of the evidence (``results/INDEX.json``).

    ``problems`` holds one ``(path, what is wrong)`` pair per problem found (every file
    is checked before the error is raised); ``records`` the record folders they concern."""

    def __init__(self, message: str, problems=(), records=()):
        super().__init__(message)
        self.problems = list(problems)
        self.records = list(records)


class NonFiniteLossError(TANError, FloatingPointError):
    """A loss became NaN or infinite during training."""

    exit_code = 6


class PipelineError(TANError):
    """A notebook of the pipeline failed or was given bad parameters."""

    exit_code = 7
