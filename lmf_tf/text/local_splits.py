"""Each local data set's train, dev and test splits, assembled from its files (`readers`); see `catalog` for
what each set is and how it is split."""

import os

from lmf_tf.errors import ConfigError, DataFormatError
from lmf_tf.text.catalog import local_config
from lmf_tf.text.readers import (LabelledSplits, _examples, clean_sst_text, read_clinc_json, read_label_list,
                                 read_labelled_csv, read_labelled_tsv, read_line_aligned, stratified_holdout)

BANKING77_DEV_FRACTION = 0.1
# Fixed, not the run's --seed: the held-out dev set is part of the data set, the same in every run. Prepared
# TFRecords are keyed by the source files only, so a change here must bump `LmfBanking77.VERSION`.
BANKING77_DEV_SEED = 0

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
