"""Deployable exports of a Keras model: TensorFlow Lite (LiteRT) flatbuffers, a runner for them, and the folding of
a factorized embedding's projection into the next layer.

Four kinds, all from `tf.lite.TFLiteConverter.from_keras_model`:
  - 'float32': the weights as they are;
  - 'float16': weights stored as float16 (`target_spec.supported_types = [tf.float16]`), about half the size;
  - 'int8': dynamic-range quantization (`Optimize.DEFAULT`): weights stored as int8 with float scales, matrix
    products run by int8 kernels on activations quantized on the fly, about a quarter of the size;
  - 'int4_embeddings': 'int8', but the model's embedding tables stored as int4, two numbers a byte, unpacked by
    built-in operators (int4.py): mixed bit widths that LiteRT runs.
The model's inputs keep their shapes (a sequence length may vary from call to call) but the batch size is fixed at
conversion, because the converter lowers a Keras LSTM's loop into TensorList ops whose element shape must be
static. `TfliteRunner` runs a flatbuffer with the LiteRT interpreter (`ai_edge_litert`, the maintained successor of
`tf.lite.Interpreter`).

`fold_projection` (paper §4; `analysis.py`): a model whose embedding was factorized holds U_k Σ_k (V x k), then
V_kᵀ (k x d) per token, then the next layer's input kernel W (d x n). The product V_kᵀ W (k x n) does the same in
one step: the folded model stores k n instead of k d + d n numbers and computes (2k - 1) n instead of
(2k - 1) d + (2d - 1) n FLOPs per token. It folds into Dense, LSTM, GRU, SimpleRNN, Bidirectional and Conv1D
layers, through layers that commute with a linear map of the vectors (dropout, average pooling); any other
factorized embedding stays as it is, so every model goes through the same export path.
"""

import contextlib
import io

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lmf_tf import extras, io_utils
from lmf_tf.compression import int4
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.model_size import input_specs
from lmf_tf.errors import ConfigError

KINDS = ('float32', 'float16', 'int8', 'int4_embeddings')

# Layers whose input kernel absorbs V_kᵀ, and layers between the embedding and it that commute with x -> x V_kᵀ
# (applied to each vector, or a weighted average of vectors). Max pooling, normalization or a non-linearity do not.
FOLD_INTO = (keras.layers.Dense, keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN,
             keras.layers.Bidirectional, keras.layers.Conv1D)
PASS_THROUGH = (keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.GaussianNoise,
                keras.layers.GlobalAveragePooling1D, keras.layers.AveragePooling1D)


def _graph_nodes(model):
  """Every node (layer call) of a functional or Sequential model's graph, or None for a model without one."""
  graph = getattr(model, '_functional', None) if isinstance(model, keras.Sequential) else model
  if graph is None or not hasattr(graph, '_nodes_by_depth'):
    return None
  return [node for nodes in graph._nodes_by_depth.values() for node in nodes]  # pylint: disable=protected-access


def _fold_target(embedding, nodes):
  """The layer after `embedding` (through pass-through layers) whose input kernel absorbs the projection, or the
  reason why there is none (a str)."""
  layer = embedding
  while True:
    consumers = {id(n.operation): n.operation for n in nodes if any(p.operation is layer for p in n.parent_nodes)}
    if len(consumers) != 1:
      return (f'{layer.name!r} feeds {len(consumers)} layers '
              f'({", ".join(repr(c.name) for c in consumers.values()) or "none"}); the projection folds only along a '
              'single path into one layer')
    layer = next(iter(consumers.values()))
    if isinstance(layer, FOLD_INTO):
      return layer
    if not isinstance(layer, PASS_THROUGH):
      return (f'it cannot be folded through {layer.name!r} ({type(layer).__name__}); it folds into '
              f'{", ".join(t.__name__ for t in FOLD_INTO)} through {", ".join(t.__name__ for t in PASS_THROUGH)}')


def _folded_weights(layer, projection):
  """`layer`'s weights with V_kᵀ (k x d) multiplied into each input kernel (d on its input axis)."""
  k, d = projection.shape
  weights = []
  for variable, value in zip(layer.weights, layer.get_weights()):
    if variable.name == 'kernel' and value.ndim == 3 and value.shape[1] == d:  # Conv1D: (width, d, filters)
      value = np.einsum('kd,wdf->wkf', projection, value)
    elif variable.name in ('kernel', 'kernel_left') and value.ndim == 2 and value.shape[0] == d:
      # Dense, RNN cells: (d, n); a factorized Dense's left factor U_r Σ_r: (d, r)
      value = projection @ value
    weights.append(value)
  return weights


def foldable_embeddings(model):
  """({embedding name: (embedding, target layer)} of the factorized embeddings whose projection folds, and
  [(embedding name, why not)] for the others)."""
  compressed = [l for l in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
                if isinstance(l, CompressibleEmbedding) and l.is_compressed]
  nodes = _graph_nodes(model)
  top = {id(l) for l in model.layers} if nodes is not None else set()
  folds, unfolded = {}, []
  for embedding in compressed:
    if nodes is None:
      unfolded.append((embedding.name, f'model {model.name!r} is subclassed: no graph to fold through'))
    elif id(embedding) not in top:
      unfolded.append((embedding.name, 'it is nested inside another layer, whose code decides what follows it'))
    else:
      target = _fold_target(embedding, nodes)
      if isinstance(target, str):
        unfolded.append((embedding.name, target))
      else:
        folds[embedding.name] = (embedding, target)
  return folds, unfolded


def fold_projection(model):
  """An equivalent inference model of `model` whose factorized embeddings (rank k) feed the next layer directly
  where that layer is known: each becomes a plain `Embedding(V, k)` and V_kᵀ moves into the next layer's input
  kernel. Outputs equal the model's up to float rounding. A factorized Dense or LSTM input matrix (`LowRankKernels`)
  takes V_kᵀ into its left factor, or becomes one k x N matrix where that is smaller.

  One export path serves every model: an embedding whose projection does not fold (nested in a user's layer, in a
  subclassed model, before a non-linear layer or several consumers) stays factorized (its k x d product is one
  more matrix product per token), with a warning naming it and why; a model with nothing to fold comes back
  unchanged (the same object), with a log line.
  """
  folds, unfolded = foldable_embeddings(model)
  for name, why in unfolded:
    logging.warning('fold_projection: the projection of %r stays unfolded: %s.', name, why)
  if not folds:
    logging.info('fold_projection: model %r has no projection to fold; returned as it is.', model.name)
    return model
  targets = {target.name: embedding for embedding, target in folds.values()}
  shared = {id(l) for l in model.layers if l.name not in targets and any(
      isinstance(s, keras.layers.Embedding) and getattr(s, 'is_compressed', False)  # in frequency blocks too
      for s in l._flatten_layers(include_self=False))}  # pylint: disable=protected-access

  collapsed = {name for name, embedding in targets.items() if _collapses(model.get_layer(name), embedding.rank)}

  def clone(layer):
    if layer.name in folds:
      return keras.layers.Embedding(layer.input_dim, layer.rank, mask_zero=layer.mask_zero, name=layer.name)
    if layer.name in collapsed:
      return _collapsed_clone(layer)
    if id(layer) in shared:  # holds a factorized embedding its config would rebuild as a plain one
      return layer
    # A Bidirectional's config records its inner layers' input shapes: rebuilt for the k-wide input instead.
    return layer.__class__.from_config(_without_build_config(layer.get_config()))

  folded = keras.models.clone_model(model, clone_function=clone)
  for source, layer in zip(model.layers, folded.layers):
    if layer is source:
      continue
    if layer.name in folds:
      layer.set_weights([source.low_rank_embeddings.numpy()])
    elif layer.name in collapsed:  # W_x (or a Dense's kernel) = V_kᵀ L R, then the other weights as they are
      projection, (left, right, *others) = targets[layer.name].projection.numpy(), source.get_weights()
      layer.set_weights([projection @ left @ right, *others])
    elif layer.name in targets:
      layer.set_weights(_folded_weights(source, targets[layer.name].projection.numpy()))
    elif layer.weights:
      layer.set_weights(source.get_weights())
  return folded


def _collapses(layer, k):
  """Whether a factorized input matrix (M x r, r x N: a Dense's kernel, an LSTM's W_x) that the projection (k x M)
  folds into is smaller as one k x N matrix than as its folded factors k x r and r x N."""
  if isinstance(layer, keras.layers.Dense) and getattr(layer, 'is_compressed', False):
    rank, columns = layer.rank, layer.units
  elif isinstance(layer, keras.layers.LSTM) and 'kernel' in getattr(layer, 'ranks', {}):
    rank, columns = layer.ranks['kernel'], 4 * layer.units
  else:
    return False
  return k * columns <= rank * (k + columns)


def _collapsed_clone(layer):
  """`layer` (a factorized Dense, or an LSTM with a factorized W_x) rebuilt with that matrix whole."""
  config = _without_build_config(layer.get_config())
  if isinstance(layer, keras.layers.Dense):
    return keras.layers.Dense.from_config({k: v for k, v in config.items() if k != 'rank'})
  ranks = {matrix: k for matrix, k in config['ranks'].items() if matrix != 'kernel'}
  return type(layer).from_config({**config, 'ranks': ranks})


def _without_build_config(config):
  if isinstance(config, dict):
    return {k: _without_build_config(v) for k, v in config.items() if k != 'build_config'}
  if isinstance(config, list):
    return [_without_build_config(v) for v in config]
  return config


def to_tflite(model, kind='float32', batch_size=1, input_signature=None, strip_names=False):
  """Converts a Keras model to a TFLite flatbuffer (bytes) of the given `kind`, for a fixed `batch_size`.

  kind: 'float32' (the weights as they are); 'float16' (weights stored as float16, computed in float32); 'int8':
  dynamic-range quantization (`tf.lite.Optimize.DEFAULT` without a representative dataset): the weights of matrix
  products and lookups stored as int8 with float scales, activations quantized on the fly to int8 for
  the products and kept in float32 elsewhere; about a quarter of the float32 size, inputs and outputs stay float
  (or int ids). Not full-integer quantization: check the shipped file's accuracy with `TfliteRunner`.
  'int4_embeddings': 'int8' with the top-level embedding tables packed as int4 (`int4.with_int4_tables`; a table
  trained by `lmf_tf.quantization.int4_aware` keeps the scales it trained with).
  A model that takes strings (an in-graph `TextVectorization`) is refused with the way to ship it
  (`lmf_tf.strings.write_string_model`, string_models.py).
  The inputs are the model's (`model.inputs`); a subclassed model takes `input_signature`, a list of
  `(shape without the batch axis, dtype)` pairs (default: `[((None,), 'int32')]`, token ids of any length).
  `strip_names=True` removes the file's strings (tensor names and the `serving_default` signature) with
  TensorFlow's `flatbuffer_utils.strip_strings`: the same model in 1-7 KB fewer bytes, run by input and output
  index (as `TfliteRunner` does), not by signature name.
  """
  if kind not in KINDS:
    raise ConfigError(f'to_tflite(kind={kind!r}): choose one of {", ".join(KINDS)}')
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise ConfigError(f'to_tflite(batch_size={batch_size!r}): must be an integer >= 1')
  specs = input_specs(model, input_signature)
  if any(dtype == 'string' for _, _, dtype in specs):
    raise ConfigError(f'to_tflite: model {model.name!r} takes strings, and LiteRT\'s built-in ops cannot standardize '
                      'or split them; ship it split into the integer model, its vocabulary and its text rule with '
                      'lmf_tf.strings.write_string_model(model, directory), and run it with lmf_tf.strings.StringModelRunner')
  if kind == 'int4_embeddings':
    model, kind = int4.with_int4_tables(model), 'int8'
  inputs = [keras.Input(shape=shape, batch_size=batch_size, dtype=dtype, name=name) for name, shape, dtype in specs]
  outputs = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
  converter = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, outputs, name=model.name))
  if kind in ('float16', 'int8'):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if kind == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  with contextlib.redirect_stdout(io.StringIO()):  # Keras's export prints every captured tensor
    flatbuffer = converter.convert()
  return _without_strings(flatbuffer) if strip_names else flatbuffer


def _without_strings(flatbuffer):
  """`flatbuffer` without its tensor names and signatures (`tensorflow.lite.tools.flatbuffer_utils`)."""
  from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=g-import-not-at-top
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
  flatbuffer_utils.strip_strings(model)
  return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def write_tflite(model, path, kind='float32', batch_size=1, input_signature=None, strip_names=False):
  """Writes `to_tflite(...)` to `path` atomically; returns its size in bytes."""
  flatbuffer = to_tflite(model, kind, batch_size, input_signature, strip_names)
  with io_utils.atomic_path(path) as tmp:
    with open(tmp, 'wb') as f:
      f.write(flatbuffer)
  return len(flatbuffer)


class TfliteRunner:
  """Runs a TFLite flatbuffer with the LiteRT interpreter on batches of its fixed batch size; any other input
  dimension (a sequence length) may change from call to call."""

  def __init__(self, flatbuffer, num_threads=1):
    litert = extras.require('ai_edge_litert.interpreter', 'TfliteRunner')  # the `litert` extra
    self._interpreter = litert.Interpreter(model_content=flatbuffer, num_threads=num_threads)
    self._input = self._interpreter.get_input_details()[0]
    self._output = self._interpreter.get_output_details()[0]
    self.batch_size = int(self._input['shape'][0])
    self._shape = None

  def __call__(self, inputs):
    """The model's outputs for `inputs` (`[batch_size, ...]`, cast to the model's input dtype)."""
    inputs = np.asarray(inputs, self._input['dtype'])
    if inputs.shape[0] != self.batch_size:
      raise ValueError(f'this model takes batches of {self.batch_size}, got {inputs.shape[0]}')
    if inputs.shape != self._shape:
      self._interpreter.resize_tensor_input(self._input['index'], inputs.shape)
      self._interpreter.allocate_tensors()
      self._shape = inputs.shape
    self._interpreter.set_tensor(self._input['index'], inputs)
    self._interpreter.invoke()
    return self._interpreter.get_tensor(self._output['index'])

  def predict(self, sequences):
    """Outputs for a list of 1-D id arrays: batches of `batch_size`, each padded with 0 to its longest sequence;
    the last batch is filled with copies of its first sequence, whose outputs are dropped."""
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
