"""Deployable exports: TensorFlow Lite (LiteRT) flatbuffers of a trained classifier, and a runner for them.

Three kinds, all from `tf.lite.TFLiteConverter.from_keras_model`:
  - 'float32': the weights as they are;
  - 'float16': weights stored as float16 (`target_spec.supported_types = [tf.float16]`), about half the size;
  - 'int8': dynamic-range quantization (`Optimize.DEFAULT`): weights stored as int8 with float scales, matrix
    products run by int8 kernels on activations quantized on the fly, about a quarter of the size.
A model whose embedding was compressed online exports as it is (the rank-k table, then the k x d projection V_kᵀ
per token), or with `fold_projection` as a smaller and faster equivalent: V_kᵀ multiplied into the input kernel of
the first layer after the embedding (paper §4; see lmf_tf/analysis.py).

Input `int32[batch_size, T]` token ids (0 = padding), output `float32[batch_size, classes]` probabilities. The
sequence length T may change from call to call; the batch size is fixed at conversion, because the converter
lowers the Keras LSTM's loop into TensorList ops whose element shape must be static.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError

KINDS = ('float32', 'float16', 'int8')


def to_tflite(model, kind='float32', batch_size=1):
  """Converts a Keras classifier to a TFLite flatbuffer (bytes) of the given `kind`, for a fixed `batch_size`."""
  if kind not in KINDS:
    raise ConfigError(f'export kind {kind!r} is not one of {", ".join(KINDS)}')
  ids = keras.Input(shape=(None,), batch_size=batch_size, dtype='int32', name='token_ids')
  fixed_batch = keras.Model(ids, model(ids, training=False), name=model.name)
  converter = tf.lite.TFLiteConverter.from_keras_model(fixed_batch)
  if kind in ('float16', 'int8'):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if kind == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  return converter.convert()


def write_tflite(model, path, kind='float32', batch_size=1):
  """Writes `to_tflite(...)` to `path` atomically; returns its size in bytes."""
  flatbuffer = to_tflite(model, kind, batch_size)
  with io_utils.atomic_path(path) as tmp:
    with open(tmp, 'wb') as f:
      f.write(flatbuffer)
  return len(flatbuffer)


class TfliteClassifier:
  """Runs a TFLite classifier on `int32[batch_size, T]` batches; T may vary between calls.

  Uses `tf.lite.Interpreter` (deprecated in favour of the `ai-edge-litert` package, which is not pinned here: TF 2.21
  still ships the interpreter and it runs the same kernels).
  """

  def __init__(self, flatbuffer, num_threads=1):
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # the deprecation notice, once per interpreter
      self._interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=num_threads)
    self._input = self._interpreter.get_input_details()[0]
    self._output = self._interpreter.get_output_details()[0]
    self.batch_size = int(self._input['shape'][0])
    self._shape = None

  def __call__(self, ids):
    """float32[batch_size, classes] probabilities of `ids` (int32[batch_size, T])."""
    ids = np.asarray(ids, np.int32)
    if ids.shape[0] != self.batch_size:
      raise ValueError(f'this model takes batches of {self.batch_size}, got {ids.shape[0]}')
    if ids.shape != self._shape:
      self._interpreter.resize_tensor_input(self._input['index'], ids.shape)
      self._interpreter.allocate_tensors()
      self._shape = ids.shape
    self._interpreter.set_tensor(self._input['index'], ids)
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output['index'])

  def predict(self, sequences):
    """Probabilities for a list of 1-D id arrays: batches of `batch_size`, each padded to its longest sentence;
    the last batch is filled with copies of its first sentence, whose outputs are dropped."""
    outputs = []
    for start in range(0, len(sequences), self.batch_size):
      chunk = sequences[start:start + self.batch_size]
      outputs.append(self(pad(fill_batch(chunk, self.batch_size)))[:len(chunk)])
    return np.concatenate(outputs)


def fill_batch(sequences, batch_size):
  """`sequences` (at most `batch_size`) completed to `batch_size` with copies of the first one."""
  return list(sequences) + [sequences[0]] * (batch_size - len(sequences))


def pad(sequences):
  """int32[len(sequences), longest] with 0 (padding) after each sequence."""
  batch = np.zeros((len(sequences), max(len(s) for s in sequences)), np.int32)
  for i, s in enumerate(sequences):
    batch[i, :len(s)] = s
  return batch
