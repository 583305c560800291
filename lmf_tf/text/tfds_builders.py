"""The local data sets as offline tensorflow-datasets builders, and `load_splits`, which serves any data set by name.

Every data set is served through tensorflow-datasets (TFDS). The vendored files under `data/` are read by
local-file `GeneratorBasedBuilder`s that work without a network; `load_splits` also accepts a TFDS catalog name
(e.g. `glue/sst2`) for users who are online. The prepared TFRecords live under a digest of the source files.
"""

import contextlib
import dataclasses
import io
import os

import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError
from lmf_tf.text import local_splits
from lmf_tf.text.catalog import DATA_DIR, DEFAULT_TFDS_DIR, LOCAL_DATASETS, local_config
from lmf_tf.text.readers import labels_unseen_in_train


def _builder_configs(name):
  return [tfds.core.BuilderConfig(name=config, description=description)
          for config, description in LOCAL_DATASETS[name].configs.items()]


class LmfSst2(tfds.core.GeneratorBasedBuilder):
  """SST-2 from the vendored local files (no download). Configs: `phrase` (default) and `sentence`."""

  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = _builder_configs('sst2')

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
    splits = local_splits.sst2_splits(self._source_dir, self.builder_config.name)
    return {name: self._generate_examples(examples) for name, examples in splits.items()}

  def _generate_examples(self, examples):
    for i, example in enumerate(examples):
      yield i, {'text': example.text, 'label': example.label}


class _LocalIntentBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """An intent data set from vendored local files (no download); subclasses set `read_splits`, `DESCRIPTION`,
  `CITATION` and, if they have more than one, `BUILDER_CONFIGS`.

  The builder's `info.metadata['test_labels_unseen_in_train']` records `labels_unseen_in_train`.
  """

  VERSION = tfds.core.Version('1.0.0')
  BUILDER_CONFIGS = _builder_configs('snips')  # every intent set but CLINC150 has only this `plain` config
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

  BUILDER_CONFIGS = _builder_configs('clinc150')
  read_splits = staticmethod(local_splits.clinc150_splits)
  DESCRIPTION = 'CLINC150 intent classification (oos-eval data_full), from local files.'
  CITATION = 'Larson et al. 2019, An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction.'


class LmfSnips(_LocalIntentBuilder):
  """SNIPS (Goo et al. 2018 split) from the vendored files. Config: `plain`."""

  read_splits = staticmethod(local_splits.snips_splits)
  DESCRIPTION = 'SNIPS intent classification (7 intents), from local files.'
  CITATION = 'Coucke et al. 2018; split of Goo et al. 2018.'


class LmfAtis(_LocalIntentBuilder):
  """ATIS (Goo et al. 2018 split) from the vendored files. Config: `plain`."""

  read_splits = staticmethod(local_splits.atis_splits)
  DESCRIPTION = 'ATIS intent classification (multi-intent labels are classes of their own), from local files.'
  CITATION = 'Hemphill et al. 1990; split of Goo et al. 2018.'


class LmfBanking77(_LocalIntentBuilder):
  """Banking77 from the vendored csv files, with a stratified 10% of train held out as dev. Config: `plain`."""

  read_splits = staticmethod(local_splits.banking77_splits)
  DESCRIPTION = 'Banking77 intent classification, from local files; dev = stratified 10% of train (seed 0).'
  CITATION = 'Casanueva et al. 2020, Efficient Intent Detection with Dual Sentence Encoders.'


BUILDERS = {'sst2': LmfSst2, 'clinc150': LmfClinc150, 'snips': LmfSnips, 'atis': LmfAtis, 'banking77': LmfBanking77}


def _local_builder(name, train_level, source_dir, tfds_dir):
  spec = LOCAL_DATASETS[name]
  builder_cls = BUILDERS[name]
  train_level = local_config(name, train_level)
  files = spec.source_files(source_dir, train_level)
  for path in files:
    if not os.path.exists(path):
      raise FileNotFoundError(f'data file {path} for --dataset={name} is missing')
  # The prepared TFRecords live under a digest of the source files, so an edited file is never served stale.
  data_dir = os.path.join(tfds_dir, io_utils.files_digest(files))
  # Two runs started together (make -j2) on a fresh clone would both prepare the same files and collide.
  with io_utils.exclusive(os.path.join(data_dir, '.prepare.lock')):
    builder = builder_cls(source_dir=source_dir, config=train_level, data_dir=data_dir)
    if not builder.is_prepared():
      logging.info('Preparing %s (%s) from %s: once, into %s.', name, train_level, source_dir, data_dir)
    # TFDS prints "Downloading and preparing ..." (nothing is downloaded) and progress bars: not for our output.
    tfds.disable_progress_bar()
    with contextlib.redirect_stdout(io.StringIO()):
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
