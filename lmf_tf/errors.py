"""Errors that lmf_tf raises for bad input.

Each names the file, line or flag at fault, so that the entry points can print it and exit non-zero without a
traceback from deep inside TensorFlow. The library raises `ConfigError` for a bad argument (the message names it),
`CheckpointNotFoundError` and `CorruptFileError` for a checkpoint it cannot read, and `MissingExtraError` for a
feature whose pip extra is not installed; all are `LmfError`s.
"""

__all__ = ['LmfError', 'ConfigError', 'CheckpointNotFoundError', 'CorruptFileError', 'MissingExtraError',
           'BudgetExceededError']


class LmfError(Exception):
  """Base class: a problem with the user's input, reported by message alone."""


class DataFormatError(LmfError, ValueError):
  """A data or embeddings file has a line that cannot be parsed (message names file and line)."""


class ConfigError(LmfError, ValueError):
  """A flag or config value is invalid or impossible (message names the flag)."""


class CheckpointNotFoundError(LmfError, FileNotFoundError):
  """A checkpoint that was asked for does not exist (message names the path)."""


class CorruptFileError(LmfError):
  """A checkpoint, state or results file exists but is truncated or corrupted (message names the file)."""


class TrainingDivergedError(LmfError):
  """The training loss became NaN or infinite (message names the step and the last good checkpoint)."""


class RunLockedError(LmfError):
  """Another live process is writing the same run directory (message names it and the process)."""


class WorkerLostError(LmfError):
  """A multi-worker run lost a worker (message says what to do next)."""


class BudgetExceededError(LmfError):
  """The shipped files are larger than the byte budget they were planned for."""


class MissingExtraError(LmfError, ImportError):
  """A feature needs a package that `pip install lmf_tf` leaves out (message names the extra that installs it)."""
