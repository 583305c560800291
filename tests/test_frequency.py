"""Frequency-aware ranks (`lmf_tf.FrequencyRanks`): the rank allocation, and the swap during `fit` on models built the
way users build them (functional, an embedding inside a user's layer), through save, reload, resume and LiteRT."""

import os

import keras
import numpy as np
import pytest

import lmf_tf
from lmf_tf.compression import frequency, sizes
from lmf_tf.compression.factorization import truncated_svd
from lmf_tf.errors import ConfigError
from lmf_tf.layers import FrequencyBlockEmbedding

VOCAB, DIM = 600, 24
RNG = np.random.default_rng(0)
# Zipf-distributed ids, most frequent first, as TextVectorization numbers them; the label reads the first word.
IDS = np.minimum(RNG.zipf(1.3, (256, 8)), VOCAB - 1).astype('int32')
LABELS = (IDS[:, 0] % 3).astype('int32')


def bag(name='bag'):
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name='words')(ids)
  x = keras.layers.Dense(32, activation='relu', name='hidden')(keras.layers.GlobalAveragePooling1D()(x))
  model = keras.Model(ids, keras.layers.Dense(3, activation='softmax', name='classifier')(x), name=name)
  model.compile(keras.optimizers.Adam(3e-3), 'sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


@keras.saving.register_keras_serializable('test_frequency')
class TokenEmbedding(keras.layers.Layer):
  """The Keras examples' shape: a user's layer that makes its Embedding in __init__."""

  def __init__(self, vocab_size, dim, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size, self.dim = vocab_size, dim
    self.token_emb = keras.layers.Embedding(vocab_size, dim)

  def call(self, ids):
    return self.token_emb(ids)

  def get_config(self):
    return {**super().get_config(), 'vocab_size': self.vocab_size, 'dim': self.dim}


def nested_bag():
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.GlobalAveragePooling1D()(TokenEmbedding(VOCAB, DIM, name='tokens')(ids))
  return keras.Model(ids, keras.layers.Dense(3, activation='softmax')(x), name='nested')


def weighted_error(matrix, approx, weights):
  return float((weights[:, None] * np.square(matrix - approx)).sum())


def test_blocks_beat_one_rank_on_the_frequency_weighted_error_in_the_same_numbers():
  matrix = RNG.normal(size=(VOCAB, DIM))
  setting = lmf_tf.FrequencyRanks(blocks=4)
  numbers = 3 * (VOCAB + DIM)
  factors = frequency.block_factors(matrix, numbers, setting)
  assert factors.numbers <= numbers and len(factors.ranks) == 4 and sum(factors.rows) == VOCAB
  assert factors.ranks[0] > factors.ranks[-1]  # frequent words keep more rank
  blocks = np.concatenate([l @ r for l, r in zip(factors.lefts, factors.rights)])
  uniform = truncated_svd(matrix, 3)
  weights = setting.weights(VOCAB)
  assert weighted_error(matrix, blocks, weights) < 0.8 * weighted_error(matrix, uniform.left @ uniform.right, weights)


def test_block_rows_and_bad_settings_name_the_argument():
  assert lmf_tf.FrequencyRanks(blocks=4).block_rows(14_000) == (165, 659, 2635, 10541)
  assert lmf_tf.FrequencyRanks(blocks=(50, 200)).block_rows(600) == (50, 150, 400)
  for bad in (1, (0, 10), (20, 10), 'four', True):
    with pytest.raises(ConfigError, match='FrequencyRanks\\(blocks='):
      lmf_tf.FrequencyRanks(blocks=bad)
  with pytest.raises(ConfigError, match='past the embedding'):
    lmf_tf.FrequencyRanks(blocks=(700,)).block_rows(600)
  with pytest.raises(ConfigError, match='counts=.*5 counts for an embedding of 600 rows'):
    lmf_tf.FrequencyRanks(counts=[1, 2, 3, 4, 5]).weights(600)
  with pytest.raises(ConfigError, match='OnlineCompression\\(frequency='):
    lmf_tf.OnlineCompression(rank=3, at_epoch=1, frequency=4)
  with pytest.raises(ConfigError, match='gradual_factors'):
    lmf_tf.OnlineCompression(rank=3, at_epoch=1, frequency=lmf_tf.FrequencyRanks(), gradual_factors=(2,),
                             gradual_every_steps=5)


def test_blocks_that_do_not_fit_are_refused_before_any_step_and_the_layer_refuses_lora():
  model = bag()
  for setting, message in ((lmf_tf.FrequencyRanks(blocks=(700,)), 'past the embedding'),
                           (lmf_tf.FrequencyRanks(counts=[1.0] * 10), '10 counts for an embedding of 600 rows')):
    callback = lmf_tf.OnlineCompression(rank=3, at_epoch=1, frequency=setting, verbose=0)
    with pytest.raises(ConfigError, match=f"^OnlineCompression: .*{message}.*embedding 'words'"):
      model.fit(IDS, LABELS, epochs=2, callbacks=[callback], verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0  # refused in on_train_begin
  ids = keras.Input((None,), dtype='int32')  # two embeddings: the second too small for the blocks
  pooled = [keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(rows, DIM, name=name)(ids))
            for name, rows in (('words', VOCAB), ('chars', 300))]
  two = keras.Model(ids, keras.layers.Dense(3)(keras.layers.Concatenate()(pooled)))
  with pytest.raises(ConfigError, match="^compress_model: .*past the embedding.*embedding 'chars'"):
    lmf_tf.compress_model(two, rank=3, layers=['words', 'chars'], frequency=lmf_tf.FrequencyRanks(blocks=(400,)))
  assert [type(l).__name__ for l in two.layers[1:3]] == ['Embedding', 'Embedding']  # neither was changed
  layer = FrequencyBlockEmbedding(10, 4, block_rows=[4, 6], block_ranks=[2, 0],
                                  weights=[np.ones((4, 2), 'float32'), np.eye(2, 4, dtype='float32')])
  np.testing.assert_allclose(layer(np.array([[0, 5]])).numpy()[0], [[1, 1, 0, 0], [0, 0, 0, 0]])
  with pytest.raises(ConfigError, match='already low-rank'):
    layer.enable_lora(2)


def test_counts_weigh_the_rows():
  counts = np.ones(VOCAB)
  counts[300:] = 1000.0  # the "frequent" words are the last ids: the weights follow the counts, not the ids
  matrix = RNG.normal(size=(VOCAB, DIM))
  factors = frequency.block_factors(matrix, 4 * (VOCAB + DIM), lmf_tf.FrequencyRanks(blocks=(300,), counts=counts))
  assert factors.ranks[1] > factors.ranks[0]


@pytest.fixture(scope='module')
def swapped(tmp_path_factory):
  """A user's bag trained with the swap to frequency blocks at rank 3's numbers, saved as .keras."""
  keras.utils.set_random_seed(1)
  model = bag()
  callback = lmf_tf.OnlineCompression(rank=3, at_epoch=1, frequency=lmf_tf.FrequencyRanks(blocks=3), verbose=0)
  model.fit(IDS, LABELS, epochs=2, batch_size=64, callbacks=[callback], verbose=0)
  path = str(tmp_path_factory.mktemp('frequency') / 'bag.keras')
  model.save(path)
  return model, callback, path


def test_online_swap_trains_the_blocks_and_reloads(swapped):
  model, callback, path = swapped
  words = model.get_layer('words')
  assert isinstance(words, FrequencyBlockEmbedding) and callback.done
  report = callback.reports[0]
  assert report.block_ranks == words.block_ranks and report.params_after <= 3 * (VOCAB + DIM)
  assert 'frequency blocks' in report.summary()
  assert [w.path.split('/')[-1] for w in words.trainable_weights] == [
      f'block{g}_table' for g, k in enumerate(words.block_ranks) if k] + ['projection']
  assert tuple(words.projection.shape) == (sum(words.block_ranks), DIM)
  reloaded = keras.models.load_model(path)
  np.testing.assert_allclose(reloaded.predict(IDS, verbose=0), model.predict(IDS, verbose=0), atol=1e-6)
  assert [w.path for w in reloaded.optimizer.variables if 'block0_table' in w.path]  # its optimizer holds the slots


def test_shipped_int8_file_runs_in_litert_and_matches_the_size_model(swapped):
  model = swapped[0]
  shipped = lmf_tf.fold_projection(model)  # nothing to fold: each block has its own projection
  flatbuffer = lmf_tf.to_tflite(shipped, 'int8')
  predicted = sizes.predict_parts(shipped, 'int8')['total']
  relative, absolute = sizes.PREDICTION_TOLERANCE
  assert abs(predicted - len(flatbuffer)) <= max(relative * len(flatbuffer), absolute), (predicted, len(flatbuffer))
  runner = lmf_tf.TfliteRunner(flatbuffer)
  litert = np.argmax(runner.predict(list(IDS)), axis=-1)
  keras_labels = np.argmax(model.predict(IDS, verbose=0), axis=-1)
  assert np.mean(litert == keras_labels) >= 0.98


def test_embedding_inside_a_users_layer_reloads_in_its_blocks(tmp_path):
  model = nested_bag()
  model(IDS[:2])
  lmf_tf.compress_model(model, rank=3, frequency=lmf_tf.FrequencyRanks(blocks=3))
  inner = model.get_layer('tokens').token_emb
  assert isinstance(inner, FrequencyBlockEmbedding)
  path = os.path.join(tmp_path, 'nested.keras')
  model.save(path)
  reloaded = keras.models.load_model(path)
  assert reloaded.get_layer('tokens').token_emb.blocks == inner.blocks
  np.testing.assert_allclose(reloaded.predict(IDS, verbose=0), model.predict(IDS, verbose=0), atol=1e-6)


def test_resume_puts_the_blocks_back(swapped):
  _, callback, _ = swapped
  state = callback.get_state()
  assert state['blocks']['words'] == callback.model.get_layer('words').blocks
  fresh = bag('fresh')
  fresh(IDS[:2])
  again = lmf_tf.OnlineCompression(rank=3, at_epoch=1, frequency=lmf_tf.FrequencyRanks(blocks=3), verbose=0)
  again.set_model(fresh)
  again.restore_state(state)
  assert fresh.get_layer('words').blocks == state['blocks']['words']
  plain = lmf_tf.OnlineCompression(rank=3, at_epoch=1, verbose=0)
  plain.set_model(bag('plain'))
  plain.model(IDS[:2])
  with pytest.raises(ConfigError, match='frequency blocks'):
    plain.restore_state(state)


def test_study_flag_needs_an_online_swap():
  from lmf_tf.text.config import TrainConfig
  assert TrainConfig(dataset='sst2', model='lstm', reduction=90, frequency_blocks=4).run_name == (
      'sst2_lstm_R90_fb4_seed1')
  with pytest.raises(ConfigError, match='--frequency_blocks .*--reduction or --rank'):
    TrainConfig(dataset='sst2', model='lstm', frequency_blocks=4).validate()
  with pytest.raises(ConfigError, match='--frequency_blocks=1'):
    TrainConfig(dataset='sst2', model='lstm', reduction=90, frequency_blocks=1).validate()


def test_the_study_plan_and_its_table(tmp_path):
  """`make frequency-ranks`: each training run is followed by the LiteRT evaluation of its int8 file, named after
  it; the table groups seeds by variant and recipe, with the shipped file's accuracy beside the Keras one."""
  from lmf_tf import io_utils  # pylint: disable=g-import-not-at-top
  from lmf_tf.harness import frequency_reporting, plans  # pylint: disable=g-import-not-at-top
  runs = plans.frequency_plan(seeds=(1,), workdir=str(tmp_path / 'w'), results_dir=str(tmp_path))
  names = [r.name for r in runs]
  assert names[:2] == ['clinc150_lstm_R90_fb4_seed1', 'clinc150_lstm_R90_fb4_seed1_int8']
  assert 'clinc150_lstm_R90_fb4_lrconst_seed1' in names and 'sst2_lstm_R90_seed1' in names
  assert all(r.requires == r.name[:-len('_int8')] for r in runs if r.name.endswith('_int8'))
  for seed, (blocks, test, shipped) in enumerate([(4, 0.80, 0.79), (4, 0.84, 0.85), (None, 0.56, 0.57)], 1):
    name = f'clinc150_lstm_R90{"_fb4" if blocks else ""}_seed{seed}'
    io_utils.write_json_atomic(str(tmp_path / f'{name}.json'), {
        'run': name, 'method': 'online', 'rank': 4, 'dev_accuracy': test, 'test_accuracy': test,
        'config': {'dataset': 'clinc150', 'model': 'lstm', 'reduction': 90, 'seed': seed, 'frequency_blocks': blocks},
        'checkpoint_bytes': {'total_bytes': 700_000}, 'params': {'model': 1, 'embedding': 23_000},
        'checkpoint_dir': 'x', 'wall_seconds': 1.0})
    io_utils.write_json_atomic(str(tmp_path / f'{name}_int8.json'),
                               {'test_accuracy': shipped, 'deployable_bytes': 250_000})
  table = frequency_reporting.frequency_table(frequency_reporting.frequency_frame(str(tmp_path)))
  blocks = table[table.variant == '4 frequency blocks'].iloc[0]
  assert blocks.seeds == 2 and blocks.test_mean == pytest.approx(82.0)
  assert blocks.shipped_test_mean == pytest.approx(82.0)
  assert blocks.test_std == pytest.approx(np.std([80, 84], ddof=1))
  assert '| one rank (k = 4) | paper | 1 |' in frequency_reporting.to_markdown(table)
