"""Atomic file output: a failure never leaves a half-written file in place of a good one."""

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import tempfile

from absl import logging


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path beside `path`; on success it is renamed onto `path` (os.replace is atomic).

  On an exception the temporary file or directory is removed and `path` is left as it was.
  """
  directory = os.path.dirname(os.path.abspath(path)) or '.'
  os.makedirs(directory, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=directory)
  tmp_target = os.path.join(tmp, 'out')
  try:
    yield tmp_target
    if os.path.isdir(tmp_target) and os.path.isdir(path):
      # A directory cannot be os.replace'd onto a non-empty one: move the old one aside first.
      old = path + '.old'
      shutil.rmtree(old, ignore_errors=True)
      os.replace(path, old)
      os.replace(tmp_target, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp_target, path)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path, text):
  """Writes `text` (UTF-8) to `path` atomically."""
  with atomic_path(path) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)


def write_json_atomic(path, obj):
  """Writes `obj` as indented, key-sorted JSON to `path` atomically (temp file, fsync, rename)."""
  with atomic_path(path) as tmp:
    with open(tmp, 'w', encoding='utf-8') as f:
      json.dump(obj, f, indent=2, sort_keys=True)
      f.write('\n')
      f.flush()
      os.fsync(f.fileno())


def read_json(path, what='file'):
  """The JSON value in `path`; a truncated or corrupted file raises CorruptFileError naming it and `what` it is."""
  from lmf_tf.errors import CorruptFileError  # pylint: disable=g-import-not-at-top
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CorruptFileError(f'{what} {path} is truncated or corrupted ({type(e).__name__}: {e}); delete it and '
                           'run again to rebuild it') from None


def checkpoint_files(prefix):
  """The files of the TF checkpoint `prefix`: `<prefix>.index` and its `.data-*` shards, sorted."""
  return sorted(glob.glob(glob.escape(prefix) + '.data-*')) + [prefix + '.index']


def checkpoint_digest(prefix):
  """sha256 over a TF checkpoint's `.index` and `.data-*` files (recorded at save, checked at load)."""
  return files_digest(checkpoint_files(prefix), length=64)


def verify_checkpoint(prefix, expected_digest, what='checkpoint'):
  """Raises CorruptFileError naming the checkpoint if its files no longer have the digest recorded at save."""
  from lmf_tf.errors import CorruptFileError  # pylint: disable=g-import-not-at-top
  if expected_digest is None:  # written before digests were recorded
    return
  files = checkpoint_files(prefix)
  missing = [p for p in files if not os.path.exists(p)]
  actual = None if missing else checkpoint_digest(prefix)
  if actual != expected_digest:
    raise CorruptFileError(f'{what} {prefix} is truncated or corrupted: the sha256 of {", ".join(files)} differs '
                           'from the one recorded when it was written')


@contextlib.contextmanager
def run_lock(directory):
  """Holds an exclusive lock on `<directory>/.lock` (`fcntl.flock`, which also records this process's pid there).

  A second process asking for the same directory gets RunLockedError naming the directory and the holder's pid.
  The kernel releases the lock when its holder exits, even by SIGKILL, so a dead run never blocks a new one.
  Local file systems only: a lock held on another machine through a network file system may not be seen.
  """
  from lmf_tf.errors import RunLockedError  # pylint: disable=g-import-not-at-top
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, '.lock')
  with open(path, 'a+') as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or 'unknown'
      raise RunLockedError(f'{directory} is being written by another run (pid {holder}); wait for it, or give this '
                           'run another --workdir or --seed') from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def exclusive(path):
  """Holds an exclusive `flock` on the file `path` (created if needed), waiting for another process that holds it:
  for work that two processes must not do at once, such as preparing the same data set."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'a') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def files_digest(paths, length=12):
  """Short sha256 over the contents of `paths` (in the given order): a cache key for prepared data."""
  digest = hashlib.sha256()
  for path in paths:
    digest.update(os.path.basename(path).encode())
    with open(path, 'rb') as f:
      for block in iter(lambda: f.read(1 << 20), b''):
        digest.update(block)
  return digest.hexdigest()[:length]


def numbered_lines(path):
  """Yields (line number, text) of a UTF-8 text file; a byte that is not UTF-8 raises DataFormatError naming the
  file and line (instead of a bare UnicodeDecodeError).
  """
  from lmf_tf.errors import DataFormatError  # pylint: disable=g-import-not-at-top
  with open(path, 'rb') as f:
    for lineno, raw in enumerate(f, start=1):
      try:
        text = raw.decode('utf-8')
      except UnicodeDecodeError as e:
        raise DataFormatError(f'{path}:{lineno}: not UTF-8 text ({e.reason} at byte {e.start})') from None
      if lineno == 1:
        text = text.lstrip('\ufeff')  # a byte-order mark
      yield lineno, text


def relocated_data_dir(recorded, vendored, repo_root):
  """The data folder recorded in a checkpoint's config, or the vendored one if the recorded folder is gone and was
  the vendored folder of a clone that has moved (it ends in the same path below the clone: `data`, `data/ptb`).

  Checkpoints record absolute paths; a repository that is moved or cloned elsewhere would otherwise be unable to
  quantize, compress or evaluate its own checkpoints.
  """
  if os.path.isdir(recorded) or not os.path.isdir(vendored):
    return recorded
  below_root = os.path.relpath(vendored, repo_root).split(os.sep)
  if os.path.normpath(recorded).split(os.sep)[-len(below_root):] != below_root:
    return recorded
  logging.warning('data folder %s (recorded in the checkpoint) is gone; using the vendored %s', recorded, vendored)
  return vendored
