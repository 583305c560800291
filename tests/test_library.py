"""lmf_tf as a library, on plain Keras models built the way a user builds them: functional, Sequential, subclassed,
nested, two embeddings, a tied softmax, a custom training loop; saved, reloaded and exported."""

import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import lmf_tf
from lmf_tf.compression import online, swap
from lmf_tf.errors import ConfigError

V, D = 300, 16


def data(n=96, seed=0, length=9, vocab=V):
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, vocab, size=(n, length)).astype(np.int32)
  ids[::3, 6:] = 0  # padding
  return ids, (ids[:, 0] % 2).astype(np.int64)


def functional_bilstm():
  ids = keras.Input((None,), dtype='int32', name='ids')
  x = keras.layers.Embedding(V, D, mask_zero=True, name='words')(ids)
  x = keras.layers.Bidirectional(keras.layers.LSTM(8), name='bilstm')(x)
  return keras.Model(ids, keras.layers.Dense(2, activation='softmax', name='out')(x))


def sequential_average():
  return keras.Sequential([keras.Input((None,), dtype='int32'), keras.layers.Embedding(V, D, mask_zero=True, name='words'),
                           keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation='softmax')])


class Subclassed(keras.Model):
  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.words = keras.layers.Embedding(V, D, name='words')
    self.out = keras.layers.Dense(2, activation='softmax')

  def call(self, ids):
    return self.out(keras.ops.mean(self.words(ids), axis=1))


class Encoder(keras.layers.Layer):
  """A user's layer with an embedding inside it."""

  def __init__(self, **kwargs):
    super().__init__(**kwargs)
    self.words = keras.layers.Embedding(V, D, name='words')
    self.proj = keras.layers.Dense(8, activation='relu')

  def call(self, ids):
    return self.proj(keras.ops.mean(self.words(ids), axis=1))


def nested():
  ids = keras.Input((None,), dtype='int32')
  return keras.Model(ids, keras.layers.Dense(2, activation='softmax')(Encoder(name='encoder')(ids)))


def two_embeddings():
  words, chars = keras.Input((None,), dtype='int32', name='w'), keras.Input((None,), dtype='int32', name='c')
  a = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(V, D, name='words')(words))
  b = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(60, 12, name='chars')(chars))
  return keras.Model([words, chars], keras.layers.Dense(2, activation='softmax')(keras.layers.Concatenate()([a, b])))


def compiled(model):
  model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


def embedding_of(model, name='words'):
  return next(l for l in model._flatten_layers() if l.name == name)


BUILDERS = {'functional': functional_bilstm, 'sequential': sequential_average, 'subclassed': Subclassed,
            'nested': nested}


@pytest.mark.parametrize('kind', sorted(BUILDERS))
def test_callback_compresses_the_very_layer_of_the_users_model_once(kind, monkeypatch, capsys):
  keras.utils.set_random_seed(1)
  model = compiled(BUILDERS[kind]())
  model(data(2)[0])  # built, so the layer object can be held
  layer = embedding_of(model)
  calls = []
  monkeypatch.setattr(swap, 'compress_layer', lambda *a, **k: calls.append(1) or lmf_tf.compression.factorization
                      .compress_layer(*a, **k))
  callback = lmf_tf.OnlineCompression(reduction=90, at_step=4)
  ids, labels = data()
  model.fit(ids, labels, batch_size=16, epochs=2, callbacks=[callback], verbose=0)
  k = lmf_tf.factorization.rank_for_reduction(90, V, D)
  assert layer is embedding_of(model) and isinstance(layer, keras.layers.Embedding)
  assert layer.rank == k and [tuple(w.shape) for w in layer.weights] == [(V, k), (k, D)]
  assert len(calls) == 1 and callback.swap_steps == [4] and int(model.optimizer.iterations) == 12
  assert sum(int(np.prod(w.shape)) for w in model.weights if 'words' in w.path) == k * (V + D)
  assert np.isfinite(model.evaluate(ids, labels, verbose=0)[0])
  shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith('OnlineCompression')]
  assert shown == [f'OnlineCompression after step 4: {callback.reports[0].summary()}']  # verbose=1, once


@pytest.mark.parametrize('at_step', [6, 12])  # 6 steps an epoch: the end of the first epoch, the last step of fit
def test_a_swap_due_at_the_end_of_an_epoch_comes_before_the_next_callbacks_see_it(at_step):
  keras.utils.set_random_seed(3)
  model = compiled(sequential_average())
  ranks = []
  watcher = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ranks.append(getattr(embedding_of(model), 'rank', None)))
  callback = lmf_tf.OnlineCompression(rank=3, at_step=at_step, verbose=0)
  with warnings.catch_warnings():
    warnings.filterwarnings('error', message='OnlineCompression')  # no "never reached" warning
    model.fit(*data(), batch_size=16, epochs=2, callbacks=[callback, watcher], verbose=0)
  assert callback.swap_steps == [at_step] and int(model.optimizer.iterations) == 12
  assert ranks == ([3, 3] if at_step == 6 else [None, 3])


def test_training_in_several_fits_warns_only_when_the_last_ends_before_the_swap():
  keras.utils.set_random_seed(3)
  model = compiled(sequential_average())
  callback = lmf_tf.OnlineCompression(rank=3, at_step=9, verbose=0)
  callback.expect_more_fits = True
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    model.fit(*data(), batch_size=16, epochs=1, callbacks=[callback], verbose=0)  # steps 1-6: not yet
    callback.expect_more_fits = False
    model.fit(*data(), batch_size=16, epochs=1, callbacks=[callback], verbose=0)  # steps 7-12: swaps at 9
  assert callback.swap_steps == [9] and not [w for w in caught if 'OnlineCompression' in str(w.message)]
  with pytest.warns(UserWarning, match=r'OnlineCompression\(at_step=99\): training ended at step 6'):
    model = compiled(sequential_average())
    model.fit(*data(), batch_size=16, epochs=1, callbacks=[lmf_tf.OnlineCompression(rank=3, at_step=99)], verbose=0)


def test_swap_keeps_every_other_weight_and_optimizer_slot():
  keras.utils.set_random_seed(2)
  model = compiled(functional_bilstm())
  ids, labels = data()
  model.fit(ids, labels, batch_size=32, epochs=1, verbose=0)
  weights = {w.path: w.numpy().copy() for w in model.weights if 'words' not in w.path}
  slots = {v.name: v.numpy().copy() for v in model.optimizer.variables if 'words' not in v.name and v.name != 'learning_rate'}
  w = model.get_layer('words').embeddings.numpy()
  (report,) = lmf_tf.compress_model(model, rank=3)
  assert {w.path: w.numpy() for w in model.weights if 'words' not in w.path}.keys() == weights.keys()
  for path, value in weights.items():
    np.testing.assert_array_equal(next(v for v in model.weights if v.path == path).numpy(), value)
  carried = {v.name: v.numpy() for v in model.optimizer.variables}
  for name, value in slots.items():
    np.testing.assert_array_equal(carried[name], value, err_msg=name)
  assert not any('words_embeddings' in name for name in carried)  # no slot of the removed matrix
  # The model equals the uncompressed one with W replaced by its best rank-3 approximation.
  reference = functional_bilstm()
  reference.set_weights(_weights_with(model, reference, w, 3))
  np.testing.assert_allclose(model.predict(ids, verbose=0), reference.predict(ids, verbose=0), atol=1e-5)
  assert report.reconstruction_error == pytest.approx(np.linalg.norm(w - model.get_layer('words').full_matrix()),
                                                      rel=1e-4)
  model.fit(ids, labels, batch_size=32, epochs=1, verbose=0)  # trains on at once
  assert int(model.optimizer.iterations) == 6


def _weights_with(model, reference, w, k):
  """`reference`'s weights: W_k for its embedding, `model`'s for the rest (in order)."""
  svd = lmf_tf.factorization.truncated_svd(w, k)
  others = iter(v.numpy() for v in model.weights if 'words' not in v.path)
  return [svd.left @ svd.right if 'words' in v.path else next(others) for v in reference.weights]


def test_two_embeddings_all_by_default_or_those_named():
  ids, labels = data()
  chars = np.random.default_rng(3).integers(1, 60, size=ids.shape).astype(np.int32)
  model = compiled(two_embeddings())
  model.fit([ids, chars], labels, epochs=1, verbose=0, callbacks=[lmf_tf.OnlineCompression(rank=2, at_step=1)])
  assert embedding_of(model, 'words').rank == embedding_of(model, 'chars').rank == 2
  model = compiled(two_embeddings())
  model.fit([ids, chars], labels, epochs=1, verbose=0,
            callbacks=[lmf_tf.OnlineCompression(rank=2, at_step=1, layers=['chars'])])
  assert not hasattr(embedding_of(model, 'words'), 'rank') and embedding_of(model, 'chars').rank == 2
  with pytest.raises(ConfigError, match=r"layers=\['word'\]\): model .* has no embedding named 'word'; its embeddings "
                                        r"are 'words', 'chars'"):
    compiled(two_embeddings()).fit([ids, chars], labels, epochs=1, verbose=0,
                                   callbacks=[lmf_tf.OnlineCompression(rank=2, at_step=1, layers=['word'])])


class TiedSoftmax(keras.layers.Layer):
  """Next-word logits from the embedding matrix, read through the embedding layer (`embeddings` property)."""

  def __init__(self, embedding, **kwargs):
    super().__init__(**kwargs)
    self.embedding = embedding

  def call(self, h):
    return keras.ops.matmul(h, keras.ops.transpose(self.embedding.embeddings))


class HoldsTheVariable(keras.layers.Layer):
  def __init__(self, variable, **kwargs):
    super().__init__(**kwargs)
    self.tied = variable

  def call(self, h):
    return keras.ops.matmul(h, keras.ops.transpose(self.tied))


def test_tied_softmax_is_factorized_through_the_property_or_refused_when_it_holds_the_variable():
  ids = keras.Input((None,), dtype='int32')
  embedding = keras.layers.Embedding(V, D, name='words')
  h = keras.layers.GlobalAveragePooling1D()(embedding(ids))
  model = keras.Model(ids, TiedSoftmax(embedding)(h))
  x, _ = data(8)
  w = embedding.embeddings.numpy()
  lmf_tf.compress_model(model, rank=4)
  svd = lmf_tf.factorization.truncated_svd(w, 4)
  w4 = svd.left @ svd.right
  expected = np.stack([w4[row].mean(0) for row in x]) @ w4.T  # no mask: every position is averaged
  np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)

  embedding = keras.layers.Embedding(V, D, name='words')
  h = keras.layers.GlobalAveragePooling1D()(embedding(ids))
  embedding.build()
  model = keras.Model(ids, HoldsTheVariable(embedding.embeddings, name='softmax')(h))
  with pytest.raises(ConfigError, match="embedding 'words' is tied to layer 'softmax'"):
    lmf_tf.compress_model(model, rank=4)


@pytest.mark.parametrize('kwargs, message', [
    (dict(reduction=150, at_step=5), r'reduction=150: the reduction R must be a percentage strictly between 0 and 100'),
    (dict(reduction='90', at_step=5), r"reduction='90'"),
    (dict(rank=3.7, at_step=5), r'rank=3.7: the rank k must be a positive integer'),
    (dict(rank=True, at_step=5), r'rank=True'),
    (dict(rank=2), r'give exactly one of at_step=, at_epoch= and at_dev_peak='),
    (dict(rank=2, reduction=50, at_step=1), r'give exactly one of reduction= \(R, percent\) and rank='),
    (dict(rank=2, at_step=-1), r'at_step=-1'),
    (dict(rank=2, at_step=1, gradual_factors=(2, 4), gradual_every_steps=5), r'gradual_factors=\(2, 4\)'),
])
def test_impossible_arguments_are_refused_when_the_callback_is_built(kwargs, message):
  with pytest.raises(ConfigError, match=r'OnlineCompression.*' + message):
    lmf_tf.OnlineCompression(**kwargs)


def test_what_needs_the_model_is_refused_before_the_first_step():
  ids, labels = data()
  model = compiled(sequential_average())
  with pytest.raises(ConfigError, match=r"OnlineCompression: reduction=99.99 leaves rank k=0 for V=300, d=16.*"
                                        r"\(embedding 'words'\)"):
    model.fit(ids, labels, epochs=1, verbose=0, callbacks=[lmf_tf.OnlineCompression(reduction=99.99, at_step=3)])
  with pytest.raises(ConfigError, match=r'rank=16 gives rank 16, but a rank-k factorization of a 300 x 16'):
    model.fit(ids, labels, epochs=1, verbose=0, callbacks=[lmf_tf.OnlineCompression(rank=16, at_step=3)])
  assert int(model.optimizer.iterations) == 0
  no_embedding = compiled(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation='softmax')]))
  with pytest.raises(ConfigError, match="model 'sequential.*' has no keras.layers.Embedding to compress"):
    no_embedding.fit(np.ones((4, 4)), np.zeros(4), verbose=0, callbacks=[lmf_tf.OnlineCompression(rank=2, at_step=1)])


def test_a_swap_the_run_never_reaches_is_warned_about_at_the_end():
  ids, labels = data(32)
  model = compiled(sequential_average())
  with pytest.warns(UserWarning, match=r'OnlineCompression\(at_step=100\): training ended at step 2 .* not compressed'):
    model.fit(ids, labels, batch_size=16, epochs=1, verbose=0, callbacks=[lmf_tf.OnlineCompression(rank=2, at_step=100)])
  assert not hasattr(embedding_of(model), 'rank')


def test_custom_training_loop_swaps_and_keeps_training_with_the_carried_optimizer():
  keras.utils.set_random_seed(5)
  model = Subclassed()
  optimizer = keras.optimizers.Adam(1e-2)
  loss_fn = keras.losses.SparseCategoricalCrossentropy()
  ids, labels = data()

  def make_step():
    @tf.function
    def step(x, y):
      with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables))
      return loss
    return step

  step = make_step()
  for _ in range(3):
    step(ids, labels)
  dense_moment = next(v.numpy() for v in optimizer.variables if 'dense' in v.name and 'kernel_momentum' in v.name)
  optimizer, (report,) = lmf_tf.factorization.swap_embeddings(model, optimizer, rank=3)
  assert report.rank == 3 and int(optimizer.iterations) == 3
  np.testing.assert_array_equal(
      next(v.numpy() for v in optimizer.variables if 'dense' in v.name and 'kernel_momentum' in v.name), dense_moment)
  factors = [w.numpy().copy() for w in model.words.weights]
  step = make_step()  # re-traced: the old step captured the V x d variable
  losses = [float(step(ids, labels)) for _ in range(3)]
  assert all(np.isfinite(losses)) and int(optimizer.iterations) == 6
  assert all(not np.allclose(w.numpy(), f) for w, f in zip(model.words.weights, factors))


@pytest.fixture(scope='module')
def compressed_bilstm(tmp_path_factory):
  """A trained functional BiLSTM compressed online, saved as .keras; with its inputs and predictions."""
  keras.utils.set_random_seed(6)
  model = compiled(functional_bilstm())
  ids, labels = data()
  model.fit(ids, labels, batch_size=16, epochs=2, verbose=0, callbacks=[lmf_tf.OnlineCompression(rank=3, at_step=6)])
  path = str(tmp_path_factory.mktemp('saved') / 'model.keras')
  model.save(path)
  return model, path, ids, model.predict(ids, verbose=0)


# The Keras classes that `import lmf_tf` registers (`lmf_tf>Name`); LstmRecurrenceCell is LowRankLSTM's cell.
LIBRARY_KERAS_CLASSES = ('CompressibleDense', 'CompressibleEmbedding', 'CompressibleLSTM', 'CompressibleLSTMCell',
                         'CyclicalLearningRate',
                         'CyclicallyAnnealedLearningRate', 'FactorizedOwner', 'FrequencyBlockEmbedding',
                         'Int4AwareEmbedding', 'LowRankDense', 'LowRankLSTM', 'LstmRecurrenceCell',
                         'PackedInt4Embedding', 'Restarted', 'TTDense', 'TTEmbedding')


@pytest.mark.slow  # a fresh process starting TensorFlow
def test_a_fresh_process_imports_keras_then_lmf_tf_and_loads_the_keras_file(compressed_bilstm):
  """`import keras` loads nothing of lmf_tf; `import lmf_tf` registers the library's Keras classes and loads no
  module of the study and no package that Keras had not loaded; the `.keras` file loads; the study's classes are
  registered when the study is imported."""
  _, path, ids, expected = compressed_bilstm
  np.save(path + '.ids.npy', ids)
  # A second file: the embedding in frequency blocks and the BiLSTM's and output's matrices factorized.
  keras.utils.set_random_seed(8)
  whole = compiled(functional_bilstm())
  swap = lmf_tf.OnlineCompression(rank=3, at_step=0, kernels=lmf_tf.LowRankKernels(rank=2),
                                  frequency=lmf_tf.FrequencyRanks(blocks=2), verbose=0)
  whole.fit(ids, data()[1], batch_size=32, epochs=1, verbose=0, callbacks=[swap])
  whole.save(path + '.whole.keras')
  whole_expected = whole.predict(ids, verbose=0)
  script = textwrap.dedent(f'''
      import sys
      import keras
      import numpy as np
      from keras.src.saving import object_registration
      def registered():
        return sorted(k for k in object_registration.GLOBAL_CUSTOM_OBJECTS if k.startswith('lmf_tf>'))
      print(sorted(m for m in sys.modules if m.split('.')[0] == 'lmf_tf'), registered())
      before = set(sys.modules)
      import lmf_tf
      new = set(sys.modules) - before
      print(sorted(m for m in new if m.startswith(('lmf_tf.text', 'lmf_tf.lm', 'lmf_tf.harness', 'lmf_tf.cli'))))
      # Packages beyond the standard library that `import keras` had not loaded (tests/test_wheel.py checks the
      # same in an environment without the extras, where Keras does not load pandas or matplotlib either).
      print(sorted({{m.split('.')[0] for m in new}} - set(sys.stdlib_module_names) - {{'lmf_tf'}}))
      print(registered())
      model = keras.saving.load_model({path!r})
      np.save({path + '.fresh.npy'!r}, model.predict(np.load({path + '.ids.npy'!r}), verbose=0))
      print(type(model.get_layer('words')).__name__, model.get_layer('words').rank)
      whole = keras.saving.load_model({path + '.whole.keras'!r})
      np.save({path + '.whole.npy'!r}, whole.predict(np.load({path + '.ids.npy'!r}), verbose=0))
      print(type(whole.get_layer('words')).__name__, type(whole.get_layer('bilstm').forward_layer).__name__,
            whole.get_layer('bilstm').forward_layer.ranks)
      functions = (keras.layers.Layer.get_build_config, keras.layers.Layer.build_from_config,
                   keras.Model.build_from_config, keras.layers.Layer.get_config, keras.Model.from_config)
      print([f.__module__.split('.')[0] + ':' + f.__qualname__ for f in functions])
      import lmf_tf.text.models, lmf_tf.lm.models, lmf_tf.lm.schedules
      print(registered())
  ''')
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=180,
                          env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3'})
  assert result.returncode == 0, result.stderr[-2000:]
  library = sorted(f'lmf_tf>{c}' for c in LIBRARY_KERAS_CLASSES)
  study = ('lmf_tf>WordDropout', 'lmf_tf>LstmLanguageModel', 'lmf_tf>DelayedEpochDecay')
  # lmf_tf changes no function of Keras: these are Keras's own.
  functions = ['keras:Layer.get_build_config', 'keras:Layer.build_from_config', 'keras:Model.build_from_config',
               'keras:Layer.get_config', 'keras:Model.from_config']
  assert result.stdout.splitlines() == ['[] []', '[]', '[]', str(library), 'CompressibleEmbedding 3',
                                        "FrequencyBlockEmbedding CompressibleLSTM {'kernel': 2, 'recurrent_kernel': 2}",
                                        str(functions), str(sorted(library + list(study)))]
  np.testing.assert_allclose(np.load(path + '.fresh.npy'), expected, atol=1e-6)
  np.testing.assert_allclose(np.load(path + '.whole.npy'), whole_expected, atol=1e-6)


def test_keras_file_holds_no_slots_of_the_removed_matrix(tmp_path):
  keras.utils.set_random_seed(7)
  ids, labels = data()
  sizes = {}
  for name, rank in (('full', None), ('compressed', 3)):
    model = compiled(sequential_average())
    model.fit(ids, labels, epochs=1, verbose=0)
    if rank:
      lmf_tf.compress_model(model, rank=rank)
    model.save(tmp_path / f'{name}.keras')
    sizes[name] = os.path.getsize(tmp_path / f'{name}.keras')
  # W and its two Adam moments are 3 x 300 x 16 floats (57.6 kB); the factors and their moments 3 x 3 x 316.
  assert sizes['full'] - sizes['compressed'] > 0.9 * 3 * 4 * (V * D - 3 * (V + D))


def test_savedmodel_export_and_the_papers_checkpoint_of_a_reloaded_model(compressed_bilstm, tmp_path):
  model, path, ids, expected = compressed_bilstm
  model.export(str(tmp_path / 'savedmodel'), verbose=False)
  loaded = tf.saved_model.load(str(tmp_path / 'savedmodel'))  # held: its functions hold its variables weakly
  served = loaded.serve(tf.constant(ids))
  np.testing.assert_allclose(served.numpy(), expected, atol=1e-6)
  size = lmf_tf.size.save_inference_checkpoint(model, str(tmp_path / 'ckpt'))
  assert size.total_bytes == sum(os.path.getsize(tmp_path / 'ckpt' / f) for f in os.listdir(tmp_path / 'ckpt')
                                 if f.startswith('model.'))
  keras.saving.load_model(path)  # a second load in this process: Keras renames the BiLSTM's inner layers
  reloaded = keras.saving.load_model(path)
  for w in reloaded.weights:
    w.assign(np.zeros(w.shape, w.dtype))
  lmf_tf.size.restore_inference_checkpoint(reloaded, str(tmp_path / 'ckpt'))
  np.testing.assert_allclose(reloaded.predict(ids, verbose=0), expected, atol=1e-6)


def test_checkpoint_of_another_rank_is_refused_by_name(compressed_bilstm, tmp_path):
  model, _, _, _ = compressed_bilstm
  lmf_tf.size.save_inference_checkpoint(model, str(tmp_path / 'ckpt'))
  other = functional_bilstm()
  with pytest.raises(lmf_tf.errors.LmfError, match=r'inference checkpoint .*ckpt/model (does not hold|cannot be read)'):
    lmf_tf.size.restore_inference_checkpoint(other, str(tmp_path / 'ckpt'))


def _fold_models():
  ids = keras.Input((None,), dtype='int32')

  def head(x):
    return keras.layers.Dense(2, activation='softmax')(x)
  emb = lambda: keras.layers.Embedding(V, D, mask_zero=True, name='words')
  return {
      'bilstm': functional_bilstm(),
      'average_dense': sequential_average(),
      'gru': keras.Model(ids, head(keras.layers.GRU(6)(keras.layers.Dropout(0.1)(emb()(ids))))),
      'conv1d': keras.Model(ids, head(keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(5, 3, padding='same')(
          keras.layers.Embedding(V, D, name='words')(ids))))),
  }


@pytest.mark.parametrize('kind', ['bilstm', 'average_dense', 'gru', 'conv1d'])
def test_fold_projection_into_the_next_layer_gives_the_same_outputs(kind):
  keras.utils.set_random_seed(8)
  model = _fold_models()[kind]
  ids, _ = data(16)
  model(ids)
  lmf_tf.compress_model(model, rank=4)
  folded = lmf_tf.fold_projection(model)
  assert type(folded.get_layer('words')) is keras.layers.Embedding and folded.get_layer('words').output_dim == 4
  assert folded.count_params() < model.count_params()
  np.testing.assert_allclose(folded.predict(ids, verbose=0), model.predict(ids, verbose=0), atol=1e-5)


def test_fold_projection_leaves_unfolded_what_does_not_fold_and_says_why(caplog):
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.LayerNormalization(name='norm')(keras.layers.Embedding(V, D, name='words')(ids))
  model = keras.Model(ids, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
  lmf_tf.compress_model(model, rank=4)
  assert lmf_tf.fold_projection(model) is model
  assert "cannot be folded through 'norm' (LayerNormalization)" in caplog.text
  subclassed = Subclassed()
  subclassed(data(2)[0])
  lmf_tf.compress_model(subclassed, rank=4)
  assert lmf_tf.fold_projection(subclassed) is subclassed and 'is subclassed: no graph to fold through' in caplog.text
  plain = functional_bilstm()
  assert lmf_tf.fold_projection(plain) is plain


@pytest.mark.parametrize('kind, tolerance', [('float32', 1e-5), ('float16', 1e-2), ('int8', 5e-2)])
def test_tflite_exports_of_a_users_model_run_in_litert(compressed_bilstm, kind, tolerance):
  model, _, ids, expected = compressed_bilstm
  for candidate in (model, lmf_tf.fold_projection(model)):
    runner = lmf_tf.TfliteRunner(lmf_tf.to_tflite(candidate, kind, batch_size=4))
    outputs = np.concatenate([runner(ids[i:i + 4]) for i in range(0, 32, 4)])
    np.testing.assert_allclose(outputs, expected[:32], atol=tolerance)


def test_the_face_holds_the_verbs_and_the_submodules_by_task():
  assert lmf_tf.__version__ and set(lmf_tf.__all__) == {
      'OnlineCompression', 'LowRankKernels', 'FrequencyRanks', 'compress_model', 'fit_budget', 'fold_projection',
      'to_tflite', 'write_tflite', 'TfliteRunner', 'budget', 'errors', 'factorization', 'layers', 'quantization', 'recovery', 'schedules', 'size',
      'strings', '__version__'}
  for module in (lmf_tf, lmf_tf.budget, lmf_tf.errors, lmf_tf.factorization, lmf_tf.layers, lmf_tf.quantization,
                 lmf_tf.recovery, lmf_tf.schedules, lmf_tf.size, lmf_tf.strings):
    assert module.__doc__ and module.__all__
    for name in module.__all__:
      assert getattr(module, name).__doc__, (module.__name__, name)
  assert not hasattr(lmf_tf, 'CompressibleEmbedding') and not hasattr(lmf_tf, 'truncated_svd')  # moved, no alias
  names = [n for m in (lmf_tf.budget, lmf_tf.factorization, lmf_tf.layers, lmf_tf.quantization, lmf_tf.recovery,
                       lmf_tf.schedules, lmf_tf.size, lmf_tf.strings) for n in m.__all__] + [n for n in lmf_tf.__all__ if n[0] != '_']
  assert len(names) == len(set(names))  # each name in one place
  assert set(lmf_tf.layers.__all__ + lmf_tf.schedules.__all__ + ['Restarted']) <= set(LIBRARY_KERAS_CLASSES)


def test_a_feature_whose_extra_is_missing_says_which_extra_in_one_line(monkeypatch):
  for module in ('ai_edge_litert', 'ai_edge_litert.interpreter', 'tensorly', 'tensorly.decomposition'):
    monkeypatch.setitem(sys.modules, module, None)  # as if ai-edge-litert and tensorly were not installed
  with pytest.raises(lmf_tf.errors.MissingExtraError) as error:
    lmf_tf.TfliteRunner(b'')
  assert str(error.value) == ("TfliteRunner needs ai_edge_litert, which is not installed: "
                              "pip install 'ai-edge-litert>=2.3' (lmf_tf's litert extra)")
  with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'setup.py')) as f:
    setup_py = f.read()
  from lmf_tf import extras  # pylint: disable=g-import-not-at-top
  assert all(f"'{spec}'" in setup_py for spec in extras.EXTRA_PACKAGES.values())  # the extras install these
  with pytest.raises(ImportError, match=r"^TT-SVD \(cores_from\) needs tensorly, .*pip install 'tensorly>=0.9' \(lmf_tf's tt extra\)$"):
    layer = lmf_tf.layers.TTDense((2, 2), (2, 2), 2)
    layer.build((None, 4))
    layer.cores_from(np.eye(4))


@pytest.mark.slow  # two models trained side by side on real SST-2 sentences (make bench-callback's harness)
def test_callback_overhead_benchmark_trains_both_models_and_swaps_one(shared_tfds):
  from lmf_tf.harness import bench_callback  # pylint: disable=g-import-not-at-top
  result = bench_callback.measure_callback_overhead(rounds=1, batch_size=32, tfds_dir=shared_tfds,
                                                    max_train_examples=200)
  assert result['train_examples'] == 200 and result['steps_per_epoch'] == 7 and result['rank'] == 4
  assert all(len(result['ms_per_step'][k]) == len(result['epoch_seconds'][k]) == 1 for k in result['ms_per_step'])
  v, k = result['vocab_size'], result['rank']  # only the watched model swapped, its V x 50 embedding alone
  assert result['params']['uncompressed'] - result['params']['compressed'] == v * 50 - (v * k + k * 50)
  median = result['median_ms_per_step']  # steps of a few ms, rounded to microseconds
  assert result['step_overhead'] == pytest.approx(median['with_callback_waiting'] / median['without'] - 1, abs=0.01)
  assert all(0 < ms < 1000 * s for ms, s in zip(result['ms_per_step']['without'], result['epoch_seconds']['without']))


@pytest.mark.slow
def test_the_example_on_a_users_own_model_runs(tmp_path, repo_root):
  result = subprocess.run([sys.executable, os.path.join(repo_root, 'examples', 'own_model.py'), '--quick',
                           f'--output_dir={tmp_path}'], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=repo_root))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  swap = [line for line in lines if line.startswith('OnlineCompression after step')]
  assert len(swap) == 1 and 'Compressed words: V=' in swap[0]
  accuracy = next(line for line in lines if line.startswith('tflite int8 accuracy')).split()[-1]
  assert 0.4 < float(accuracy) <= 1
  assert {'after.keras', 'after_int8.tflite', 'before.keras'} <= set(os.listdir(tmp_path))
