"""Text-classification data sets: file readers, offline tensorflow-datasets builders and a registry.

Every data set is served through tensorflow-datasets (TFDS). The vendored files under `data/` are read by
local-file `GeneratorBasedBuilder`s that work without a network; `load_splits` also accepts a TFDS catalog name
(e.g. `glue/sst2`) for users who are online. Each local data set has one or more builder configs, chosen with
`--train_level` (`local_config`); the first is the default.

One tokenizer serves every data set: `input_pipeline.tokenize` (lower-case, then split on whitespace). The
readers only normalise whitespace (runs of spaces and newlines become one space); they do not re-tokenise, so
each set is tokenised as its files are.

SST-2 (Socher et al. 2013), as in Acharya et al. 2019, §5.1. Configs `phrase` (default) and `sentence`:
  * `sst2` trains on the GLUE phrase-level training set (67,349 phrases, the authors' own setup), cleaned the same
    way as the sentence files (Kim 2014, see `clean_sst_text`), minus every phrase identical to a dev or test
    sentence. Dev (872) and test (1,821) are the sentence-level sets.
  * `--train_level=sentence` trains on the 6,920 training sentences only.

Intent classification (issue 5). Each set's default embeddings are `glove/glove.6B.50d.intent.txt`; the share of
training tokens (types) that have a vector under the whitespace tokenizer is given for each.
  * `clinc150` (Larson et al. 2019, `data_full.json`): 150 in-scope intents, train 15,000 / val 3,000 / test
    4,500. Classes are the intents of `domains.json`, sorted. Config `in_scope` (default) leaves out the
    out-of-scope utterances; `with_oos` adds `oos_train`/`oos_val`/`oos_test` (100 / 100 / 1,000) as a 151st
    class `oos`, placed last so that the 150 in-scope ids are the same in both configs. GloVe: 97.2% (81.7%);
    clitics such as `what's` stay one token, which GloVe 6B lacks.
  * `snips` (Goo et al. 2018 split): 7 intents, 13,084 / 700 / 700, from the line-aligned `seq.in` and `label`.
    GloVe: 98.2% (86.1%); the misses are mostly names (`deezer`, `zvooq`).
  * `atis` (Goo et al. 2018 split): 4,478 / 500 / 893. A multi-intent label such as `atis_flight#atis_airfare`
    is a class of its own. The classes are the sorted union of the labels of all three splits (26), so a test
    label that never occurs in training is a class the model can never predict: it stays in the test set and
    counts as an error. `load_splits` logs how many test examples have such a label (5 of 893, 4 labels; one
    dev example, `atis_airfare#atis_flight_time`, is likewise unseen). GloVe: 99.3% (96.5%).
  * `banking77` (Casanueva et al. 2020): 77 intents in the order of `categories.json`, `train.csv` (10,003) and
    `test.csv` (3,080). There is no dev split: `stratified_holdout` holds out 10% of the training examples
    (1,000, each intent in proportion to within one example; 9,003 remain) as validation, drawn with the fixed
    seed `BANKING77_DEV_SEED` = 0, not the run's `--seed`, so that every run is tuned on the same dev set. Texts
    keep their casing and punctuation; the whitespace tokenizer lower-cases them but leaves punctuation on the
    word (`card?` is a token of its own), so GloVe covers only 87.0% (50.1%).
"""

import bisect
import collections
import csv
import dataclasses
import json
import os
import re

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError, DataFormatError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(REPO_ROOT, 'data')
DEFAULT_TFDS_DIR = os.path.join(REPO_ROOT, '.tfds')

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


def sst2_splits(source_dir, train_level='phrase'):
  """The SST-2 splits as lists of `Example`, from the vendored files in `source_dir` (the `data/` folder).

  Returns:
    dict with keys 'train', 'validation', 'test'.
  """
  sentence_dir = os.path.join(source_dir, 'sst2')
  dev = read_labelled_tsv(os.path.join(sentence_dir, 'dev.tsv'))
  test = read_labelled_tsv(os.path.join(sentence_dir, 'test.tsv'))
  if train_level == 'sentence':
    train = read_labelled_tsv(os.path.join(sentence_dir, 'train.tsv'))
  elif train_level == 'phrase':
    phrase_dir = os.path.join(source_dir, 'sst2_glue_phrases')
    held_out = {e.text for e in dev} | {e.text for e in test}
    train = [
        e for name in ('train.tsv', 'dev.tsv')  # Together: the full GLUE SST-2 training set.
        for e in read_labelled_tsv(os.path.join(phrase_dir, name), header=True, clean=clean_sst_text)
        if e.text not in held_out
    ]
  else:
    raise ConfigError(f'--train_level must be "phrase" or "sentence", not {train_level!r}')
  return {'train': train, 'validation': dev, 'test': test}


def sst2_source_files(source_dir, train_level):
  files = [os.path.join(source_dir, 'sst2', f'{s}.tsv') for s in ('train', 'dev', 'test')]
  if train_level == 'phrase':
    files += [os.path.join(source_dir, 'sst2_glue_phrases', f'{s}.tsv') for s in ('train', 'dev')]
  return files


class LmfSst2(tfds.core.GeneratorBasedBuilder):
  """SST-2 from the vendored local files (no download). Configs: `phrase` (default) and `sentence`."""

  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='phrase', description='GLUE phrase-level train, sentence-level dev/test'),
      tfds.core.BuilderConfig(name='sentence', description='sentence-level train/dev/test (6,920/872/1,821)'),
  ]

  def __init__(self, *, source_dir=DATA_DIR, **kwargs):
    self._source_dir = source_dir
    super().__init__(**kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description='Stanford Sentiment Treebank, binary (SST-2), from local files.',
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=['negative', 'positive']),
        }),
        supervised_keys=('text', 'label'),
        citation='Socher et al. 2013; Wang et al. 2018 (GLUE).',
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded.
    splits = sst2_splits(self._source_dir, self.builder_config.name)
    return {name: self._generate_examples(examples) for name, examples in splits.items()}

  def _generate_examples(self, examples):
    for i, example in enumerate(examples):
      yield i, {'text': example.text, 'label': example.label}


# Intent classification (issue 5).

BANKING77_DEV_FRACTION = 0.1
# Fixed, not the run's --seed: the held-out dev set is part of the data set, the same in every run. Prepared
# TFRecords are keyed by the source files only, so a change here must bump `LmfBanking77.VERSION`.
BANKING77_DEV_SEED = 0
INTENT_EMBEDDINGS = os.path.join('glove', 'glove.6B.50d.intent.txt')
_JSON_SPACE = re.compile(r'[ \t\r\n]*')


@dataclasses.dataclass(frozen=True)
class LabelledText:
  """An utterance with its label name as read, and the file and line it came from (for error messages)."""
  text: str
  label: str
  path: str
  lineno: int


@dataclasses.dataclass(frozen=True)
class LabelledSplits:
  """A data set read from its files: `splits` maps 'train', 'validation', 'test' to lists of `Example`, whose
  labels index `class_names`."""
  splits: dict
  class_names: tuple


def _require_file(path, what):
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{what} {path} is missing')


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
  _require_file(path, 'label file')
  text = ''.join(line for _, line in io_utils.numbered_lines(path))
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise DataFormatError(f'{path}:{e.lineno}: invalid JSON ({e.msg})') from None
  groups = value.values() if isinstance(value, dict) else [value]
  if not all(isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups):
    raise DataFormatError(f'{path}: expected a JSON list of label names (or an object of such lists)')
  names = [n for g in groups for n in g]
  repeated = sorted(n for n, c in collections.Counter(names).items() if c > 1)
  if repeated or not all(n.strip() for n in names):
    raise DataFormatError(f'{path}: label names must be non-empty and unique (repeated: {repeated})')
  return names


def read_clinc_json(path):
  """Reads CLINC150's `data_full.json`, `{split: [[utterance, intent], ...], ...}`.

  Returns:
    dict from split name (`train`, `val`, `test`, `oos_train`, ...) to a list of `LabelledText`, whose line is
    where the pair starts.
  Raises:
    DataFormatError: naming `path:line` for invalid JSON, an element that is not a pair of strings, or an empty
      utterance.
  """
  _require_file(path, 'data file')
  text = ''.join(line for _, line in io_utils.numbered_lines(path))
  line_starts = [0] + [m.end() for m in re.finditer('\n', text)]
  decoder = json.JSONDecoder()

  def line_at(pos):
    return bisect.bisect_right(line_starts, pos)

  def skip(pos):
    return _JSON_SPACE.match(text, pos).end()

  def expect(pos, chars, what):
    pos = skip(pos)
    if pos >= len(text) or text[pos] not in chars:
      raise DataFormatError(f'{path}:{line_at(pos)}: expected {what}')
    return pos + 1, text[pos]

  def value(pos):
    try:
      return decoder.raw_decode(text, pos)
    except json.JSONDecodeError as e:
      raise DataFormatError(f'{path}:{e.lineno}: invalid JSON ({e.msg})') from None

  splits = {}
  pos, _ = expect(0, '{', 'a JSON object of splits')
  close = '}' if text.startswith('}', skip(pos)) else ','
  pos = skip(pos) + 1 if close == '}' else pos
  while close == ',':
    start = skip(pos)
    key, pos = value(start)
    if not isinstance(key, str):
      raise DataFormatError(f'{path}:{line_at(start)}: expected a split name')
    pos, _ = expect(pos, ':', '":"')
    pos, _ = expect(pos, '[', f'a list of [utterance, intent] pairs for split {key!r}')
    rows = splits[key] = []
    sep = ']' if text.startswith(']', skip(pos)) else ','
    pos = skip(pos) + 1 if sep == ']' else pos
    while sep == ',':
      start = skip(pos)
      pair, pos = value(start)
      lineno = line_at(start)
      if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
        raise DataFormatError(f'{path}:{lineno}: expected an [utterance, intent] pair of strings in split '
                              f'{key!r}, found {json.dumps(pair)[:80]}')
      if not _normalise(pair[0]):
        raise DataFormatError(f'{path}:{lineno}: empty utterance')
      rows.append(LabelledText(_normalise(pair[0]), pair[1].strip(), path, lineno))
      pos, sep = expect(pos, ',]', '"," or "]"')
    pos, close = expect(pos, ',}', '"," or "}"')
  if skip(pos) != len(text):
    raise DataFormatError(f'{path}:{line_at(skip(pos))}: text after the JSON object')
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
    rows.append(LabelledText(_normalise(text), label.strip(), label_path, lineno))
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
    rows.append(LabelledText(text, label, path, lineno))
  return rows


def _examples(rows, class_names, label_file):
  """`LabelledText`s -> `Example`s with label ids; a label not in `class_names` raises DataFormatError at its line."""
  ids = {name: i for i, name in enumerate(class_names)}
  examples = []
  for row in rows:
    if row.label not in ids:
      raise DataFormatError(f'{row.path}:{row.lineno}: label {row.label!r} is not one of the {len(ids)} labels '
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


def clinc150_splits(source_dir, config='in_scope'):
  """CLINC150 from `clinc150/data_full.json`, classes from `clinc150/domains.json` (sorted; + `oos` last for the
  `with_oos` config). Returns `LabelledSplits`."""
  local_config('clinc150', config)  # raises ConfigError for another config
  folder = os.path.join(source_dir, 'clinc150')
  domains_path, data_path = os.path.join(folder, 'domains.json'), os.path.join(folder, 'data_full.json')
  class_names = tuple(sorted(read_label_list(domains_path)))
  keys = {'train': ['train'], 'validation': ['val'], 'test': ['test']}
  if config == 'with_oos':
    class_names += ('oos',)
    keys = {split: names + ['oos_' + names[0]] for split, names in keys.items()}
  rows = read_clinc_json(data_path)
  splits = {}
  for split, names in keys.items():
    missing = [key for key in names if key not in rows]
    if missing:
      raise DataFormatError(f'{data_path}: no {missing[0]!r} split (it has {", ".join(rows)})')
    splits[split] = _examples([r for key in names for r in rows[key]], class_names, domains_path)
  return LabelledSplits(splits, class_names)


def _seq_label_splits(source_dir, folder):
  """SNIPS/ATIS: `<folder>/{train,valid,test}/{seq.in,label}`; classes are the sorted labels of all splits."""
  rows = {split: read_line_aligned(os.path.join(source_dir, folder, name, 'seq.in'),
                                   os.path.join(source_dir, folder, name, 'label'))
          for split, name in (('train', 'train'), ('validation', 'valid'), ('test', 'test'))}
  class_names = tuple(sorted({r.label for split_rows in rows.values() for r in split_rows}))
  return LabelledSplits({split: _examples(r, class_names, 'all splits') for split, r in rows.items()}, class_names)


def snips_splits(source_dir, config='plain'):
  """SNIPS (Goo et al. 2018 split) from `snips/`. Returns `LabelledSplits`."""
  local_config('snips', config)  # raises ConfigError for another config
  return _seq_label_splits(source_dir, 'snips')


def atis_splits(source_dir, config='plain'):
  """ATIS (Goo et al. 2018 split) from `atis/`; `labels_unseen_in_train` gives the test labels the model never
  sees in training. Returns `LabelledSplits`."""
  local_config('atis', config)  # raises ConfigError for another config
  return _seq_label_splits(source_dir, 'atis')


def banking77_splits(source_dir, config='plain'):
  """Banking77 from `banking77/`; validation is `stratified_holdout(train, BANKING77_DEV_FRACTION,
  BANKING77_DEV_SEED)`. Returns `LabelledSplits`."""
  local_config('banking77', config)  # raises ConfigError for another config
  folder = os.path.join(source_dir, 'banking77')
  categories = os.path.join(folder, 'categories.json')
  class_names = tuple(read_label_list(categories))
  train = _examples(read_labelled_csv(os.path.join(folder, 'train.csv')), class_names, categories)
  test = _examples(read_labelled_csv(os.path.join(folder, 'test.csv')), class_names, categories)
  train, validation = stratified_holdout(train, BANKING77_DEV_FRACTION, BANKING77_DEV_SEED)
  return LabelledSplits({'train': train, 'validation': validation, 'test': test}, class_names)


class _LocalIntentBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """An intent data set from vendored local files (no download); subclasses set `read_splits`, `DESCRIPTION`,
  `CITATION` and, if they have more than one, `BUILDER_CONFIGS`.

  The builder's `info.metadata['test_labels_unseen_in_train']` records `labels_unseen_in_train`.
  """

  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='plain', description='the train, dev and test splits')]
  read_splits = None  # (source_dir, config name) -> LabelledSplits
  DESCRIPTION = ''
  CITATION = ''

  def __init__(self, *, source_dir=DATA_DIR, **kwargs):
    self._source_dir = source_dir
    self._data = None
    super().__init__(**kwargs)

  def _labelled_splits(self):
    if self._data is None:
      self._data = type(self).read_splits(self._source_dir, self.builder_config.name)
    return self._data

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.DESCRIPTION,
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'label': tfds.features.ClassLabel(names=list(self._labelled_splits().class_names)),
        }),
        supervised_keys=('text', 'label'),
        citation=self.CITATION,
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing is downloaded.
    data = self._labelled_splits()
    self.info.metadata['test_labels_unseen_in_train'] = labels_unseen_in_train(data)
    return {name: self._generate_examples(examples) for name, examples in data.splits.items()}

  def _generate_examples(self, examples):
    for i, example in enumerate(examples):
      yield i, {'text': example.text, 'label': example.label}


class LmfClinc150(_LocalIntentBuilder):
  """CLINC150 from the vendored `data_full.json`. Configs: `in_scope` (default, 150 intents) and `with_oos`."""

  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(name='in_scope', description='150 in-scope intents, 15,000 / 3,000 / 4,500'),
      tfds.core.BuilderConfig(name='with_oos', description='plus out-of-scope as a 151st class, '
                              '15,100 / 3,100 / 5,500'),
  ]
  read_splits = staticmethod(clinc150_splits)
  DESCRIPTION = 'CLINC150 intent classification (oos-eval data_full), from local files.'
  CITATION = 'Larson et al. 2019, An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction.'


class LmfSnips(_LocalIntentBuilder):
  """SNIPS (Goo et al. 2018 split) from the vendored files. Config: `plain`."""

  read_splits = staticmethod(snips_splits)
  DESCRIPTION = 'SNIPS intent classification (7 intents), from local files.'
  CITATION = 'Coucke et al. 2018; split of Goo et al. 2018.'


class LmfAtis(_LocalIntentBuilder):
  """ATIS (Goo et al. 2018 split) from the vendored files. Config: `plain`."""

  read_splits = staticmethod(atis_splits)
  DESCRIPTION = 'ATIS intent classification (multi-intent labels are classes of their own), from local files.'
  CITATION = 'Hemphill et al. 1990; split of Goo et al. 2018.'


class LmfBanking77(_LocalIntentBuilder):
  """Banking77 from the vendored csv files, with a stratified 10% of train held out as dev. Config: `plain`."""

  read_splits = staticmethod(banking77_splits)
  DESCRIPTION = 'Banking77 intent classification, from local files; dev = stratified 10% of train (seed 0).'
  CITATION = 'Casanueva et al. 2020, Efficient Intent Detection with Dual Sentence Encoders.'


def _source_files(folder, *names):
  """A `DatasetSpec.source_files` for a data set whose files are the same in every config."""
  return lambda source_dir, config: [os.path.join(source_dir, folder, name) for name in names]


_SEQ_LABEL_FILES = [f'{split}/{name}' for split in ('train', 'valid', 'test') for name in ('seq.in', 'label')]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to build one local data set: its TFDS builder class and the source files it reads."""
  builder_cls: type
  source_files: object  # (source_dir, config name) -> list of paths
  num_classes: int  # in the default config
  default_embeddings: str  # relative to the data folder

  @property
  def configs(self):
    """The builder config names (`--train_level` values); the first is the default."""
    return tuple(config.name for config in self.builder_cls.BUILDER_CONFIGS)


LOCAL_DATASETS = {
    'sst2': DatasetSpec(LmfSst2, sst2_source_files, 2, os.path.join('glove', 'glove.6B.50d.sst2.txt')),
    'clinc150': DatasetSpec(LmfClinc150, _source_files('clinc150', 'data_full.json', 'domains.json'), 150,
                            INTENT_EMBEDDINGS),  # 151 with --train_level=with_oos
    'snips': DatasetSpec(LmfSnips, _source_files('snips', *_SEQ_LABEL_FILES), 7, INTENT_EMBEDDINGS),
    'atis': DatasetSpec(LmfAtis, _source_files('atis', *_SEQ_LABEL_FILES), 26, INTENT_EMBEDDINGS),
    'banking77': DatasetSpec(LmfBanking77, _source_files('banking77', 'train.csv', 'test.csv', 'categories.json'),
                             77, INTENT_EMBEDDINGS),
}


def local_config(name, train_level=None):
  """The builder config of local data set `name` that `--train_level` selects; None selects the default.

  >>> local_config('clinc150'), local_config('sst2', 'sentence')
  ('in_scope', 'sentence')

  Raises:
    ConfigError: naming the valid configs of `name` if `train_level` is not one of them.
  """
  configs = LOCAL_DATASETS[name].configs
  if train_level is None:
    return configs[0]
  if train_level not in configs:
    raise ConfigError(f'--train_level={train_level!r} is not a config of --dataset={name}; choose one of '
                      f'{", ".join(configs)} (default {configs[0]})')
  return train_level


def _local_builder(name, train_level, source_dir, tfds_dir):
  spec = LOCAL_DATASETS[name]
  train_level = local_config(name, train_level)
  files = spec.source_files(source_dir, train_level)
  for path in files:
    if not os.path.exists(path):
      raise FileNotFoundError(f'data file {path} for --dataset={name} is missing')
  # The prepared TFRecords live under a digest of the source files, so an edited file is never served stale.
  data_dir = os.path.join(tfds_dir, io_utils.files_digest(files))
  builder = spec.builder_cls(source_dir=source_dir, config=train_level, data_dir=data_dir)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  return builder


@dataclasses.dataclass
class TextSplits:
  """Splits as `tf.data.Dataset`s of `(text: tf.string[], label: tf.int64[])` pairs."""
  train: tf.data.Dataset
  validation: tf.data.Dataset
  test: tf.data.Dataset
  num_classes: int
  name: str


def load_splits(name, train_level=None, source_dir=DATA_DIR, tfds_dir=DEFAULT_TFDS_DIR,
                text_key='sentence', label_key='label', split_names=('train', 'validation', 'test')):
  """Loads a data set by name through tensorflow-datasets.

  Args:
    name: a local data set (a key of `LOCAL_DATASETS`: sst2, clinc150, snips, atis, banking77) or a TFDS catalog
      name (e.g. `glue/sst2`, needs a network the first time).
    train_level: for a local data set, its builder config (`local_config`; None: the default), e.g. `phrase` or
      `sentence` for sst2, `in_scope` or `with_oos` for clinc150. Ignored for catalog data sets.
    source_dir: where the vendored files live (`data/`).
    tfds_dir: where TFDS keeps prepared data.
    text_key, label_key, split_names: for catalog data sets, which features and splits to use
      (train, dev, test). A catalog test split without labels (GLUE) must be replaced by a labelled split.

  Raises:
    ConfigError: for a name that is neither local nor in the TFDS catalog, or a config that the local data set
      does not have.
  """
  if name in LOCAL_DATASETS:
    builder = _local_builder(name, train_level, source_dir, tfds_dir)
    text_key, label_key, split_names = 'text', 'label', ('train', 'validation', 'test')
    unseen = (builder.info.metadata or {}).get('test_labels_unseen_in_train')
    if unseen is not None:
      logging.info('%s: %d of %d test examples have a label that no training example has%s.', builder.info.full_name,
                   sum(unseen.values()), builder.info.splits['test'].num_examples,
                   f' ({", ".join(f"{k} {v}" for k, v in unseen.items())}); the model cannot predict it, so they '
                   'count as errors' if unseen else '')
  else:
    try:
      builder = tfds.builder(name, data_dir=tfds_dir)
    except Exception as e:  # TFDS raises its own DatasetNotFoundError and friends.
      raise ConfigError(
          f'--dataset={name!r} is neither a local data set ({", ".join(sorted(LOCAL_DATASETS))}) nor a '
          f'tensorflow-datasets catalog name ({type(e).__name__}: {str(e).splitlines()[0]})') from None
    builder.download_and_prepare()
  label_feature = builder.info.features[label_key]
  datasets = [
      builder.as_dataset(split=split, shuffle_files=False).map(
          lambda ex: (ex[text_key], tf.cast(ex[label_key], tf.int64)))
      for split in split_names
  ]
  return TextSplits(*datasets, num_classes=label_feature.num_classes, name=name)
