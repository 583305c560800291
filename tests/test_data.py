import numpy as np
import pytest
import tensorflow as tf

from lmf_tf.text import catalog, input_pipeline
from lmf_tf.text import readers
from lmf_tf.text import local_splits
from lmf_tf.text import tfds_builders
from lmf_tf.text import word_vectors
from lmf_tf.errors import ConfigError, DataFormatError


def test_clean_matches_the_sentence_files():
  assert readers.clean_sst_text("The naïf 's -- ( funny ) film . ") == "the na f 's lrb funny rrb film"
  assert readers.clean_sst_text('re-imagining of "beauty" ') == 're imagining of beauty'


def test_real_sst2_split_sizes(repo_root):
  splits = local_splits.sst2_splits(f'{repo_root}/data', 'sentence')
  assert {k: len(v) for k, v in splits.items()} == {'train': 6920, 'validation': 872, 'test': 1821}
  assert sum(e.label for e in splits['test']) == 909
  phrases = local_splits.sst2_splits(f'{repo_root}/data', 'phrase')
  held_out = {e.text for e in splits['validation']} | {e.text for e in splits['test']}
  # 67,349 GLUE training phrases, minus those identical to a dev or test sentence.
  assert 67_300 < len(phrases['train']) < 67_349
  assert not held_out & {e.text for e in phrases['train']}
  # Cleaned phrases use the sentence files' tokens: almost every training sentence is among them.
  train_phrases = {e.text for e in phrases['train']}
  assert sum(e.text in train_phrases for e in splits['train']) > 6850


def test_phrases_identical_to_dev_or_test_are_dropped(tiny_data):
  splits = local_splits.sst2_splits(str(tiny_data), 'phrase')
  texts = [e.text for e in splits['train']]
  assert 'a dull mess number 100' not in texts  # identical to a dev sentence
  assert 'lrb truly rrb funny' in texts  # cleaned like the sentence files
  assert len(texts) == 61


@pytest.mark.parametrize('line, message', [
    ('no tab here', r'train\.tsv:3: expected "text<TAB>label"'),
    ('good film\tpositive', r"train\.tsv:3: label 'positive' is not an integer"),
    ('good film\t7', r'train\.tsv:3: label 7 is outside \[0, 2\)'),
    ('\t1', r'train\.tsv:3: empty text'),
])
def test_malformed_data_line_names_file_and_line(tiny_data, line, message):
  path = tiny_data / 'sst2' / 'train.tsv'
  lines = path.read_text().split('\n')
  lines.insert(2, line)
  path.write_text('\n'.join(lines))
  with pytest.raises(DataFormatError, match=message):
    local_splits.sst2_splits(str(tiny_data), 'sentence')


def test_non_utf8_bytes_name_file_and_line(tiny_data, tmp_path):
  path = tiny_data / 'sst2' / 'test.tsv'
  path.write_bytes(b'fine film\t1\nbad \xff byte\t0\n')
  with pytest.raises(DataFormatError, match=r'test\.tsv:2: not UTF-8 text'):
    local_splits.sst2_splits(str(tiny_data), 'sentence')
  vectors = tmp_path / 'vec.txt'
  vectors.write_bytes(b'\xef\xbb\xbfthe 0.1 0.2\ncaf\xe9 1 2\n')  # a BOM, then Latin-1
  vocab = input_pipeline.Vocabulary(['<pad>', '<unk>', 'the'])
  with pytest.raises(DataFormatError, match=r'vec\.txt:2: not UTF-8 text'):
    word_vectors.read_word_vectors(str(vectors), vocab)
  vectors.write_bytes(b'\xef\xbb\xbfthe 0.1 0.2\n')
  assert word_vectors.read_word_vectors(str(vectors), vocab).found == 1  # the BOM is not part of the word


def test_local_builder_serves_splits_through_tfds(tiny_data, tmp_path):
  splits = tfds_builders.load_splits('sst2', 'sentence', source_dir=str(tiny_data), tfds_dir=str(tmp_path / 'tfds'))
  assert splits.num_classes == 2
  assert [int(s.reduce(0, lambda n, _: n + 1)) for s in (splits.train, splits.validation, splits.test)] == [40, 12, 12]
  text, label = next(iter(splits.train))
  assert text.dtype == tf.string and label.dtype == tf.int64


def test_catalog_name_goes_through_tfds_builder_registry(tiny_data, tmp_path, monkeypatch):
  # Our builder is registered in the TFDS catalog as `lmf_sst2`; loading it by name exercises the catalog path
  # that `glue/sst2` takes for online users.
  monkeypatch.setattr(catalog, 'DATA_DIR', str(tiny_data))
  monkeypatch.setattr(tfds_builders.LmfSst2.__init__, '__kwdefaults__', {'source_dir': str(tiny_data)})
  splits = tfds_builders.load_splits('lmf_sst2/sentence', tfds_dir=str(tmp_path / 'tfds'), text_key='text')
  assert int(splits.test.reduce(0, lambda n, _: n + 1)) == 12


def test_unknown_dataset_name_is_a_config_error(tmp_path):
  with pytest.raises(ConfigError, match="--dataset='no_such_set' is neither a local data set"):
    tfds_builders.load_splits('no_such_set', tfds_dir=str(tmp_path))


def test_vocabulary_from_train_with_pad_and_unk():
  ds = tf.data.Dataset.from_tensor_slices((['b a b', 'c b'], [0, 1]))
  vocab = input_pipeline.Vocabulary.build(ds)
  assert vocab.tokens == ['<pad>', '<unk>', 'b', 'a', 'c']
  ids = vocab.encode(tf.constant(['a b zzz'])).to_list()
  assert ids == [[3, 2, input_pipeline.UNK_ID]]


def test_bucketed_batches_pad_with_zero_only_to_the_bucket():
  texts = [' '.join(['w'] * n) for n in [1, 2, 3, 9, 10, 11, 30, 31] * 4]
  ds = tf.data.Dataset.from_tensor_slices((texts, [0] * len(texts)))
  vocab = input_pipeline.Vocabulary.build(ds)
  encoded = input_pipeline.encode_dataset(ds, vocab)
  train = input_pipeline.training_batches(encoded, 4, seed=0, first_epoch=0, last_epoch=1, bucket_boundaries=(4, 12))
  steps = input_pipeline.count_batches(encoded, 4, bucket_boundaries=(4, 12))
  batches = list(train)
  assert len(batches) == steps
  assert sum(int(x.shape[0]) for x, _ in batches) == len(texts)
  bucket_of = lambda n: np.searchsorted([4, 12], n, side='right')
  for x, _ in batches:
    lengths = np.sum(x.numpy() != 0, axis=1)
    assert lengths.max() == x.shape[1]  # padded with 0 to the batch's longest only
    assert len({bucket_of(n) for n in lengths}) == 1  # one length bucket per batch
  assert min(int(x.shape[1]) for x, _ in batches) <= 3  # the short bucket is not padded to 31
  with pytest.raises(ConfigError, match='seed'):
    input_pipeline.training_batches(encoded, 4, seed=None, first_epoch=0, last_epoch=1)


def test_shuffle_order_is_a_function_of_seed_and_epoch():
  ds = tf.data.Dataset.from_tensor_slices(([f'w{i}' for i in range(50)], list(range(50))))
  vocab = input_pipeline.Vocabulary.build(ds)
  enc = input_pipeline.encode_dataset(ds, vocab)

  def orders(seed, first, last):
    train = input_pipeline.training_batches(enc, 50, seed, first, last, bucket_boundaries=())
    steps = input_pipeline.count_batches(enc, 50, bucket_boundaries=())
    labels = [list(y.numpy()) for _, y in train]
    assert len(labels) == steps * (last - first)
    return labels

  three_epochs = orders(7, 0, 3)
  assert three_epochs == orders(7, 0, 3)  # repeatable
  assert orders(7, 2, 3) == three_epochs[2:]  # a run resumed at epoch 2 sees epoch 2's order
  assert three_epochs[0] != three_epochs[1] != list(range(50))  # reshuffled each epoch
  assert orders(8, 0, 1) != three_epochs[:1]


def test_glove_reader(tmp_path):
  path = tmp_path / 'vec.txt'
  path.write_text('3 2\nthe 0.1 0.2\ncat 1.5 -2\ndog 3 4\n')  # with a word2vec header
  vocab = input_pipeline.Vocabulary(['<pad>', '<unk>', 'cat', 'the', 'zebra'])
  result = word_vectors.read_word_vectors(str(path), vocab, seed=0)
  assert result.matrix.shape == (5, 2) and result.found == 2 and result.searched == 3
  np.testing.assert_allclose(result.matrix[2], [1.5, -2])
  np.testing.assert_allclose(result.matrix[0], [0, 0])
  assert np.all(np.abs(result.matrix[4]) <= 0.25) and np.any(result.matrix[4] != 0)


def test_glove_rows_of_different_lengths_name_file_and_line(tmp_path):
  path = tmp_path / 'vec.txt'
  path.write_text('the 0.1 0.2 0.3\ncat 1.5 -2\n')
  vocab = input_pipeline.Vocabulary(['<pad>', '<unk>', 'cat'])
  with pytest.raises(DataFormatError, match=r'vec\.txt:2: 2 values, but earlier lines have 3'):
    word_vectors.read_word_vectors(str(path), vocab)
  path.write_text('the 0.1 abc\n')
  with pytest.raises(DataFormatError, match=r"vec\.txt:1: a value of 'the' is not a number"):
    word_vectors.read_word_vectors(str(path), input_pipeline.Vocabulary(['<pad>', '<unk>', 'the']))
  with pytest.raises(FileNotFoundError, match='--embeddings_path'):
    word_vectors.read_word_vectors(str(tmp_path / 'missing.txt'), vocab)
