"""Vocabulary and `tf.data` input pipelines: tokenise, map to ids, shuffle (seeded), bucket by length, prefetch.

Tokenisation is whitespace splitting of lower-cased text, for every data set: SST-2 is cleaned when it is prepared
(`readers.clean_sst_text`); the intent sets are used as vendored, whitespace normalised (`readers` docstring).
Ids: 0 is padding (masked by the embedding), 1 is `<unk>`, words follow from 2 on by training-set frequency.
"""

import collections
import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError
from lmf_tf.text import tfds_builders

# Under a multi-worker strategy each global batch is split between the workers (shards of its examples), not dealt
# out whole: the same steps as one process with the same batch size (tests/test_multi_worker.py).
SPLIT_BATCHES = tf.data.Options()
SPLIT_BATCHES.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA

PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = '<pad>'
UNK_TOKEN = '<unk>'
DEFAULT_BUCKET_BOUNDARIES = (4, 8, 12, 16, 20, 25, 30, 40, 50)


def tokenize(texts):
  """`tf.string[...]` -> `tf.RaggedTensor` of tokens (lower-cased, split on whitespace)."""
  return tf.strings.split(tf.strings.lower(texts))


class Vocabulary:
  """Token <-> id mapping built from the training data only (Acharya et al. 2019, §5.2).

  `tokens[i]` is the token with id i; `tokens[0] = '<pad>'`, `tokens[1] = '<unk>'`. With `oov_buckets` b > 0 a
  token not in the vocabulary is not `<unk>` but one of b out-of-vocabulary buckets, id len(tokens) + FarmHash
  Fingerprint64(token) % b (`tf.lookup.StaticVocabularyTable`; the same hash as `tf.strings.to_hash_bucket_fast`),
  so rare words keep some of their meaning without a row each; `len` counts the buckets.
  """

  def __init__(self, tokens, oov_buckets=0):
    tokens = list(tokens)
    if tokens[:2] != [PAD_TOKEN, UNK_TOKEN]:
      raise ValueError(f'a vocabulary starts with {PAD_TOKEN!r}, {UNK_TOKEN!r}, not {tokens[:2]}')
    if oov_buckets < 0:
      raise ConfigError(f'Vocabulary(oov_buckets={oov_buckets}): expected 0 (unknown words are <unk>) or more')
    self.tokens = tokens
    self.oov_buckets = int(oov_buckets)
    self._table = None

  @classmethod
  def build(cls, text_dataset, min_count=1):
    """Counts the tokens of a `tf.data.Dataset` of `(text, label)`; orders words by frequency, then alphabet."""
    counts = collections.Counter()
    for batch in text_dataset.batch(4096).map(lambda text, label: tokenize(text)):
      counts.update(batch.flat_values.numpy())
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return cls([PAD_TOKEN, UNK_TOKEN] + [w.decode('utf-8') for w in words])

  def __len__(self):
    return len(self.tokens) + self.oov_buckets

  def as_text(self):
    """The vocabulary file's text: one token per line, in id order."""
    return '\n'.join(self.tokens) + '\n'

  def file_bytes(self):
    """Bytes of the vocabulary file (`save`), which a deployed model ships beside its weights."""
    return len(self.as_text().encode('utf-8'))

  def save(self, path):
    io_utils.write_text_atomic(path, self.as_text())

  @classmethod
  def load(cls, path, oov_buckets=0):
    """The vocabulary `save` wrote; the file holds the tokens only, so give the `oov_buckets` it was built with."""
    if not os.path.exists(path):
      raise FileNotFoundError(f'vocabulary file {path} is missing')
    with open(path, encoding='utf-8') as f:
      return cls((line.rstrip('\n') for line in f), oov_buckets)

  @property
  def table(self):
    """A `tf.lookup.StaticHashTable` from token to int32 id, unknown tokens to `UNK_ID`."""
    if self._table is None:
      with tf.init_scope():  # Created eagerly even when first used inside a tf.data map or tf.function.
        self._table = self._make_table()
    return self._table

  def _make_table(self):
    if self.oov_buckets:  # the table holds every token, so the buckets' ids follow them; '<pad>' reads as '<unk>'
      ids = tf.constant([UNK_ID, UNK_ID] + list(range(2, len(self.tokens))), tf.int64)
      return tf.lookup.StaticVocabularyTable(tf.lookup.KeyValueTensorInitializer(tf.constant(self.tokens), ids),
                                             self.oov_buckets, lookup_key_dtype=tf.string)
    words = tf.constant(self.tokens[2:])
    ids = tf.range(2, len(self.tokens), dtype=tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(words, ids), UNK_ID)

  def encode(self, texts):
    """`tf.string[batch]` -> `tf.RaggedTensor` of int32 ids, `[batch, (length)]`."""
    lookup = lambda tokens: tf.cast(self.table.lookup(tokens), tf.int32)
    return tf.ragged.map_flat_values(lookup, tokenize(texts))


class HashedVocabulary:
  """Words hashed into `buckets` ids instead of looked up: id = 2 + FarmHash Fingerprint64(word) % buckets
  (`tf.strings.to_hash_bucket_fast`), so no vocabulary file ships and no word is out of vocabulary; words that
  collide share a row (the hashing trick, Weinberger et al. 2009). Reads like a `Vocabulary` where the pipeline
  and `word_vectors.read_word_vectors` read one: `encode`, `len` (buckets + 2) and `tokens`, where each bucket's
  token is the most frequent of the training words it holds (so the bucket starts from that word's pre-trained
  vector), or `<bucket i>` for a bucket no training word falls in.
  """

  def __init__(self, words_by_frequency, buckets):
    """`words_by_frequency`: the training words, most frequent first; `buckets`: how many ids words hash to."""
    if buckets < 1:
      raise ConfigError(f'HashedVocabulary(buckets={buckets}): expected at least one bucket')
    self.buckets = int(buckets)
    words = list(words_by_frequency)
    owners = {}
    for word, bucket in zip(words, tf.strings.to_hash_bucket_fast(words, self.buckets).numpy() if words else ()):
      owners.setdefault(int(bucket), word)
    self.tokens = [PAD_TOKEN, UNK_TOKEN] + [owners.get(b, f'<bucket {b}>') for b in range(self.buckets)]

  def __len__(self):
    return len(self.tokens)

  def encode(self, texts):
    """`tf.string[batch]` -> `tf.RaggedTensor` of int32 ids in [2, buckets + 2), `[batch, (length)]`."""
    hashed = lambda tokens: 2 + tf.cast(tf.strings.to_hash_bucket_fast(tokens, self.buckets), tf.int32)
    return tf.ragged.map_flat_values(hashed, tokenize(texts))


def encode_dataset(text_dataset, vocabulary, max_length=None):
  """`(text, label)` -> `(int32[length] ids, int64 label)`, cached after the (cheap) lookup."""
  def encode(text, label):
    ids = vocabulary.encode(text[tf.newaxis])[0]
    if max_length:
      ids = ids[:max_length]
    ids = tf.cond(tf.size(ids) > 0, lambda: ids, lambda: tf.constant([UNK_ID], tf.int32))
    return ids, tf.cast(label, tf.int64)
  return text_dataset.map(encode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()


def _count(dataset):
  return int(dataset.reduce(0, lambda n, _: n + 1))


def _bucketed(encoded, batch_size, bucket_boundaries):
  """Padded batches of (ids, target): an int64 label, or a float[classes] vector of soft targets."""
  target = encoded.element_spec[1]
  padded_shapes = ([None], target.shape)
  padding_values = (PAD_ID, tf.zeros((), target.dtype))
  if bucket_boundaries:
    return encoded.bucket_by_sequence_length(
        element_length_func=lambda ids, label: tf.shape(ids)[0],
        bucket_boundaries=list(bucket_boundaries),
        bucket_batch_sizes=[batch_size] * (len(bucket_boundaries) + 1),
        padded_shapes=padded_shapes, padding_values=padding_values)
  return encoded.padded_batch(batch_size, padded_shapes=padded_shapes, padding_values=padding_values)


def batches(encoded, batch_size, bucket_boundaries=DEFAULT_BUCKET_BOUNDARIES):
  """Length-bucketed, padded batches in data order (for evaluation): `(int32[batch, length], int64[batch])`.

  Each batch is padded with `PAD_ID` only to the longest sequence of its bucket, so a recurrent layer does not
  run over long stretches of padding.
  """
  batched = _bucketed(encoded, batch_size, bucket_boundaries)
  # Declare the (fixed) number of batches, so Keras knows where an evaluation ends instead of warning about it.
  batched = batched.apply(tf.data.experimental.assert_cardinality(_count(batched))).prefetch(tf.data.AUTOTUNE)
  return batched.with_options(SPLIT_BATCHES)


def count_batches(encoded, batch_size, bucket_boundaries=DEFAULT_BUCKET_BOUNDARIES):
  """Batches per epoch. Which bucket an example falls in depends on its length only, so every epoch (whatever its
  order) has this many batches: pass it to `fit` as `steps_per_epoch`."""
  return _count(_bucketed(encoded, batch_size, bucket_boundaries))


def training_batches(encoded, batch_size, seed, first_epoch, last_epoch,
                     bucket_boundaries=DEFAULT_BUCKET_BOUNDARIES, num_examples=None):
  """Shuffled, length-bucketed batches for epochs [first_epoch, last_epoch), one after the other.

  Epoch e is shuffled with the seed (seed, e), so its order is a pure function of the seed and the epoch: a run
  resumed at epoch e sees the batches an uninterrupted run would. (A shuffle with `reshuffle_each_iteration`
  would not do: Keras re-creates the dataset's seed generator when it distributes the dataset.)
  `num_examples` (the shuffle buffer: the whole set) is counted when not given. Each epoch has
  `count_batches(encoded, batch_size, bucket_boundaries)` batches.

  Raises:
    ConfigError: if `seed` is None (runs must repeat).
  """
  if seed is None:
    raise ConfigError('shuffling without a seed: pass a seed (--seed)')
  count = _count(encoded) if num_examples is None else num_examples

  def one_epoch(epoch):
    epoch_seed = tf.constant(seed, tf.int64) * 1_000_003 + epoch
    shuffled = encoded.shuffle(max(count, 1), seed=epoch_seed, reshuffle_each_iteration=False)
    return _bucketed(shuffled, batch_size, bucket_boundaries)

  batches = tf.data.Dataset.range(first_epoch, last_epoch).flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)
  return batches.with_options(SPLIT_BATCHES)


def to_padded_arrays(encoded, max_length=None):
  """The whole encoded data set as NumPy arrays padded to one length: (int32[n, T], int64[n])."""
  ids, labels = [], []
  for x, y in encoded.as_numpy_iterator():
    ids.append(x)
    labels.append(y)
  length = max_length or max(len(x) for x in ids)
  padded = np.zeros((len(ids), length), np.int32)
  for i, x in enumerate(ids):
    padded[i, :min(len(x), length)] = x[:length]
  return padded, np.asarray(labels, np.int64)


@dataclasses.dataclass
class PreparedData:
  dev: tf.data.Dataset  # bucketed batches (int32[b, T], int64[b])
  test: tf.data.Dataset
  vocabulary: Vocabulary
  num_classes: int
  sizes: dict
  steps_per_epoch: int
  encoded_train: tf.data.Dataset  # unbatched (int32[length], int64) pairs
  batch_size: int
  seed: int
  bucket_boundaries: tuple
  encoded_test: tf.data.Dataset  # unbatched (int32[length], int64) pairs, in file order

  def train_epochs(self, first_epoch, last_epoch):
    """Shuffled, bucketed training batches for epochs [first_epoch, last_epoch) (`training_batches`)."""
    return training_batches(self.encoded_train, self.batch_size, self.seed, first_epoch, last_epoch,
                            self.bucket_boundaries, num_examples=self.sizes['train'])


def prepare_data(config, vocabulary=None):
  """Loads the splits, builds the vocabulary from train (unless given) and the batched pipelines."""
  splits = tfds_builders.load_splits(config.dataset, train_level=config.train_level, source_dir=config.data_dir,
                                tfds_dir=config.tfds_dir, text_key=config.tfds_text_key,
                                label_key=config.tfds_label_key, split_names=tuple(config.tfds_splits.split(',')))
  train = splits.train
  if config.max_train_examples:
    train = train.take(config.max_train_examples)
  vocabulary = vocabulary or Vocabulary.build(train)
  boundaries = DEFAULT_BUCKET_BOUNDARIES if config.bucket else ()
  encoded = {name: encode_dataset(ds, vocabulary, config.max_length)
             for name, ds in (('train', train), ('dev', splits.validation), ('test', splits.test))}
  sizes = {}
  for name, ds in encoded.items():
    count, lowest = ds.reduce((0, tf.constant(0, tf.int64)), lambda acc, x: (acc[0] + 1, tf.minimum(acc[1], x[1])))
    sizes[name] = int(count)
    if lowest < 0:  # e.g. GLUE's test split, whose labels are hidden (-1)
      raise ConfigError(f'the {name} split of --dataset={config.dataset} has unlabelled examples (label -1); '
                        'choose labelled splits with --tfds_splits')
  logging.info('Data %s (%s): train %d, dev %d, test %d examples; vocabulary %d (with <pad>, <unk>).',
               config.dataset, config.train_level, sizes['train'], sizes['dev'], sizes['test'], len(vocabulary))
  steps_per_epoch = count_batches(encoded['train'], config.batch_size, boundaries)
  return PreparedData(batches(encoded['dev'], config.batch_size, boundaries),
                      batches(encoded['test'], config.batch_size, boundaries), vocabulary,
                      splits.num_classes, sizes, steps_per_epoch, encoded['train'], config.batch_size, config.seed,
                      boundaries, encoded['test'])
