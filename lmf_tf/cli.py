"""What every script shares: one-line errors and exit statuses."""

from absl import logging

from lmf_tf.errors import LmfError


def run_or_exit(fn, *args, **kwargs):
  """Runs `fn`; an `LmfError` or missing file becomes a one-line message and exit status 1."""
  try:
    return fn(*args, **kwargs)
  except (LmfError, FileNotFoundError) as e:
    logging.error('%s', e)
    raise SystemExit(f'error: {e}') from None
