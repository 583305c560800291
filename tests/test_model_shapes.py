"""lmf_tf on models nobody here wrote (examples/user_models.py, the shapes of the Keras examples): trained with the
callback, saved, reloaded in a fresh process, folded, exported to TFLite int8 and run with LiteRT; and the pieces
that make it work: embeddings nested in a user's layer, `layers=` by path, class or predicate, the default that
leaves small tables alone, a stale traced step, string models."""

import os
import sys
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import lmf_tf
from lmf_tf.compression import swap
from lmf_tf.errors import ConfigError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'examples'))
import model_shapes  # pylint: disable=g-import-not-at-top,wrong-import-position
import user_models  # pylint: disable=g-import-not-at-top,wrong-import-position

V, D, L = 300, 8, 12


def ids(n=32, seed=0):
  return np.random.default_rng(seed).integers(1, V, (n, L)).astype(np.int32)


def transformer():
  keras.utils.set_random_seed(2)
  model = user_models.transformer(V, D, L)
  model(ids(2))
  return model


# The fast set: the shapes that need lmf_tf's newer parts (an embedding nested in the user's layer, strings in,
# a subclassed model). Conv1D and BiLSTM models fold and export in test_library.py; all five run on SST-2 in the
# slow test below and in `python examples/model_shapes.py --quick` on the synthetic task.
FAST_SHAPES = ('transformer', 'strings', 'subclassed')


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
  """The fast shapes trained on the synthetic task here, then reloaded and shipped in one fresh process."""
  return model_shapes.run(quick=True, folder=str(tmp_path_factory.mktemp('shapes')), names=FAST_SHAPES)


def test_every_shape_reloads_in_a_fresh_process_compressed_with_identical_outputs(shapes):
  assert sorted(shapes) == sorted(FAST_SHAPES)
  for name, row in shapes.items():
    assert row['reloaded max difference'] < 1e-6, name
    assert row['reloaded params'] == row['params'], name
    assert not row['optimizer not reloaded'], name  # the optimizer was rebuilt for the factors before loading
    assert len(row['compressed']) == 1 and row['compressed'][0].endswith('k=1'), name


def test_every_shape_ships_as_tflite_int8_within_half_a_point_of_keras(shapes):
  for name, row in shapes.items():
    print(name, {k: row[k] for k in ('keras accuracy', 'tflite int8 accuracy', 'tflite int8 bytes',
                                     'deployable bytes')})
    assert row['keras accuracy'] > 0.8, name  # the task is learnt, so the comparison means something
    assert abs(row['tflite int8 accuracy'] - row['keras accuracy']) <= 0.005, name
  strings = shapes['strings']
  assert strings['deployable bytes'] > strings['tflite int8 bytes']  # the vocabulary and the rule, once


def test_the_default_leaves_the_position_embedding_alone_and_says_so(shapes):
  assert shapes['transformer']['left alone'] == [shapes['transformer']['left alone'][0]]
  assert shapes['transformer']['left alone'][0].endswith(' 20x16')
  assert all(not row['left alone'] for name, row in shapes.items() if name != 'transformer')


@pytest.mark.slow
def test_every_shape_on_sst2(tmp_path):
  """The numbers of docs/library.md, "Your model's shape" (python examples/model_shapes.py prints them)."""
  rows = model_shapes.run(quick=False, folder=str(tmp_path))
  assert sorted(rows) == sorted(user_models.BUILDERS)
  for name, row in rows.items():
    print(name, row)
    assert row['reloaded max difference'] < 1e-6 and row['keras accuracy'] > 0.7, name
    assert row['reloaded params'] == row['params'] and not row['optimizer not reloaded'], name
    assert abs(row['tflite int8 accuracy'] - row['keras accuracy']) <= 0.005, name
    assert row['tflite int8 bytes'] < row['before the swap: tflite int8 bytes'], name


def test_layers_takes_an_attribute_path_a_class_or_a_predicate():
  model = transformer()
  token, position = model.layers[1].token_emb, model.layers[1].pos_emb
  owner = model.layers[1].name  # token_and_position_embedding, or _1, _2 ... in one process
  assert swap.find_embeddings(model, f'{owner}.token_emb') == [token]
  assert swap.find_embeddings(model, [f'{owner}.token_emb', 'pos_emb']) == [token, position]  # 'pos_emb' ends one
  assert set(swap.find_embeddings(model, user_models.TokenAndPositionEmbedding)) == {token, position}
  assert swap.find_embeddings(model, lambda layer: layer.input_dim == L) == [position]
  assert swap.find_embeddings(model, token.name) == [token]
  with pytest.raises(ConfigError, match=r"compress_model\(layers=\['words'\]\): .* no embedding named 'words'; "
                                        rf"its embeddings are .*'{owner}\.token_emb'"):
    swap.find_embeddings(model, ['words'])
  with pytest.raises(ConfigError, match='selects none of the embeddings'):
    swap.find_embeddings(model, keras.layers.LSTM)
  with pytest.raises(ConfigError, match='give layer names or attribute paths, a layer class or a function'):
    swap.find_embeddings(model, 3)


def test_by_default_a_table_under_a_tenth_of_the_largest_is_left_alone():
  model = transformer()
  selection = swap.select_embeddings(model)
  assert selection.chosen == [model.layers[1].token_emb] and selection.left_alone == [model.layers[1].pos_emb]
  assert 'left alone: embedding' in selection.left_alone_line() and f'({L} x {D})' in selection.left_alone_line()
  reports = lmf_tf.compress_model(model, rank=2)
  assert [r.layer for r in reports] == [model.layers[1].token_emb.name]
  assert not hasattr(model.layers[1].pos_emb, 'rank')
  words, tags = keras.Input((L,), dtype='int32'), keras.Input((L,), dtype='int32')
  both = keras.Model([words, tags], keras.layers.Add()([keras.layers.Embedding(V, D)(words),
                                                        keras.layers.Embedding(V // 5, D)(tags)]))
  assert len(swap.select_embeddings(both).chosen) == 2  # a fifth of the rows: both compressed


@keras.saving.register_keras_serializable(package='test_model_shapes')
class Overriding(keras.layers.Layer):
  """A user's layer whose get_build_config and build_from_config do not call super()."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.words = keras.layers.Embedding(V, D)

  def call(self, x):
    return keras.ops.mean(self.words(x), axis=1)

  def get_build_config(self):
    return {'input_shape': (None, L)}

  def build_from_config(self, config):
    self.build(config['input_shape'])


@keras.saving.register_keras_serializable(package='test_model_shapes')
class Lazy(keras.layers.Layer):
  """A user's layer that creates its embedding in `build` and has no get_config of its own (Keras's auto-config)."""

  def __init__(self, vocab, **kwargs):
    super().__init__(**kwargs)
    self.vocab = vocab

  def build(self, input_shape):
    self.words = keras.layers.Embedding(self.vocab, D)
    self.words.build(input_shape)

  def call(self, x):
    return keras.ops.mean(self.words(x), axis=1)


# clone_model rebuilds a layer from its config alone, without its build config, so an embedding created in `build`
# comes back uncompressed there (fresh weights either way).
@pytest.mark.parametrize('make,clone_rank', [(lambda: Overriding(name='mine'), 2), (lambda: Lazy(V, name='mine'), None)],
                         ids=['overriding', 'lazy'])
def test_a_users_layer_of_any_make_reloads_factorized_and_clones(make, clone_rank, tmp_path):
  inputs = keras.Input((L,), dtype='int32')
  model = keras.Model(inputs, keras.layers.Dense(2)(make()(inputs)))
  user_class = type(model.layers[1])
  lmf_tf.compress_model(model, rank=2)
  assert type(model.layers[1]).__name__ == f'Factorized{user_class.__name__}'
  assert isinstance(model.layers[1], user_class)
  model.save(tmp_path / 'm.keras')
  reloaded = keras.saving.load_model(tmp_path / 'm.keras')
  assert reloaded.layers[1].words.rank == 2 and reloaded.count_params() == model.count_params()
  np.testing.assert_array_equal(reloaded(ids()), model(ids()))
  copy = keras.Model.from_config(model.get_config())
  assert copy.layers[1].words.rank == 2 and copy.count_params() == model.count_params()  # fresh factors
  clone = keras.models.clone_model(model)
  assert getattr(clone.layers[1].words, 'rank', None) == clone_rank and clone(ids()).shape == (32, 2)


def test_a_training_step_traced_before_the_swap_fails_loudly():
  model = keras.Sequential([keras.Input((L,), dtype='int32'), keras.layers.Embedding(V, D),
                            keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
  optimizer = keras.optimizers.Adam()
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

  @tf.function
  def step(x, y):
    with tf.GradientTape() as tape:
      loss = loss_fn(y, model(x, training=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return loss

  step(ids(), np.zeros(32))
  lmf_tf.factorization.swap_embeddings(model, optimizer, rank=2)
  with pytest.raises(tf.errors.InvalidArgumentError):
    step(ids(), np.zeros(32))


def test_full_matrix_and_the_swap_raise_no_deprecation_warning():
  model = keras.Sequential([keras.Input((L,), dtype='int32'), keras.layers.Embedding(V, D)])
  with warnings.catch_warnings():
    warnings.simplefilter('error', DeprecationWarning)
    lmf_tf.compress_model(model, rank=2)
    assert model.layers[0].full_matrix().shape == (V, D)


def test_fold_projection_folds_what_it_can_and_returns_the_rest_as_it_is(caplog):
  plain = keras.Sequential([keras.Input((L,), dtype='int32'), keras.layers.Embedding(V, D),
                            keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
  assert lmf_tf.fold_projection(plain) is plain  # nothing to fold
  model = transformer()
  lmf_tf.compress_model(model, rank=2)
  assert lmf_tf.fold_projection(model) is model and 'nested inside another layer' in caplog.text


def test_a_string_model_ships_split_and_its_runner_gives_the_keras_outputs(tmp_path):
  texts = ['The cat sat.', 'a  dog\tran FAR!', "it's   (very) good-ish", 'Ünïcode Straße', '', 'unknown words here']
  vectorize = keras.layers.TextVectorization(max_tokens=40, output_sequence_length=6)
  vectorize.adapt(texts[:3])
  rule = lmf_tf.strings.TextRule.of_layer(vectorize)
  assert [list(r) for r in rule.ids(texts)] == vectorize(tf.constant(texts)).numpy().tolist()
  inputs = keras.Input((1,), dtype='string')
  x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(40, D)(vectorize(inputs)))
  model = keras.Model(inputs, keras.layers.Dense(2, activation='softmax')(x))
  lmf_tf.compress_model(model, rank=2)
  with pytest.raises(ConfigError, match='takes strings.*lmf_tf.strings.write_string_model'):
    lmf_tf.to_tflite(model)
  sizes = lmf_tf.strings.write_string_model(model, tmp_path / 'shipped', kind='float32')
  assert sizes['total'] == sum(os.path.getsize(tmp_path / 'shipped' / f) for f in os.listdir(tmp_path / 'shipped'))
  runner = lmf_tf.strings.StringModelRunner(tmp_path / 'shipped')
  np.testing.assert_allclose(runner.predict(texts), model.predict(tf.constant(texts)[:, None], verbose=0), atol=1e-5)
  with pytest.raises(ConfigError, match='missing .*model.tflite'):
    lmf_tf.strings.StringModelRunner(tmp_path)
  custom = keras.layers.TextVectorization(standardize=lambda s: s)
  with pytest.raises(ConfigError, match='standardize=.*a custom function runs only in TensorFlow'):
    lmf_tf.strings.TextRule.of_layer(custom)


@keras.saving.register_keras_serializable(package='test_model_shapes')
class Classifier(keras.Model):
  """A subclassed model holding the user's embedding layer: the model itself carries the record."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.embed = user_models.TokenAndPositionEmbedding(L, V, D)
    self.out = keras.layers.Dense(2, activation='softmax')

  def call(self, x):
    return self.out(keras.ops.mean(self.embed(x), axis=1))


def test_a_nested_embedding_reloads_factorized_in_a_subclassed_model_with_its_optimizer(tmp_path):
  keras.utils.set_random_seed(4)
  model = Classifier()
  model.compile('adam', 'sparse_categorical_crossentropy')
  model.fit(ids(), np.zeros(32), epochs=2, verbose=0, callbacks=[lmf_tf.OnlineCompression(rank=3, at_epoch=1)])
  model.save(tmp_path / 'm.keras')
  with warnings.catch_warnings():
    warnings.filterwarnings('error', message='Skipping variable loading')  # the optimizer was built for the factors
    reloaded = keras.saving.load_model(tmp_path / 'm.keras')
  assert [getattr(l, 'rank', None) for l in reloaded._flatten_layers() if isinstance(l, keras.layers.Embedding)
          ].count(3) == 1
  np.testing.assert_array_equal(reloaded(ids()), model(ids()))
