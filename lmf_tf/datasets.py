"""Text-classification data sets: file readers, offline tensorflow-datasets builders and a registry.

Every data set is served through tensorflow-datasets (TFDS). The vendored files under `data/` are read by
local-file `GeneratorBasedBuilder`s that work without a network; `load_splits` also accepts a TFDS catalog name
(e.g. `glue/sst2`) for users who are online.

SST-2 (Socher et al. 2013), as in Acharya et al. 2019, §5.1:
  * `sst2` trains on the GLUE phrase-level training set (67,349 phrases, the authors' own setup), cleaned the same
    way as the sentence files (Kim 2014, see `clean_sst_text`), minus every phrase identical to a dev or test
    sentence. Dev (872) and test (1,821) are the sentence-level sets.
  * `--train_level=sentence` trains on the 6,920 training sentences only.
"""

import dataclasses
import os
import re

import tensorflow as tf
import tensorflow_datasets as tfds

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


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How to build one local data set: its TFDS builder class and the source files it reads."""
  builder_cls: type
  source_files: object  # (source_dir, train_level) -> list of paths
  num_classes: int
  default_embeddings: str  # relative to the data folder


LOCAL_DATASETS = {
    'sst2': DatasetSpec(LmfSst2, sst2_source_files, 2, os.path.join('glove', 'glove.6B.50d.sst2.txt')),
}


def _local_builder(name, train_level, source_dir, tfds_dir):
  spec = LOCAL_DATASETS[name]
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


def load_splits(name, train_level='phrase', source_dir=DATA_DIR, tfds_dir=DEFAULT_TFDS_DIR,
                text_key='sentence', label_key='label', split_names=('train', 'validation', 'test')):
  """Loads a data set by name through tensorflow-datasets.

  Args:
    name: a local data set (`sst2`) or a TFDS catalog name (e.g. `glue/sst2`, needs a network the first time).
    train_level: for `sst2`, `phrase` or `sentence`.
    source_dir: where the vendored files live (`data/`).
    tfds_dir: where TFDS keeps prepared data.
    text_key, label_key, split_names: for catalog data sets, which features and splits to use
      (train, dev, test). A catalog test split without labels (GLUE) must be replaced by a labelled split.

  Raises:
    ConfigError: for a name that is neither local nor in the TFDS catalog.
  """
  if name in LOCAL_DATASETS:
    builder = _local_builder(name, train_level, source_dir, tfds_dir)
    text_key, label_key, split_names = 'text', 'label', ('train', 'validation', 'test')
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
