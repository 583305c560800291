"""The four intent data sets on the real vendored files, their configs, and bad input."""

import collections
import shutil

import pytest

from lmf_tf.text import catalog
from lmf_tf.text import readers
from lmf_tf.text import local_splits
from lmf_tf.text import tfds_builders
from lmf_tf.text.config import TrainConfig
from lmf_tf.errors import ConfigError, DataFormatError


@pytest.fixture(scope='module')
def data_dir(repo_root):
  return f'{repo_root}/data'


def sizes(data):
  return {split: len(examples) for split, examples in data.splits.items()}


def label_counts(data, split):
  return collections.Counter(data.class_names[e.label] for e in data.splits[split])


def test_clinc150_in_scope_and_with_oos(data_dir):
  in_scope = local_splits.clinc150_splits(data_dir)
  assert sizes(in_scope) == {'train': 15_000, 'validation': 3_000, 'test': 4_500}
  assert len(in_scope.class_names) == 150 and list(in_scope.class_names) == sorted(in_scope.class_names)
  for split, per_intent in (('train', 100), ('validation', 20), ('test', 30)):
    assert set(label_counts(in_scope, split).values()) == {per_intent}
  with_oos = local_splits.clinc150_splits(data_dir, 'with_oos')
  assert sizes(with_oos) == {'train': 15_100, 'validation': 3_100, 'test': 5_500}
  assert with_oos.class_names == in_scope.class_names + ('oos',)  # in-scope ids are the same in both configs
  assert label_counts(with_oos, 'test')['oos'] == 1_000
  assert with_oos.splits['test'][:4_500] == in_scope.splits['test']


def test_snips(data_dir):
  snips = local_splits.snips_splits(data_dir)
  assert sizes(snips) == {'train': 13_084, 'validation': 700, 'test': 700}
  assert len(snips.class_names) == 7
  assert label_counts(snips, 'test') == {'AddToPlaylist': 124, 'SearchScreeningEvent': 107, 'SearchCreativeWork': 107,
                                         'GetWeather': 104, 'BookRestaurant': 92, 'PlayMusic': 86, 'RateBook': 80}
  assert not any(e.text != e.text.strip() for e in snips.splits['train'])  # trailing spaces are dropped
  assert readers.labels_unseen_in_train(snips) == {}


def test_atis_keeps_test_labels_unseen_in_training(data_dir):
  atis = local_splits.atis_splits(data_dir)
  assert sizes(atis) == {'train': 4_478, 'validation': 500, 'test': 893}
  # 21 train labels, plus 1 dev-only and 4 test-only: the union of all splits, multi-intent labels included.
  assert len(atis.class_names) == 26 and 'atis_flight#atis_airfare' in atis.class_names
  assert len(label_counts(atis, 'train')) == 21
  unseen = readers.labels_unseen_in_train(atis)
  assert unseen == {'atis_airfare#atis_flight': 1, 'atis_day_name': 2, 'atis_flight#atis_airline': 1,
                    'atis_flight_no#atis_airline': 1}
  assert sum(unseen.values()) == 5  # in the test set, counted as errors: never dropped


def test_banking77_holds_out_a_stratified_tenth_of_train_the_same_every_time(data_dir):
  banking = local_splits.banking77_splits(data_dir)
  assert sizes(banking) == {'train': 9_003, 'validation': 1_000, 'test': 3_080}
  assert len(banking.class_names) == 77
  assert set(label_counts(banking, 'test').values()) == {40}
  train, dev = label_counts(banking, 'train'), label_counts(banking, 'validation')
  assert set(dev) == set(train) == set(banking.class_names)
  assert all(abs(dev[c] - 0.1 * (train[c] + dev[c])) < 1 for c in train)  # stratified, to within one example
  assert min(train[c] + dev[c] for c in train) == 35 and max(train[c] + dev[c] for c in train) == 187
  again = local_splits.banking77_splits(data_dir)
  assert again.splits == banking.splits  # fixed seed: the same held-out examples on every call
  dev_texts = collections.Counter((e.text, e.label) for e in banking.splits['validation'])
  train_texts = collections.Counter((e.text, e.label) for e in banking.splits['train'])
  assert sum((dev_texts + train_texts).values()) == 10_003


def test_atis_through_tfds_logs_unseen_test_labels(data_dir, tmp_path, monkeypatch):
  # absl logging may not reach pytest's caplog once another test has run an absl app: record the calls instead.
  messages = []
  monkeypatch.setattr(tfds_builders.logging, 'info', lambda fmt, *args: messages.append(fmt % args))
  for _ in range(2):  # prepared, then served from the prepared files: the count is logged both times
    messages.clear()
    splits = tfds_builders.load_splits('atis', source_dir=data_dir, tfds_dir=str(tmp_path))
    assert any('5 of 893 test examples have a label that no training example has' in m for m in messages)
  assert splits.num_classes == 26
  assert [int(s.cardinality()) for s in (splits.train, splits.validation, splits.test)] == [4_478, 500, 893]


def test_each_data_set_has_its_own_configs(data_dir, tmp_path):
  assert {name: tuple(spec.configs) for name, spec in catalog.LOCAL_DATASETS.items()} == {
      'sst2': ('phrase', 'sentence'), 'clinc150': ('in_scope', 'with_oos'), 'snips': ('plain',),
      'atis': ('plain',), 'banking77': ('plain',)}
  with pytest.raises(ConfigError, match=r"--train_level='sentence' is not a config of --dataset=clinc150; "
                                        r'choose one of in_scope, with_oos \(default in_scope\)'):
    tfds_builders.load_splits('clinc150', 'sentence', source_dir=data_dir, tfds_dir=str(tmp_path))
  assert TrainConfig(dataset='clinc150').resolved().train_level == 'in_scope'
  assert TrainConfig().resolved().train_level == 'phrase'
  assert TrainConfig(dataset='clinc150', train_level='with_oos').validate().train_level == 'with_oos'
  with pytest.raises(ConfigError, match='choose one of plain'):
    TrainConfig(dataset='atis', train_level='phrase').validate()


@pytest.fixture
def copy_of(data_dir, tmp_path):
  """copy_of('snips') -> a copy of data/snips under tmp_path/data; returns the copy's folder."""
  def copy(name):
    return shutil.copytree(f'{data_dir}/{name}', tmp_path / 'data' / name)
  return copy


def edit_lines(path, lineno, new_line=None, insert=False):
  lines = path.read_text(encoding='utf-8').split('\n')
  if insert:
    lines.insert(lineno - 1, new_line)
  elif new_line is None:
    del lines[lineno - 1]
  else:
    lines[lineno - 1] = new_line
  path.write_text('\n'.join(lines), encoding='utf-8')


def test_snips_atis_bad_lines_name_file_and_line(copy_of):
  folder = copy_of('snips')
  edit_lines(folder / 'train' / 'seq.in', 3, '   ')
  with pytest.raises(DataFormatError, match=r'snips/train/seq\.in:3: empty utterance'):
    local_splits.snips_splits(str(folder.parent))
  folder = copy_of('atis')
  edit_lines(folder / 'valid' / 'label', 500)  # one label short
  with pytest.raises(DataFormatError, match=r'atis/valid/seq\.in:500: no matching line in \S+atis/valid/label, '
                                            r'which has 499 lines'):
    local_splits.atis_splits(str(folder.parent))
  (folder / 'valid' / 'label').unlink()
  with pytest.raises(FileNotFoundError, match=r'label file \S+atis/valid/label is missing'):
    local_splits.atis_splits(str(folder.parent))


def test_banking77_bad_lines_name_file_and_line(copy_of):
  folder = copy_of('banking77')
  root = str(folder.parent)
  edit_lines(folder / 'train.csv', 3, 'Where is my card?,card_arrival,extra', insert=True)
  with pytest.raises(DataFormatError, match=r'banking77/train\.csv:3: expected 2 comma-separated fields'):
    local_splits.banking77_splits(root)
  edit_lines(folder / 'train.csv', 3, 'Where is my card?,card_arival')
  with pytest.raises(DataFormatError, match=r"banking77/train\.csv:3: label 'card_arival' is not one of the 77 "
                                            r'labels of \S+banking77/categories\.json'):
    local_splits.banking77_splits(root)
  edit_lines(folder / 'train.csv', 3, '" ",card_arrival')
  with pytest.raises(DataFormatError, match=r'banking77/train\.csv:3: empty utterance'):
    local_splits.banking77_splits(root)
  edit_lines(folder / 'train.csv', 3)
  (folder / 'categories.json').unlink()
  with pytest.raises(FileNotFoundError, match=r'label file \S+banking77/categories\.json is missing'):
    local_splits.banking77_splits(root)


def test_clinc150_bad_pairs_name_file_and_split_item_or_line(copy_of):
  folder = copy_of('clinc150')
  path = folder / 'data_full.json'
  lines = path.read_text(encoding='utf-8').split('\n')
  pair = lines.index('    "val": [') + 2  # the line of the first validation pair's "[" (1-based)
  assert lines[pair - 1].strip() == '[' and lines[pair + 1].strip().startswith('"')
  good_label = lines[pair + 1]
  edit_lines(path, pair + 2, '            "no_such_intent"')
  with pytest.raises(DataFormatError, match=r"data_full\.json: split 'val', item 1: label 'no_such_intent' is not one of the "
                                            r'150 labels of \S+clinc150/domains\.json'):
    local_splits.clinc150_splits(str(folder.parent))
  edit_lines(path, pair + 2, good_label + ', "extra"')
  with pytest.raises(DataFormatError, match=r"data_full\.json: split 'val', item 1: expected an \[utterance, intent\] pair"):
    local_splits.clinc150_splits(str(folder.parent))
  edit_lines(path, pair + 2, good_label)
  edit_lines(path, pair + 1, lines[pair].rstrip().rstrip(','))  # the comma after the utterance is missing
  with pytest.raises(DataFormatError, match=rf"data_full\.json:{pair + 2}: invalid JSON \(Expecting ',' delimiter\)"):
    local_splits.clinc150_splits(str(folder.parent))


def test_run_names_keep_configs_apart():
  assert TrainConfig(dataset='clinc150', model='lstm', reduction=90).resolved().run_name == 'clinc150_lstm_R90_seed1'
  assert (TrainConfig(dataset='clinc150', model='lstm', reduction=90, train_level='with_oos').resolved().run_name
          == 'clinc150-with_oos_lstm_R90_seed1')
  assert TrainConfig(model='dan').resolved().run_name == 'sst2_dan_R0_seed1'
  assert TrainConfig(model='dan', train_level='sentence').run_name == 'sst2-sentence_dan_R0_seed1'
