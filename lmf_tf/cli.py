"""What every script shares: a quiet terminal, one-line errors and documented exit statuses.

    import quiet_tensorflow           # first (scripts/quiet_tensorflow.py): `import lmf_tf` starts TensorFlow
    from lmf_tf import cli
    ...
    def main(argv):
      config = ...validate()            # what can be checked without the data
      from lmf_tf.text import training
      ...
    if __name__ == '__main__':
      cli.run(main)

The terminal (stdout) gets lmf_tf's own messages only, without logging prefixes: the data, the model, one line
per epoch, the swap, the summary. TensorFlow's, Keras's, absl's and tensorflow-datasets' messages are left out
unless they are errors; a training run keeps the full log, every source and prefix, in `<run>/train.log`.

Exit statuses: 0 done; 1 bad input or a failed run, after one line `error: ...` on stderr; 2 a command-line usage
error (an unknown flag, a value of the wrong type or outside its choices), after one line `error: ...`; 130
interrupted (Ctrl-C). Through `make`, a failing command makes `make` print its own line and exit with 2.
"""

import logging as std_logging
import os
import sys

from absl import app, flags, logging

from lmf_tf import extras
from lmf_tf.errors import LmfError


def _missing_extra_in_one_line(kind, value, traceback):
  """`sys.excepthook` of the scripts: a package of the study's pip extra missing, at a script's imports or during its
  run, is one line `error: ...` naming the extra (exit status 1), not a traceback."""
  missing = extras.missing_extra(value, 'the reproduction') if issubclass(kind, ModuleNotFoundError) else None
  if missing is None:
    sys.__excepthook__(kind, value, traceback)
  else:
    print(f'error: {missing}', file=sys.stderr)


sys.excepthook = _missing_extra_in_one_line

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
SCRIPTS_DIR = os.path.join(os.path.dirname(PACKAGE_DIR), 'scripts')


class OwnMessages(std_logging.Filter):
  """Passes lmf_tf's (and the scripts') INFO and above, and anyone's errors."""

  def filter(self, record):
    path = os.path.abspath(record.pathname)
    return record.levelno >= std_logging.ERROR or (
        record.levelno >= std_logging.INFO and path.startswith((PACKAGE_DIR, SCRIPTS_DIR)))


def quiet_terminal(stream=None):
  """Replaces absl's prefixed stderr logging by plain lines of lmf_tf's own messages on `stream` (stdout)."""
  root = std_logging.getLogger()
  for handler in list(root.handlers):
    if isinstance(handler, logging.ABSLHandler) or getattr(handler, 'lmf_terminal', False):
      root.removeHandler(handler)
  handler = std_logging.StreamHandler(stream or sys.stdout)
  handler.lmf_terminal = True
  handler.setFormatter(std_logging.Formatter('%(message)s'))
  handler.addFilter(OwnMessages())
  root.addHandler(handler)
  root.setLevel(std_logging.INFO)
  logging.set_verbosity(logging.INFO)
  std_logging.getLogger('tensorflow').setLevel(std_logging.ERROR)


_HELP_FLAGS = {'--help': True, '-h': True, '-?': True, '--helpshort': True, '--helpfull': False}


def _parse_flags(argv):
  """absl's flag parsing, but a bad flag is one line `error: ...` and exit status 2, and asking for help exits
  with 0 (absl exits with 1)."""
  for arg in argv[1:]:
    if arg in _HELP_FLAGS:
      app.usage(shorthelp=_HELP_FLAGS[arg], writeto_stdout=True)
      sys.exit(0)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f'error: {e} (--helpfull lists the flags)', file=sys.stderr)
    sys.exit(2)


def run(main):
  """`app.run(main)` with a quiet terminal; an `LmfError` or a missing file is one line and exit status 1.

  The flags are parsed (and a bad one refused) before the data is read or a model built.
  """
  def wrapped(argv):
    if len(argv) > 1:
      print(f'error: unexpected arguments {argv[1:]} (flags are --name=value)', file=sys.stderr)
      sys.exit(2)
    quiet_terminal()
    return run_or_exit(main, argv)

  app.run(wrapped, flags_parser=_parse_flags)


class UsageError(LmfError):
  """A script's flags do not make sense together (exit status 2)."""


def run_or_exit(fn, *args, **kwargs):
  """Runs `fn`; an `LmfError` or a missing file becomes one line `error: <message>` and exit status 1, Ctrl-C
  status 130, with no traceback (the run's log file keeps it)."""
  try:
    return fn(*args, **kwargs)
  except UsageError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except (LmfError, FileNotFoundError) as e:
    logging.debug('%s', e, exc_info=True)
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt:
    print('interrupted', file=sys.stderr)
    sys.exit(130)
  except BrokenPipeError:  # the reader went away (`| head`): stop quietly
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)
