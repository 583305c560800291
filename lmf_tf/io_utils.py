"""Atomic file output: a failure never leaves a half-written file in place of a good one."""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile


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
