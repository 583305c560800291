"""The deployable size of a trained classifier: its TFLite file plus its vocabulary file, what a user ships.

The paper's model size is the TensorFlow checkpoint (`.data + .index + .meta`, Tables 2-4 keep it). A deployed
model is a TFLite flatbuffer, here at batch size 1 (`scripts/export.py`'s default), and the vocabulary that maps
words to ids. A flatbuffer's size depends on the architecture and the kind of weights, not on their values, so it
is measured on the run's architecture with random weights: no checkpoint is needed, and the sizes of every run of
Tables 2-3 can be had on a fresh clone. The kind follows the method: float32 for the float models (an online
model with its projection folded into the next layer, as deployed), float16 for 16-bit, int8 (dynamic range) for
8-bit quantization.
"""

import dataclasses
import os

import numpy as np

from lmf_tf.compression import export, swap
from lmf_tf.text import catalog, input_pipeline, models, tfds_builders
from lmf_tf.text.config import TrainConfig

FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def tflite_kind(result):
  """float32, float16 or int8 for a `results.ClassifierResult`, and whether its projection is folded."""
  kind = {'quant16': 'float16', 'quant8': 'int8', 'quant8_per_channel': 'int8', 'keras_int8': 'int8'}.get(
      result.method, 'float32')
  return kind, result.rank is not None


def source_run(result):
  """The name of the training run a quantized run was made from (its checkpoint's run directory)."""
  return os.path.basename(os.path.dirname(os.path.normpath(result.source_checkpoint)))


def _architecture(result, trained):
  """The config and (model, V, embedding width, classes, LSTM units) of a run; `trained` is the training run's
  result (the run itself, or for a quantized run the run it was made from: it records V and d)."""
  config = TrainConfig(**{k: v for k, v in result.config.items() if k in FIELDS}).resolved()
  num_classes = catalog.LOCAL_DATASETS[config.dataset].num_classes
  return config, (config.model, trained.data['vocab_size'], trained.data['embedding_dim'], num_classes,
                  config.lstm_units)


def tflite_bytes(result, trained, cache):
  """Bytes of the run's TFLite file (batch 1), measured on its architecture; `cache` is keyed by architecture."""
  config, (model_name, vocab_size, width, num_classes, units) = _architecture(result, trained)
  kind, folded = tflite_kind(result)
  key = (model_name, vocab_size, width, num_classes, units, result.rank, kind)
  if key not in cache:
    model = models.MODELS[model_name].build(models.ModelConfig(
        vocab_size=vocab_size, num_classes=num_classes, embedding_dim=width, lstm_units=units,
        word_dropout=config.word_dropout))
    # Non-zero weights: the converter folds away an all-zero bias (a fresh model's), which a trained one keeps.
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.0, w.shape).astype(w.dtype) for w in model.get_weights()])
    if result.rank is not None:
      swap.compress_model(model, rank=result.rank)
      model = export.fold_projection(model) if folded else model
    cache[key] = len(export.to_tflite(model, kind, batch_size=1))
  return cache[key]


def vocabulary_bytes(config, cache):
  """Bytes of the vocabulary file a run of `config` writes (built from its training split, as training does)."""
  key = (config.dataset, config.train_level, config.max_train_examples)
  if key not in cache:
    splits = tfds_builders.load_splits(config.dataset, train_level=config.train_level, source_dir=config.data_dir,
                                       tfds_dir=config.tfds_dir)
    train = splits.train.take(config.max_train_examples) if config.max_train_examples else splits.train
    cache[key] = input_pipeline.Vocabulary.build(train).file_bytes()
  return cache[key]


def deployable_sizes(runs, tflite_cache=None, vocabulary_cache=None):
  """{run name: {kind, folded, tflite_bytes, vocabulary_bytes, deployable_bytes}} for `runs`
  ({name: `results.ClassifierResult`}); a quantized run whose training run is not among them is left out."""
  tflite_cache = {} if tflite_cache is None else tflite_cache
  vocabulary_cache = {} if vocabulary_cache is None else vocabulary_cache
  sizes = {}
  for name, result in sorted(runs.items()):
    trained = runs.get(source_run(result)) if result.source_checkpoint else result
    if trained is None:
      continue
    config = TrainConfig(**{k: v for k, v in result.config.items() if k in FIELDS}).resolved()
    config = dataclasses.replace(config, data_dir=catalog.DATA_DIR, tfds_dir=catalog.DEFAULT_TFDS_DIR)
    kind, folded = tflite_kind(result)
    tflite = tflite_bytes(result, trained, tflite_cache)
    vocabulary = vocabulary_bytes(config, vocabulary_cache)
    sizes[result.run] = {'kind': kind, 'folded': folded, 'tflite_bytes': tflite, 'vocabulary_bytes': vocabulary,
                         'deployable_bytes': tflite + vocabulary}
  return sizes
