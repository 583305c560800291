"""TFLite exports give the Keras model's predictions; the Table 4 timing runs on a tiny trained model."""

import numpy as np
import pytest

from lmf_tf import results as lmf_results
from lmf_tf.compression import export, swap
from lmf_tf.harness import bench_inference
from lmf_tf.text import deployable
from lmf_tf.text import export as text_export
from lmf_tf.text import models
from lmf_tf.text import training
from lmf_tf.text.config import TrainConfig
from lmf_tf.errors import ConfigError

# Largest |probability difference| accepted between the Keras model and its export, per kind.
TOLERANCE = {'float32': 1e-5, 'float16': 1e-2, 'int8': 5e-2}


def _ids(batch, length, vocab_size, seed=0):
  ids = np.random.RandomState(seed).randint(1, vocab_size, size=(batch, length)).astype('int32')
  ids[0, length // 2:] = 0  # a padded sentence
  return ids


# Each kind once and each model at least once (the LSTM's fixed-batch conversion at two kinds); tests/test_library.py
# runs every kind of a user's BiLSTM through LiteRT too.
@pytest.mark.parametrize('name, kind', [('lstm', 'float32'), ('lstm', 'int8'), ('dan', 'float16'), ('dan', 'int8')])
def test_export_matches_keras_on_a_compressed_model(name, kind):
  config = models.ModelConfig(vocab_size=300, embedding_dim=16, lstm_units=8, dan_hidden=(32, 16), num_classes=3)
  model = models.MODELS[name].build(config)
  swap.compress_model(model, rank=4)
  ids = _ids(4, 9, 300)
  expected = model.predict(ids, verbose=0)
  runner = export.TfliteRunner(export.to_tflite(model, kind, batch_size=4))
  got = runner(ids)
  assert got.shape == (4, 3)
  np.testing.assert_allclose(got, expected, atol=TOLERANCE[kind])
  np.testing.assert_allclose(runner(ids[:, :5]), model.predict(ids[:, :5], verbose=0), atol=TOLERANCE[kind])
  with pytest.raises(ValueError, match='batches of 4'):
    runner(ids[:2])


def test_smaller_kinds_are_smaller_and_predict_pads_the_last_batch():
  config = models.ModelConfig(vocab_size=2000, embedding_dim=32, dan_hidden=(32, 16))
  model = models.dan_classifier(config)
  flatbuffers = {kind: export.to_tflite(model, kind, batch_size=3) for kind in export.KINDS}
  sizes = {kind: len(flatbuffer) for kind, flatbuffer in flatbuffers.items()}
  assert sizes['float16'] < 0.6 * sizes['float32'] and sizes['int8'] < 0.35 * sizes['float32']
  sequences = [np.array([5, 6, 7]), np.array([8]), np.array([9, 10]), np.array([11, 12, 13, 14])]
  probs = export.TfliteRunner(flatbuffers['float32']).predict(sequences)
  expected = np.concatenate([model.predict(export.pad([s]), verbose=0) for s in sequences])
  np.testing.assert_allclose(probs, expected, atol=1e-5)
  with pytest.raises(ConfigError, match='bfloat16'):
    export.to_tflite(model, 'bfloat16')
  stripped = export.to_tflite(model, 'int8', batch_size=3, strip_names=True)  # the same model without its strings
  assert len(stripped) < sizes['int8'] - 500 and b'serving_default' not in stripped
  np.testing.assert_array_equal(export.TfliteRunner(stripped).predict(sequences),
                                export.TfliteRunner(flatbuffers['int8']).predict(sequences))


@pytest.mark.slow  # two exports at two batch sizes, timed: a benchmark
def test_export_checkpoint_and_time_inference(trained_dan, tmp_path):
  results, _ = trained_dan
  best = results['checkpoint_dir']
  sizes = text_export.export_checkpoint(best, str(tmp_path / 'export'), kinds=('float32', 'int8'))
  assert (tmp_path / 'export' / 'model_int8.tflite').stat().st_size == sizes['int8'] < sizes['float32']
  assert (tmp_path / 'export' / 'vocabulary.txt').exists()
  sequences, labels = bench_inference.test_sequences(best)
  assert len(sequences) == len(labels) == 12
  folded = text_export.export_checkpoint(best, str(tmp_path / 'folded'), kinds=('float32',), fold=True)
  assert folded['float32'] < sizes['float32']
  # Two variants, each converted at batch sizes 1 and 5 (the int8 kind is converted above and in
  # test_export_matches_keras_on_a_compressed_model; time_inference hands the kind to the same to_tflite).
  variants = [bench_inference.InferenceVariant('online', best), bench_inference.InferenceVariant('folded', best, fold=True)]
  rows = bench_inference.time_inference(variants, sequences, labels, batch_sizes=(1, 5), repeats=2)
  assert [r['name'] for r in rows] == ['online', 'folded']
  assert rows[0]['test_accuracy'] == pytest.approx(results['test_accuracy'], abs=1e-6)
  assert rows[1]['test_accuracy'] == rows[0]['test_accuracy']
  assert rows[0]['embedding_rank'] == rows[1]['embedding_rank'] == results['rank']
  assert len(rows[1]['pass_seconds_batch5']) == 2 and rows[1]['latency_ms_p99'] >= rows[1]['latency_ms_p50'] > 0
  # One TFLite size for one checkpoint: Table 4 reports the file scripts/export.py writes, and what ships with it.
  assert [r['tflite_bytes'] for r in rows] == [sizes['float32'], folded['float32']]
  vocabulary = (tmp_path / 'export' / 'vocabulary.txt').stat().st_size
  assert all(r['deployable_bytes'] == r['tflite_bytes'] + vocabulary for r in rows)
  # Tables 2-3 measure the same size on the run's architecture, without its checkpoint.
  assert deployable.tflite_bytes(*[lmf_results.from_dict(results)] * 2, {}) == folded['float32']


@pytest.mark.parametrize('name', ['lstm', 'dan'])
def test_folded_projection_of_our_classifiers_predicts_the_same_with_fewer_weights(name):
  config = models.ModelConfig(vocab_size=300, embedding_dim=16, lstm_units=8, dan_hidden=(32, 16))
  model = models.MODELS[name].build(config)
  model(_ids(2, 3, 300))
  swap.compress_model(model, rank=3)
  folded = export.fold_projection(model)
  ids = _ids(4, 9, 300)
  np.testing.assert_allclose(folded.predict(ids, verbose=0), model.predict(ids, verbose=0), atol=1e-5)
  assert models.word_embedding(folded).output_dim == 3
  width = 4 * 8 if name == 'lstm' else 32
  assert models.count_params(model) - models.count_params(folded) == 3 * 16 + 16 * width - 3 * width
