"""Readers of the vendored text-classification files: each returns the examples it read, or raises
DataFormatError naming the file and line (or item) at fault, FileNotFoundError naming a missing file.

Formats: `text<TAB>label` (SST-2), a JSON object of splits of [utterance, intent] pairs (CLINC150), line-aligned
utterance and label files (SNIPS, ATIS), a quoted CSV (Banking77), and JSON label lists. The readers only
normalise whitespace (runs of spaces and newlines become one space); tokenisation is `input_pipeline.tokenize`.
"""

import collections
import csv
import dataclasses
import json
import os
import re

import numpy as np

from lmf_tf import io_utils
from lmf_tf.errors import DataFormatError

_KIM_DISALLOWED = re.compile(r"[^A-Za-z0-9(),!?'`]")
_SPACES = re.compile(r'\s+')


def clean_sst_text(text):
  """Kim (2014) `clean_str_sst`, plus the PTB bracket tokens, so GLUE phrases match the sentence files.

  The sentence files hold `-LRB-`/`-RRB-` as `lrb`/`rrb` and drop every character outside
  `[A-Za-z0-9(),!?'`]` (non-ASCII letters included). GLUE writes brackets as `(` `)`, so those become
  `lrb`/`rrb` first.

  >>> clean_sst_text("The naïf 's -- ( funny ) film . ")
  "the na f 's lrb funny rrb film"
  """
  text = text.replace('(', ' lrb ').replace(')', ' rrb ')
  text = _KIM_DISALLOWED.sub(' ', text)
  return _SPACES.sub(' ', text).strip().lower()


@dataclasses.dataclass(frozen=True)
class Example:
  text: str
  label: int


def read_labelled_tsv(path, num_classes=2, header=False, clean=None):
  """Reads `text<TAB>label` lines; returns a list of `Example`.

  Args:
    path: the file.
    num_classes: labels must be integers in [0, num_classes).
    header: skip the first line (GLUE files start with `sentence<TAB>label`).
    clean: optional function applied to the text.

  Raises:
    DataFormatError: naming `path:line` for a line without exactly one tab, a non-integer or out-of-range label,
      or an empty text.
  """
  examples = []
  for lineno, line in io_utils.numbered_lines(path):
    if header and lineno == 1:
      continue
    line = line.rstrip('\r\n')
    if not line.strip():
      continue
    fields = line.split('\t')
    if len(fields) != 2:
      raise DataFormatError(
          f'{path}:{lineno}: expected "text<TAB>label" (2 tab-separated fields), found {len(fields)}: '
          f'{line[:80]!r}')
    text, label = fields
    try:
      label = int(label.strip())
    except ValueError:
      raise DataFormatError(f'{path}:{lineno}: label {label!r} is not an integer') from None
    if not 0 <= label < num_classes:
      raise DataFormatError(f'{path}:{lineno}: label {label} is outside [0, {num_classes})')
    if clean is not None:
      text = clean(text)
    if not text.strip():
      if clean is not None:
        continue  # A phrase made only of dropped characters (e.g. "--") carries no tokens.
      raise DataFormatError(f'{path}:{lineno}: empty text')
    examples.append(Example(text, label))
  return examples


@dataclasses.dataclass(frozen=True)
class LabelledText:
  """An utterance with its label name as read, and where it came from (`path:line`, for error messages)."""
  text: str
  label: str
  where: str


@dataclasses.dataclass(frozen=True)
class LabelledSplits:
  """A data set read from its files: `splits` maps 'train', 'validation', 'test' to lists of `Example`, whose
  labels index `class_names`."""
  splits: dict
  class_names: tuple


def _require_file(path, what):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} {path} is missing')


def _read_json(path, what):
  """The JSON value in `path` (UTF-8, decoded as every reader here does), or DataFormatError naming `path:line`."""
  _require_file(path, what)
  text = ''.join(line for _, line in io_utils.numbered_lines(path))
  try:
    return json.loads(text)
  except json.JSONDecodeError as e:
    raise DataFormatError(f'{path}:{e.lineno}: invalid JSON ({e.msg})') from None


def _normalise(text):
  return ' '.join(text.split())


def read_label_list(path):
  """Reads a JSON list of label names, or a JSON object of such lists (CLINC150's `domains.json`, domain ->
  intents); returns the names in file order.

  Raises:
    FileNotFoundError: naming the file if it is missing.
    DataFormatError: naming the file (and line, for invalid JSON) if it is not such a list, or a name is empty or
      repeated.
  """
  value = _read_json(path, 'label file')
  groups = value.values() if isinstance(value, dict) else [value]
  if not all(isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups):
    raise DataFormatError(f'{path}: expected a JSON list of label names (or an object of such lists)')
  names = [n for g in groups for n in g]
  repeated = sorted(n for n, c in collections.Counter(names).items() if c > 1)
  if repeated or not all(n.strip() for n in names):
    raise DataFormatError(f'{path}: label names must be non-empty and unique (repeated: {repeated})')
  return names


def read_clinc_json(path):
  """Reads CLINC150's `data_full.json`, `{split: [[utterance, intent], ...], ...}`, with the standard `json` module.

  Returns:
    dict from split name (`train`, `val`, `test`, `oos_train`, ...) to a list of `LabelledText`, each located by
    its split and item number (`json` does not report where a value starts).
  Raises:
    DataFormatError: naming `path:line` for invalid JSON, or the split and item for an element that is not a pair
      of strings or has an empty utterance.
  """
  value = _read_json(path, 'data file')
  if not isinstance(value, dict):
    raise DataFormatError(f'{path}: expected a JSON object of splits, found {type(value).__name__}')
  splits = {}
  for key, pairs in value.items():
    if not isinstance(pairs, list):
      raise DataFormatError(f'{path}: split {key!r} is not a list of [utterance, intent] pairs')
    rows = splits[key] = []
    for item, pair in enumerate(pairs, start=1):
      where = f'{path}: split {key!r}, item {item}'
      if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
        raise DataFormatError(f'{where}: expected an [utterance, intent] pair of strings, found '
                              f'{json.dumps(pair)[:80]}')
      if not _normalise(pair[0]):
        raise DataFormatError(f'{where}: empty utterance')
      rows.append(LabelledText(_normalise(pair[0]), pair[1].strip(), where))
  return splits


def read_line_aligned(text_path, label_path):
  """Reads an utterance file and a label file whose line i belong together (SNIPS/ATIS `seq.in` and `label`).

  Returns:
    list of `LabelledText`, located at the label file's line.
  Raises:
    FileNotFoundError: naming a missing file.
    DataFormatError: naming file and line for an empty utterance or label, or the first line that one file has
      and the other lacks.
  """
  _require_file(text_path, 'utterance file')
  _require_file(label_path, 'label file')
  texts = [line for _, line in io_utils.numbered_lines(text_path)]
  labels = [line for _, line in io_utils.numbered_lines(label_path)]
  if len(texts) != len(labels):
    longer, shorter = (text_path, label_path) if len(texts) > len(labels) else (label_path, text_path)
    n = min(len(texts), len(labels))
    raise DataFormatError(f'{longer}:{n + 1}: no matching line in {shorter}, which has {n} lines '
                          f'(against {max(len(texts), len(labels))})')
  rows = []
  for lineno, (text, label) in enumerate(zip(texts, labels), start=1):
    if not _normalise(text):
      raise DataFormatError(f'{text_path}:{lineno}: empty utterance')
    if not label.strip():
      raise DataFormatError(f'{label_path}:{lineno}: empty label')
    rows.append(LabelledText(_normalise(text), label.strip(), f'{label_path}:{lineno}'))
  return rows


def read_labelled_csv(path, columns=('text', 'category')):
  """Reads a CSV file with the header `columns` (utterance, label), quoted as needed (Banking77).

  A quoted utterance may span lines; its `LabelledText.lineno` is the line where its row starts.
  Raises:
    FileNotFoundError: naming the file if it is missing.
    DataFormatError: naming `path:line` for another header, a row without exactly two fields, broken quoting or
      an empty utterance.
  """
  _require_file(path, 'data file')
  reader = csv.reader((line for _, line in io_utils.numbered_lines(path)), strict=True)
  rows, start = [], 1
  while True:
    try:
      fields = next(reader)
    except StopIteration:
      break
    except csv.Error as e:
      raise DataFormatError(f'{path}:{start}: {e}') from None
    lineno, start = start, reader.line_num + 1
    if not fields:
      continue
    if lineno == 1:
      if tuple(fields) != tuple(columns):
        raise DataFormatError(f'{path}:1: expected the header {",".join(columns)}, found {",".join(fields)[:80]!r}')
      continue
    if len(fields) != 2:
      raise DataFormatError(f'{path}:{lineno}: expected 2 comma-separated fields ({",".join(columns)}), found '
                            f'{len(fields)}: {",".join(fields)[:80]!r}')
    text, label = _normalise(fields[0]), fields[1].strip()
    if not text:
      raise DataFormatError(f'{path}:{lineno}: empty utterance')
    rows.append(LabelledText(text, label, f'{path}:{lineno}'))
  return rows


def _examples(rows, class_names, label_file):
  """`LabelledText`s -> `Example`s with label ids; a label not in `class_names` raises DataFormatError at its line."""
  ids = {name: i for i, name in enumerate(class_names)}
  examples = []
  for row in rows:
    if row.label not in ids:
      raise DataFormatError(f'{row.where}: label {row.label!r} is not one of the {len(ids)} labels '
                            f'of {label_file}')
    examples.append(Example(row.text, ids[row.label]))
  return examples


def labels_unseen_in_train(data):
  """{label name: number of test examples} for the test labels that no training example has (`LabelledSplits`)."""
  seen = {e.label for e in data.splits['train']}
  counts = collections.Counter(data.class_names[e.label] for e in data.splits['test'] if e.label not in seen)
  return dict(sorted(counts.items()))


def stratified_holdout(examples, fraction, seed):
  """Splits `examples` into (kept, held out), holding out round(fraction * N) of all N, stratified by label.

  Label c with n_c examples gives floor(fraction * n_c) of them, and the labels with the largest remainders one
  more each (ties: lower label first) until the total is round(fraction * N), so every label is held out in
  proportion to within one example. Which ones is drawn label by label, in label order, with
  `np.random.RandomState(seed).permutation` (NumPy's legacy generator, whose stream is frozen across versions).
  Both parts keep the input order.
  Example: N = 10,003 and fraction 0.1 hold out 1,000; a label with 35 examples gives 3 (remainder 0.5) or 4.
  """
  by_label = collections.defaultdict(list)
  for i, example in enumerate(examples):
    by_label[example.label].append(i)
  labels = sorted(by_label)
  quotas = {c: fraction * len(by_label[c]) for c in labels}
  take = {c: int(q) for c, q in quotas.items()}
  by_remainder = sorted(labels, key=lambda c: (-(quotas[c] - take[c]), c))
  for c in by_remainder[:round(fraction * len(examples)) - sum(take.values())]:
    take[c] += 1
  rng = np.random.RandomState(seed)
  held_out = set()
  for c in labels:
    indices = by_label[c]
    held_out.update(indices[j] for j in rng.permutation(len(indices))[:take[c]])
  return ([e for i, e in enumerate(examples) if i not in held_out],
          [e for i, e in enumerate(examples) if i in held_out])
