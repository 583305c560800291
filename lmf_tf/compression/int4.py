"""Embedding tables shipped as int4 in a TFLite file that LiteRT runs with its built-in operators.

LiteRT has no int4 lookup, and its quantizers do not quantize a GATHER (LiteRT Quantizer refuses a recipe for it,
docs/budget.md). What it runs is a uint8 table holding two 4-bit numbers a byte: the packed row is gathered, then
unpacked with FLOOR_DIV, MUL and SUB, and scaled by one float per column:

    packed[i, j] = 16 (q[i, j] + 8) + (q[i, h + j] + 8),  h = ceil(k / 2),  q in [-8, 7]
    table[i, :]  ~ q[i, :] * scale                         (V x k table, `scale` of shape (k,))

The scale is per column, not per row as in Keras's own `Embedding.quantize('int4')`: a factorized table is tall and
narrow (V x k with k of 4 to 50), and a float32 scale per row would cost 4 bytes a word beside k / 2 bytes of
numbers. Everything else in the file stays int8 (dynamic-range quantization, export.py): a file of mixed widths.

  - `with_int4_tables(model)`: an inference copy whose embedding tables are packed (`PackedInt4Embedding`);
    `lmf_tf.to_tflite(model, 'int4_embeddings')` exports through it.
  - `int4_aware(model)`: a copy whose tables are quantized to int4 in the forward pass while it trains
    (`Int4AwareEmbedding`: straight-through gradient), so that a few epochs recover what 4 bits cost.
  - `column_scales(table, rule)`: 'mse' (the clip of least squared error per column, post-training) or 'std'
    (2.5 standard deviations, the rule `Int4AwareEmbedding` trains with and packs with).

Which tables: the model's own (top-level) `keras.layers.Embedding` layers holding a plain V x k table, also a
folded factorized one (`fold_projection`). A table nested in a user's layer, an unfolded factorized one or one in
frequency blocks stays int8, with a warning naming it.
"""

import keras
import numpy as np
from absl import logging
from keras import ops

from lmf_tf.errors import ConfigError

STDS = 2.5  # the 'std' rule: each column clipped at 2.5 standard deviations (at most its largest value)
RULES = ('mse', 'std')
_MSE_FRACTIONS = np.linspace(0.2, 1.0, 33)  # the clips the 'mse' rule tries, as fractions of the column's largest


def std_scales(table):
  """The 'std' rule's scale per column of a V x k table (Keras ops: the same in training and in packing)."""
  top = ops.max(ops.abs(table), axis=0)
  return ops.maximum(ops.minimum(STDS * ops.std(table, axis=0), top), 1e-12) / 7.0


def column_scales(table, rule='mse'):
  """float32 (k,) scales of a V x k table: `rule` 'mse' (each column's clip of least squared error among 33
  fractions 0.2-1 of its largest value) or 'std' (`std_scales`)."""
  if rule not in RULES:
    raise ConfigError(f'column_scales(rule={rule!r}): choose one of {", ".join(RULES)}')
  table = np.asarray(table, np.float32)
  if rule == 'std':
    return np.asarray(std_scales(table), np.float32)
  scales = []
  for column in table.T:
    candidates = np.maximum(_MSE_FRACTIONS * float(np.abs(column).max()), 1e-12) / 7.0
    errors = [np.mean((np.clip(np.round(column / s), -8, 7) * s - column) ** 2) for s in candidates]
    scales.append(candidates[int(np.argmin(errors))])
  return np.asarray(scales, np.float32)


def pack(table, scales):
  """uint8 (V, ceil(k/2)): `table` (V x k) quantized by `scales` (k,) to [-8, 7], two numbers a byte (module
  docstring); an odd k pads its last high-nibble partner with zeros."""
  q = np.clip(np.round(np.asarray(table, np.float32) / scales), -8, 7).astype(np.int32) + 8
  half = (q.shape[1] + 1) // 2
  q = np.concatenate([q, np.full((len(q), 2 * half - q.shape[1]), 8, np.int32)], axis=1)
  return (q[:, :half] * 16 + q[:, half:]).astype(np.uint8)


def unpacked(packed, scales):
  """The float V x k table a packed one stands for (numpy; for checks)."""
  high, low = packed.astype(np.int32) // 16, packed.astype(np.int32) % 16
  return (np.concatenate([high, low], axis=1)[:, :len(scales)] - 8) * scales


@keras.saving.register_keras_serializable(package='lmf_tf')
class PackedInt4Embedding(keras.layers.Layer):
  """Embedding(V, k) for inference, its table stored 4 bits a number: `packed` uint8 (V, ceil(k/2)) and `scale`
  float32 (k,). ids (...,) int -> vectors (..., k) float32, as `unpacked(packed, scale)[ids]`. Not trainable."""

  def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
    super().__init__(**kwargs)
    self.input_dim, self.output_dim, self.mask_zero = int(input_dim), int(output_dim), bool(mask_zero)
    self.half = (self.output_dim + 1) // 2

  def build(self, input_shape=None):
    self.packed = self.add_weight(shape=(self.input_dim, self.half), dtype='uint8', trainable=False, name='packed',
                                  initializer='zeros')
    self.scale = self.add_weight(shape=(self.output_dim,), trainable=False, name='scale', initializer='ones')

  def call(self, ids):
    rows = ops.cast(ops.take(self.packed, ops.cast(ids, 'int32'), axis=0), 'int32')
    high = ops.floor_divide(rows, 16)
    numbers = ops.concatenate([high, rows - 16 * high], axis=-1)[..., :self.output_dim]
    return (ops.cast(numbers, 'float32') - 8.0) * self.scale

  def compute_mask(self, ids, mask=None):
    return ops.not_equal(ids, 0) if self.mask_zero else None

  def compute_output_shape(self, input_shape):
    return (*input_shape, self.output_dim)

  def get_config(self):
    return {**super().get_config(), 'input_dim': self.input_dim, 'output_dim': self.output_dim,
            'mask_zero': self.mask_zero}


@keras.saving.register_keras_serializable(package='lmf_tf')
class Int4AwareEmbedding(keras.layers.Embedding):
  """An Embedding trained as it will ship: its table quantized to int4 by the 'std' rule in the forward pass, with
  the gradient of the identity (straight-through). ids (...,) -> (..., output_dim)."""

  rule = 'std'

  def call(self, ids):
    scale = ops.stop_gradient(std_scales(self.embeddings))
    quantized = ops.clip(ops.round(self.embeddings / scale), -8, 7) * scale
    table = self.embeddings + ops.stop_gradient(quantized - self.embeddings)
    return ops.take(table, ops.cast(ids, 'int32'), axis=0)


def _is_graph_model(model):
  return isinstance(model, keras.Sequential) or hasattr(model, '_nodes_by_depth')


def _is_plain_table(layer, model):
  """A top-level `keras.layers.Embedding` of `model` whose only weight is its V x k table."""
  return (isinstance(layer, keras.layers.Embedding) and any(layer is l for l in model.layers)
          and [tuple(w.shape) for w in layer.weights] == [(layer.input_dim, layer.output_dim)])


def packed_tables(model):
  """Names of the layers whose tables `with_int4_tables` packs: the top-level Embedding layers of a functional or
  Sequential `model` holding a plain V x k table (the size model sizes these, and only these, as int4)."""
  if not _is_graph_model(model):
    return []
  return [layer.name for layer in model.layers if _is_plain_table(layer, model)]


def _plain_tables(model, caller):
  """`packed_tables(model)`; warns for each embedding that stays int8, refuses a model with none to pack."""
  if not _is_graph_model(model):
    raise ConfigError(f'{caller}: model {model.name!r} is subclassed; int4 tables need a functional or Sequential '
                      'model (the copy is made with keras.models.clone_model)')
  names = packed_tables(model)
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if isinstance(layer, keras.layers.Embedding) and layer.name not in names:
      logging.warning('%s: embedding %r stays int8 (nested in another layer, factorized and not folded, or in '
                      'frequency blocks).', caller, layer.name)
  if not names:
    raise ConfigError(f'{caller}: model {model.name!r} has no top-level Embedding with a plain table to store as '
                      'int4 (fold a factorized one first: lmf_tf.fold_projection; a table in frequency blocks or '
                      'inside your own layer stays int8)')
  return names


def _replaced(model, names, make, weights):
  """A copy of `model` whose layers `names` are `make(layer)` with `weights(layer)`, every other weight kept."""
  copy = keras.models.clone_model(model, clone_function=lambda layer: make(layer) if layer.name in names
                                  else layer.__class__.from_config(layer.get_config()))
  for source, layer in zip(model.layers, copy.layers):
    if layer.name in names:
      layer.set_weights(weights(source))
    elif layer.weights:
      layer.set_weights(source.get_weights())
  return copy


def with_int4_tables(model, rule='mse'):
  """An inference copy of `model` whose top-level embedding tables are `PackedInt4Embedding`s (module docstring);
  `rule` picks the scales ('mse' or 'std'; a table trained by `int4_aware` packs with its own rule, 'std')."""
  if rule not in RULES:
    raise ConfigError(f'with_int4_tables(rule={rule!r}): choose one of {", ".join(RULES)}')
  names = _plain_tables(model, 'with_int4_tables')

  def weights(source):
    table = source.embeddings.numpy()
    scales = column_scales(table, getattr(source, 'rule', rule))
    return [pack(table, scales), scales]

  return _replaced(model, names, lambda l: PackedInt4Embedding(l.input_dim, l.output_dim, l.mask_zero, name=l.name),
                   weights)


def int4_aware(model):
  """A trainable copy of `model` whose top-level embedding tables are `Int4AwareEmbedding`s (the same weights):
  compile and fit it for a few epochs, then export it with `to_tflite(copy, 'int4_embeddings')`."""
  names = _plain_tables(model, 'int4_aware')
  # Embedding's own config (trainable, initializer, regularizer, constraint, dtype policy), not a subclass's keys
  return _replaced(model, names, lambda l: Int4AwareEmbedding.from_config(keras.layers.Embedding.get_config(l)),
                   lambda source: [source.embeddings.numpy()])
