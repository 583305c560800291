"""The text-classification data sets by name: which files, configs, classes and embeddings each has.

This registry imports no TensorFlow, so configs and experiment plans can name data sets without loading it;
`readers` parses the files, `splits` assembles each set's splits and `tfds_builders` serves them through
tensorflow-datasets.

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

Intent classification. Each set's default embeddings are `glove/glove.6B.50d.intent.txt`; the share of
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

import dataclasses
import os

from lmf_tf.errors import ConfigError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.path.join(REPO_ROOT, 'data')
DEFAULT_TFDS_DIR = os.path.join(REPO_ROOT, '.tfds')
INTENT_EMBEDDINGS = os.path.join('glove', 'glove.6B.50d.intent.txt')


def sst2_source_files(source_dir, train_level):
  files = [os.path.join(source_dir, 'sst2', f'{s}.tsv') for s in ('train', 'dev', 'test')]
  if train_level == 'phrase':
    files += [os.path.join(source_dir, 'sst2_glue_phrases', f'{s}.tsv') for s in ('train', 'dev')]
  return files


def _source_files(folder, *names):
  """A `DatasetSpec.source_files` for a data set whose files are the same in every config."""
  return lambda source_dir, config: [os.path.join(source_dir, folder, name) for name in names]


_SEQ_LABEL_FILES = [f'{split}/{name}' for split in ('train', 'valid', 'test') for name in ('seq.in', 'label')]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One local data set: its builder configs (`--train_level` values, the default first, each with a description),
  the source files it reads, its classes and default word vectors."""
  configs: dict  # config name -> description; the first is the default
  source_files: object  # (source_dir, config name) -> list of paths
  num_classes: int  # in the default config
  default_embeddings: str  # relative to the data folder


PLAIN = {'plain': 'the train, dev and test splits'}
LOCAL_DATASETS = {
    'sst2': DatasetSpec({'phrase': 'GLUE phrase-level train, sentence-level dev/test',
                         'sentence': 'sentence-level train/dev/test (6,920/872/1,821)'},
                        sst2_source_files, 2, os.path.join('glove', 'glove.6B.50d.sst2.txt')),
    'clinc150': DatasetSpec({'in_scope': '150 in-scope intents, 15,000 / 3,000 / 4,500',
                             'with_oos': 'plus out-of-scope as a 151st class, 15,100 / 3,100 / 5,500'},
                            _source_files('clinc150', 'data_full.json', 'domains.json'), 150,
                            INTENT_EMBEDDINGS),  # 151 with --train_level=with_oos
    'snips': DatasetSpec(PLAIN, _source_files('snips', *_SEQ_LABEL_FILES), 7, INTENT_EMBEDDINGS),
    'atis': DatasetSpec(PLAIN, _source_files('atis', *_SEQ_LABEL_FILES), 26, INTENT_EMBEDDINGS),
    'banking77': DatasetSpec(PLAIN, _source_files('banking77', 'train.csv', 'test.csv', 'categories.json'), 77,
                             INTENT_EMBEDDINGS),
}


def local_config(name, train_level=None):
  """The builder config of local data set `name` that `--train_level` selects; None selects the default.

  >>> local_config('clinc150'), local_config('sst2', 'sentence')
  ('in_scope', 'sentence')

  Raises:
    ConfigError: naming the valid configs of `name` if `train_level` is not one of them.
  """
  configs = tuple(LOCAL_DATASETS[name].configs)
  if train_level is None:
    return configs[0]
  if train_level not in configs:
    raise ConfigError(f'--train_level={train_level!r} is not a config of --dataset={name}; choose one of '
                      f'{", ".join(configs)} (default {configs[0]})')
  return train_level
