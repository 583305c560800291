import keras
import numpy as np
import pytest

from lmf_tf.compression import factorization
from lmf_tf.compression import online, swap
from lmf_tf.compression.rank import rank_for_reduction, reduction_of_rank, validate_rank
from lmf_tf.harness import bench_scale
from lmf_tf.text import models
from lmf_tf.errors import ConfigError
from lmf_tf.compression.embedding import CompressibleEmbedding


def test_rank_formula_worked_examples():
  assert rank_for_reduction(90, 14000, 50) == 4
  assert rank_for_reduction(90, 10000, 300) == 29
  assert rank_for_reduction(50, 10000, 50) == 24  # floor(0.5 * 49.75)
  # Exact arithmetic: (1 - 0.3) * 100 * 100 / 200 = 35 exactly, not 34.99999.
  assert rank_for_reduction(30, 100, 100) == 35


def test_rank_reaches_the_reduction_asked_for():
  for r in (10, 30, 50, 70, 90, 95, 99):
    k = rank_for_reduction(r, 13827, 300)
    assert reduction_of_rank(k, 13827, 300) >= r
    assert reduction_of_rank(k + 1, 13827, 300) < r


@pytest.mark.parametrize('r', [0, 100, -5, 150])
def test_reduction_outside_0_100_is_rejected(r):
  with pytest.raises(ConfigError, match='between 0 and 100'):
    rank_for_reduction(r, 1000, 50)


def test_a_fraction_for_r_is_warned_about():
  import lmf_tf  # pylint: disable=g-import-not-at-top
  with pytest.warns(UserWarning, match=r'reduction=0\.9 removes 0\.9% .* \(reduction=90 removes 90%\)'):
    lmf_tf.OnlineCompression(reduction=0.9, at_epoch=1)
  assert rank_for_reduction(0.9, 2000, 64) == 61  # what it means: 0.9% fewer parameters


def test_reduction_that_leaves_rank_zero_names_the_largest_possible_r():
  with pytest.raises(ConfigError, match=r'reduction=99 leaves rank k=0 for V=100, d=10; R must be at most 89\.0000'):
    rank_for_reduction(99, 100, 10)


def test_rank_that_would_not_shrink_the_layer_is_rejected():
  # 10,000 x 50: k < 49.75, so 49 is the largest useful rank.
  assert validate_rank(49, 10000, 50) == 49
  with pytest.raises(ConfigError, match=r'1 <= k <= 49'):
    validate_rank(50, 10000, 50)
  with pytest.raises(ConfigError, match=r'--rank=0: the rank k must be a positive integer'):
    validate_rank(0, 10000, 50, name='--rank')
  with pytest.raises(ConfigError, match=r'rank=3.5: the rank k must be a positive integer'):
    validate_rank(3.5, 10000, 50)


def test_truncated_svd_error_equals_discarded_singular_values():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(60, 12)).astype(np.float32)
  svd = factorization.truncated_svd(w, 5)
  s = np.linalg.svd(w.astype(np.float64), compute_uv=False)
  error = np.linalg.norm(w - svd.left @ svd.right)
  assert error == pytest.approx(np.sqrt(np.sum(s[5:] ** 2)), rel=1e-4)
  assert svd.discarded_error == pytest.approx(error, rel=1e-4)
  assert svd.energy_kept == pytest.approx(np.sum(s[:5] ** 2) / np.sum(s ** 2), rel=1e-6)


def tiny_model(kind='lstm', vocab=50, dim=12):
  config = models.ModelConfig(vocab_size=vocab, embedding_dim=dim, lstm_units=6, dan_hidden=(16, 8), dropout=0.0)
  model = models.MODELS[kind].build(config)
  model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
  return model


def batch(vocab=50, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, vocab, size=(6, 7)).astype(np.int32)
  ids[0, 4:] = 0  # padding
  return ids, rng.integers(0, 2, size=(6,))


@pytest.mark.parametrize('kind', ['lstm', 'dan'])
def test_swap_gives_the_model_with_the_rank_k_reconstructed_embedding(kind):
  keras.utils.set_random_seed(1)
  model = tiny_model(kind)
  ids, _ = batch()
  layer = models.word_embedding(model)
  w = layer.full_matrix()
  svd = factorization.truncated_svd(w, 3)
  reference = tiny_model(kind)  # same architecture, uncompressed, holding W_k = U_k Σ_k V_kᵀ
  reference.set_weights(model.get_weights())
  models.word_embedding(reference).embeddings.assign(svd.left @ svd.right)

  (report,) = swap.compress_model(model, rank=3)

  np.testing.assert_allclose(model(ids), reference(ids), atol=1e-5)
  assert layer.is_compressed and layer.rank == 3
  assert [tuple(v.shape) for v in layer.weights] == [(50, 3), (3, 12)]
  assert report.params_before == 50 * 12 and report.params_after == 3 * 62
  np.testing.assert_allclose(np.linalg.norm(w - layer.full_matrix()), report.reconstruction_error, rtol=1e-4)
  np.testing.assert_allclose(report.reconstruction_error, svd.discarded_error, rtol=1e-6)
  assert models.count_params(model) == models.count_params(reference) - 50 * 12 + 3 * 62


def test_one_training_step_after_the_swap_changes_the_factors_and_keeps_other_weights_trained():
  keras.utils.set_random_seed(2)
  model = tiny_model('lstm')
  ids, labels = batch()
  model.train_on_batch(ids, labels)
  lstm_before = model.get_layer('lstm').get_weights()
  swap.compress_model(model, rank=4)  # also gives the compiled model an optimizer for the factors
  # Every other trained weight is kept by the swap.
  for a, b in zip(lstm_before, model.get_layer('lstm').get_weights()):
    np.testing.assert_array_equal(a, b)
  layer = models.word_embedding(model)
  before = [v.numpy().copy() for v in model.trainable_variables]
  assert model.optimizer.iterations.numpy() == 1
  model.train_on_batch(ids, labels)
  assert model.optimizer.iterations.numpy() == 2
  for v, old in zip(model.trainable_variables, before):
    assert not np.allclose(v.numpy(), old), f'{v.path} did not change'
  assert {id(v) for v in layer.trainable_variables} <= {id(v) for v in model.trainable_variables}


def test_compressed_layer_round_trips_through_get_config():
  layer = CompressibleEmbedding(30, 8, rank=3, name='e')
  clone = CompressibleEmbedding.from_config(layer.get_config())
  clone.build()
  assert clone.rank == 3 and [tuple(v.shape) for v in clone.weights] == [(30, 3), (3, 8)]


def test_compressing_a_compressed_model_again_takes_the_best_lower_rank_of_its_product():
  model = tiny_model('dan')
  swap.compress_model(model, rank=4)
  layer = models.word_embedding(model)
  product = layer.full_matrix()
  (report,) = swap.compress_model(model, rank=2)
  assert layer.rank == 2 and report.params_before == 4 * 62 and report.params_after == 2 * 62
  svd = factorization.truncated_svd(product, 2)
  np.testing.assert_allclose(layer.full_matrix(), svd.left @ svd.right, atol=1e-5)


def test_online_callback_swaps_at_the_requested_step():
  keras.utils.set_random_seed(4)
  model = tiny_model('dan')
  ids, labels = batch()
  callback = online.OnlineCompression(rank=2, at_step=3)
  model.fit(np.tile(ids, (5, 1)), np.tile(labels, 5), batch_size=6, epochs=1, callbacks=[callback], verbose=0)
  assert callback.swap_step == 3
  assert models.word_embedding(model).rank == 2
  assert model.optimizer.iterations.numpy() == 5


def test_gram_route_matches_the_svd_on_a_tall_matrix():
  rng = np.random.default_rng(1)
  # Decaying spectrum, as trained embeddings have; 1,000 x 20 in blocks of 64 rows (not a divisor of 1,000).
  w = (rng.normal(size=(1000, 20)) * np.geomspace(10, 0.01, 20)).astype(np.float32)
  exact = factorization.truncated_svd(w, 6, method='svd')
  gram = factorization.gram_truncated_svd(w, 6, chunk_rows=64)
  np.testing.assert_allclose(gram.singular_values, exact.singular_values, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(gram.left @ gram.right, exact.left @ exact.right, atol=1e-4)
  assert gram.discarded_error == pytest.approx(np.linalg.norm(w - gram.left @ gram.right), rel=1e-4)
  assert gram.left.dtype == gram.right.dtype == np.float32 and gram.left.shape == (1000, 6)
  with pytest.raises(ConfigError, match='SVD method'):
    factorization.truncated_svd(w, 6, method='qr')


def test_auto_method_uses_the_gram_route_only_for_large_tall_matrices(monkeypatch):
  calls = []
  monkeypatch.setattr(factorization, 'gram_truncated_svd', lambda m, k: calls.append(m.shape))
  monkeypatch.setattr(factorization, 'GRAM_MIN_ELEMENTS', 1000)
  factorization.truncated_svd(np.ones((100, 5), np.float32), 2)  # 500 entries: plain SVD
  factorization.truncated_svd(np.ones((40, 30), np.float32), 2)  # 1,200 entries but not tall: plain SVD
  factorization.truncated_svd(np.ones((400, 5), np.float32), 2)  # Gram route
  assert calls == [(400, 5)]


def test_compression_scale_benchmark_on_a_small_vocabulary():
  rows = bench_scale.compression_scale(vocab_sizes=(2000,), dim=30, reduction=90, full_svd_up_to=2000,
                                      echo=lambda _: None)
  (row,) = rows
  assert row['rank'] == rank_for_reduction(90, 2000, 30) == 2
  assert row['matrix_bytes'] == 2000 * 30 * 4
  # Both SVD routes and the whole swap were timed (their rows exist), and the energy kept is that of rank 2 of
  # 30 near-equal singular values of a N(0, 1) matrix: about 2/30, well below half.
  assert {'gram_seconds', 'svd_seconds', 'swap_seconds', 'swap_peak_extra_bytes'} <= set(row)
  assert 0.05 < row['energy_kept'] < 0.15


def test_a_compressed_layer_refuses_a_file_with_another_number_of_saved_variables():
  """`load_own_variables` of the factorized embedding, dense layer and frequency blocks: one ValueError naming the
  layer, nothing assigned; the same store as saved loads back."""
  import keras  # pylint: disable=g-import-not-at-top
  import lmf_tf  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import kernels  # pylint: disable=g-import-not-at-top
  def model(name):
    ids = keras.Input((None,), dtype='int32')
    x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(300, 16, name=f'{name}_words')(ids))
    x = keras.layers.Dense(32, activation='relu', name=f'{name}_hidden')(x)
    return keras.Model(ids, keras.layers.Dense(2, name=f'{name}_out')(x))
  plain, blocks = model('plain'), model('blocks')
  lmf_tf.compress_model(plain, rank=4)
  kernels.factorize_kernels(plain, kernels.select_kernels(plain, lmf_tf.LowRankKernels(rank=3)))
  lmf_tf.compress_model(blocks, rank=4, frequency=lmf_tf.FrequencyRanks(blocks=2))
  for layer, message in ((plain.get_layer('plain_words'), r"embedding 'plain_words' of rank 4 expects 2 saved "
                                                           r'variables \(factors\), found 1'),
                         (plain.get_layer('plain_hidden'), r"dense layer 'plain_hidden' of rank 3 expects 3 saved "
                                                           r'variables \(factors and bias\), found 1'),
                         (blocks.get_layer('blocks_words'), r"embedding 'blocks_words' in blocks .* expects \d+ saved "
                                                            r'variables, found 1')):
    store = {}
    layer.save_own_variables(store)
    before = [w.numpy() for w in layer.weights]
    with pytest.raises(ValueError, match=message):
      layer.load_own_variables({'0': store['0']})
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(layer.weights, before))
    store = {k: np.full(np.shape(v), 0.5, 'float32') for k, v in store.items()}
    layer.load_own_variables(store)
    assert all(np.allclose(w.numpy(), 0.5) for w in layer.weights) and any(not np.allclose(b, 0.5) for b in before)
