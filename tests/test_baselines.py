import json
import os

import keras
import numpy as np
import pytest

from lmf_tf.compression import model_size
from lmf_tf.compression import quantization
from lmf_tf.compression.rank import rank_for_reduction
from lmf_tf.text import models
from lmf_tf.text import post_training
from lmf_tf.text import trained_models
from lmf_tf.text import training
from lmf_tf.text.config import TrainConfig
from lmf_tf.errors import ConfigError


@pytest.mark.parametrize('bits', [8, 16])
@pytest.mark.parametrize('per_channel', [False, True])
def test_quantize_round_trip_error_is_at_most_half_a_step(bits, per_channel):
  rng = np.random.default_rng(bits)
  w = rng.normal(size=(300, 40)).astype(np.float32) * np.linspace(0.1, 3, 40, dtype=np.float32)
  q = quantization.quantize(w, bits, per_channel)
  assert q.values.dtype == {8: np.int8, 16: np.int16}[bits]
  assert q.scale.shape == ((1, 40) if per_channel else ())
  error = np.abs(q.dequantize() - w)
  # Half a quantization step, plus float32 rounding of the product q * s (a few ulps of |w|).
  assert np.all(error <= q.scale / 2 + 4 * np.finfo(np.float32).eps * np.abs(w))
  assert np.max(error) > q.scale.min() / 4  # the bound is tight, not vacuous
  assert np.max(np.abs(q.values)) == 2 ** (bits - 1) - 1  # the largest value uses the full range


def test_per_channel_embedding_scales_are_per_row():
  rng = np.random.default_rng(0)
  table = rng.normal(size=(50, 8)).astype(np.float32)
  table[7] *= 100  # one outlier word must not coarsen every other word's steps
  q = quantization.quantize(table, 8, per_channel=True, channel_axis=0)
  assert q.scale.shape == (50, 1)
  np.testing.assert_allclose(q.scale[:, 0], np.abs(table).max(axis=1) / 127, rtol=1e-6)
  model = dan_model()
  quantized = quantization.quantize_model(model, 8, per_channel=True)
  names = {v.path: name for name, v in model_size.weight_dict(model).items()}
  assert quantized[names['word_embedding/embeddings']].scale.shape == (3000, 1)
  assert quantized[names['hidden0/kernel']].scale.shape == (1, 16)


def test_quantize_worked_example_and_zero_tensor():
  q = quantization.quantize(np.array([0.5, -1.27, 0.01], np.float32), 8)
  np.testing.assert_allclose(q.scale, 0.01, rtol=1e-6)
  np.testing.assert_array_equal(q.values, [50, -127, 1])
  zero = quantization.quantize(np.zeros((3, 2), np.float32), 8)
  np.testing.assert_array_equal(zero.dequantize(), 0)
  with pytest.raises(ConfigError, match='bits=4: fixed-point quantization takes 8 or 16 bits'):
    quantization.quantize(np.ones(3), 4)


def dan_model(seed=0):
  keras.utils.set_random_seed(seed)
  config = models.ModelConfig(vocab_size=3000, embedding_dim=32, dan_hidden=(16, 8))
  model = models.dan_classifier(config)
  model(np.ones((1, 3), np.int32))
  return model


def test_quantized_checkpoints_really_shrink_and_restore(tmp_path):
  model = dan_model()
  ids = np.array([[5, 7, 9, 0]], np.int32)
  float_size = model_size.save_inference_checkpoint(model, str(tmp_path / 'f32'))
  sizes = {}
  for bits in (8, 16):
    quantized_model = dan_model()
    quantized = quantization.quantize_model(quantized_model, bits)
    checkpoint = quantization.quantized_checkpoint(quantized_model, quantized)
    sizes[bits] = model_size.save_inference_checkpoint(quantized_model, str(tmp_path / f'q{bits}'), None, checkpoint)
    restored = quantization.restore_dequantized(dan_model(seed=9), str(tmp_path / f'q{bits}'))
    np.testing.assert_allclose(restored(ids), quantized_model(ids), atol=1e-6)
    np.testing.assert_allclose(quantized_model(ids), model(ids), atol=0.02 if bits == 8 else 1e-4)
  assert sizes[8].data_bytes <= 0.26 * float_size.data_bytes
  assert sizes[16].data_bytes <= 0.51 * float_size.data_bytes
  assert sizes[8].meta_bytes == float_size.meta_bytes  # same inference graph


@pytest.mark.slow  # a training run of its own
def test_offline_baseline_has_a_v_by_k_embedding_from_the_start(tiny_config):
  config = TrainConfig(**dict(tiny_config, offline=True, reduction=50, seed=2))
  model, results = training.train_and_evaluate(config)
  vocab, d = results['data']['vocab_size'], results['data']['offline_full_dim']
  k = rank_for_reduction(50, vocab, d)
  layer = models.word_embedding(model)
  assert (layer.input_dim, layer.output_dim) == (vocab, k) and not layer.is_compressed
  assert model.get_layer('lstm').weights[0].shape == (k, 4 * tiny_config['lstm_units'])
  assert results['method'] == 'offline' and results['run'] == config.run_name
  assert config.run_name.startswith('sst2_lstm_offline_R50_h')  # the tiny settings are not the defaults
  assert 0 < results['data']['offline_energy_kept'] < 1
  reloaded = trained_models.evaluate_checkpoint(results['checkpoint_dir'])
  assert reloaded['test_accuracy'] == pytest.approx(results['test_accuracy'], abs=1e-6)


def test_offline_needs_a_rank_and_no_swap_step(tiny_config):
  with pytest.raises(ConfigError, match='--offline needs'):
    TrainConfig(**dict(tiny_config, offline=True)).validate()
  with pytest.raises(ConfigError, match='--offline compresses before training'):
    TrainConfig(**dict(tiny_config, offline=True, reduction=50, compress_at_epoch=0)).validate()


@pytest.mark.parametrize('method', ['fixed_point', 'keras_int8'])
def test_quantize_trained_model_writes_results(trained_dan, tmp_path, method):
  trained, _ = trained_dan
  results = post_training.quantize_trained_model(trained['checkpoint_dir'], bits=8, method=method,
                                                 results_dir=str(tmp_path), output_dir=str(tmp_path / 'q'))
  saved = json.loads(open(os.path.join(tmp_path, results['run'] + '.json')).read())
  assert saved['method'] == ('quant8' if method == 'fixed_point' else 'keras_int8')
  assert saved['checkpoint_bytes']['data_bytes'] < 0.5 * trained['checkpoint_bytes']['data_bytes']
  # 8 bits change at most one of the 12 test sentences' predictions of this tiny model.
  assert abs(saved['test_accuracy'] - trained['test_accuracy']) <= 1 / 12 + 1e-9
  assert saved['run'] == trained['run'].replace('_seed2', '_q8_seed2' if method == 'fixed_point' else '_kerasint8_seed2')
  if method == 'fixed_point':  # the stored integers reload, de-quantized, to the reported accuracy
    reloaded = trained_models.evaluate_checkpoint(saved['checkpoint_dir'])
    assert reloaded['test_accuracy'] == pytest.approx(saved['test_accuracy'], abs=1e-6)
