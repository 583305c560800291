"""int4 embedding tables (`lmf_tf.to_tflite(model, 'int4_embeddings')`, `lmf_tf.quantization`): the packing, the
shipped file run by LiteRT against the Keras copy and the size model, training aware of 4 bits, on models built the
way users build them (a BiLSTM on TextVectorization ids, a factorized then folded bag, a user's layer)."""

import os

import keras
import numpy as np
import pytest

import lmf_tf
from lmf_tf.compression import int4, sizes
from lmf_tf.errors import ConfigError
from lmf_tf.layers import Int4AwareEmbedding, PackedInt4Embedding

VOCAB, DIM = 1_500, 11  # an odd width: the last byte of each row holds one number
RNG = np.random.default_rng(0)
IDS = RNG.integers(1, VOCAB, (128, 9)).astype('int32')
LABELS = (IDS[:, 0] % 2).astype('int32')


def bilstm():
  """The shape of examples/own_model.py: ids from a TextVectorization, Embedding, BiLSTM, Dense."""
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.Embedding(VOCAB, DIM, mask_zero=True, name='words')(ids)
  x = keras.layers.Bidirectional(keras.layers.LSTM(8))(x)
  model = keras.Model(ids, keras.layers.Dense(2, activation='softmax')(x), name='bilstm')
  model.compile(keras.optimizers.Adam(3e-3), 'sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


@keras.saving.register_keras_serializable('test_int4')
class TokenEmbedding(keras.layers.Layer):
  """The Keras examples' shape: a user's layer that makes its Embedding in __init__."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.token_emb = keras.layers.Embedding(VOCAB, DIM)

  def call(self, ids):
    return self.token_emb(ids)


def test_packing_keeps_each_number_within_half_a_step_and_the_mse_clip_errs_least():
  table = RNG.normal(size=(300, 7)).astype('float32')
  table[0, 0] = 40.0  # an outlier: the 'mse' clip gives it up for the rest of its column
  for rule in int4.RULES:
    scales = int4.column_scales(table, rule)
    packed = int4.pack(table, scales)
    assert packed.dtype == np.uint8 and packed.shape == (300, 4)
    back = int4.unpacked(packed, scales)
    inside = np.abs(table) <= 7 * scales
    assert np.all(np.abs(back - table)[inside] <= scales.repeat(300).reshape(7, 300).T[inside] / 2 + 1e-6)
  top = np.abs(table).max(axis=0) / 7
  errors = {name: np.mean((int4.unpacked(int4.pack(table, s), s) - table) ** 2)
            for name, s in (('mse', int4.column_scales(table, 'mse')), ('max', top))}
  assert errors['mse'] < errors['max']
  with pytest.raises(ConfigError, match=r"column_scales\(rule='l1'\)"):
    int4.column_scales(table, 'l1')


def test_a_users_bilstm_ships_int4_tables_that_litert_runs_as_keras_does(tmp_path):
  model = bilstm()
  model.fit(IDS, LABELS, epochs=1, verbose=0)
  int8, packed = lmf_tf.to_tflite(model, 'int8'), lmf_tf.to_tflite(model, 'int4_embeddings')
  copy = lmf_tf.quantization.with_int4_tables(model)
  assert isinstance(copy.get_layer('words'), PackedInt4Embedding)
  expected = copy.predict(IDS[:4], verbose=0)
  np.testing.assert_allclose(lmf_tf.TfliteRunner(packed).predict(IDS[:4]), expected, atol=1e-4)
  # 4 bits cost little here: the copy agrees with the float model on most labels
  assert np.mean(expected.argmax(1) == model.predict(IDS[:4], verbose=0).argmax(1)) >= 0.75
  # the table is half its int8 bytes; the size model predicts the file and reads the table off it
  table = VOCAB * ((DIM + 1) // 2)
  assert table in [size for _, size in sizes.constant_tensor_bytes(packed)]
  assert len(int8) - len(packed) > VOCAB * DIM - table - 2 * sizes.OVERHEAD_BYTES['int4_table']
  predicted = {kind: sizes.predict_parts(model, kind) for kind in ('int8', 'int4_embeddings')}
  measured = sizes.measure_parts(packed, model, 'int4_embeddings')
  assert measured['embedding'] == predicted['int4_embeddings']['embedding'] == table
  saved = predicted['int8']['total'] - predicted['int4_embeddings']['total']
  assert abs(saved - (len(int8) - len(packed))) <= 400  # the scales and the unpacking: 'int4_table' bytes
  path = os.path.join(tmp_path, 'int4.keras')
  copy.save(path)
  np.testing.assert_allclose(keras.saving.load_model(path).predict(IDS[:4], verbose=0), expected, atol=1e-6)


def test_training_aware_of_4_bits_ships_the_table_it_trained_with(tmp_path):
  model = bilstm()
  frozen = bilstm()
  frozen.get_layer('words').trainable = False
  assert not lmf_tf.quantization.int4_aware(frozen).get_layer('words').trainable  # the layer's config is kept
  aware = lmf_tf.quantization.int4_aware(model)
  assert isinstance(aware.get_layer('words'), Int4AwareEmbedding)
  np.testing.assert_array_equal(aware.get_layer('words').embeddings.numpy(), model.get_layer('words').embeddings.numpy())
  aware.compile(keras.optimizers.Adam(3e-3), 'sparse_categorical_crossentropy')
  before = aware.get_layer('words').embeddings.numpy().copy()
  aware.fit(IDS, LABELS, epochs=1, verbose=0)
  assert not np.allclose(aware.get_layer('words').embeddings.numpy(), before)  # the straight-through gradient
  # what it computed in training is what ships: its rule ('std') packs it, not the default 'mse'
  np.testing.assert_allclose(lmf_tf.TfliteRunner(lmf_tf.to_tflite(aware, 'int4_embeddings')).predict(IDS[:4]),
                             aware.predict(IDS[:4], verbose=0), atol=1e-4)
  path = os.path.join(tmp_path, 'aware.keras')
  aware.save(path)
  assert isinstance(keras.saving.load_model(path).get_layer('words'), Int4AwareEmbedding)


def test_a_factorized_embedding_ships_int4_once_folded_and_what_stays_int8_is_named(caplog):
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(VOCAB, 32, name='words')(ids))
  bag = keras.Model(ids, keras.layers.Dense(2, activation='softmax', name='out')(x))
  lmf_tf.compress_model(bag, rank=6)
  with pytest.raises(ConfigError, match='fold a factorized one first'):
    lmf_tf.to_tflite(bag, 'int4_embeddings')
  folded = lmf_tf.fold_projection(bag)
  packed = lmf_tf.to_tflite(folded, 'int4_embeddings')
  np.testing.assert_allclose(lmf_tf.TfliteRunner(packed).predict(IDS[:2]),
                             lmf_tf.quantization.with_int4_tables(folded).predict(IDS[:2], verbose=0), atol=1e-4)
  assert sizes.measure_parts(packed, folded, 'int4_embeddings')['embedding'] == VOCAB * 3  # rank 6: 3 bytes a row
  nested = keras.Model(ids, keras.layers.Dense(2)(TokenEmbedding(name='tokens')(ids)))
  with pytest.raises(ConfigError, match="no top-level Embedding"):
    lmf_tf.quantization.with_int4_tables(nested)
  assert 'stays int8' in caplog.text


def test_the_size_model_packs_the_tables_export_packs_and_no_other():
  """A top-level table ships int4, one inside a user's layer int8: the predicted saving is the one table's."""
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.Concatenate()([keras.layers.Embedding(VOCAB, DIM, name='words')(ids), TokenEmbedding(name='tokens')(ids)])
  model = keras.Model(ids, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
  files = {kind: lmf_tf.to_tflite(model, kind) for kind in ('int8', 'int4_embeddings')}
  predicted = {kind: sizes.predict_parts(model, kind)['total'] for kind in files}
  saved = VOCAB * DIM - VOCAB * ((DIM + 1) // 2) - sizes.OVERHEAD_BYTES['int4_table']  # one table, not two
  assert predicted['int8'] - predicted['int4_embeddings'] == saved + 12  # the int8 table's own scale metadata
  assert abs(saved - (len(files['int8']) - len(files['int4_embeddings']))) <= 400


def test_refusals_name_the_argument_and_the_model():
  class Subclassed(keras.Model):
    def __init__(self):
      super().__init__()
      self.words = keras.layers.Embedding(VOCAB, DIM)

    def call(self, ids):
      return self.words(ids)

  with pytest.raises(ConfigError, match='is subclassed; int4 tables need a functional or Sequential'):
    lmf_tf.quantization.int4_aware(Subclassed())
  with pytest.raises(ConfigError, match=r"with_int4_tables\(rule='max'\)"):
    lmf_tf.quantization.with_int4_tables(bilstm(), rule='max')
  with pytest.raises(ConfigError, match='to_tflite.kind=.int4.'):
    lmf_tf.to_tflite(bilstm(), 'int4')
