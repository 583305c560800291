"""`CompressibleEmbedding`: a `keras.layers.Embedding` that can be factorized in place, mid-training.

Acharya et al. 2019, §3.1: the embedding matrix W (V x d) is replaced by its truncated SVD W_k = U_k Σ_k V_kᵀ,
stored as a V x k table U_k Σ_k that the lookup reads, followed by the k x d projection V_kᵀ. The layer then holds
k (V + d) numbers instead of V d.

The mechanism follows Keras's own in-place changes of a built `Embedding` (`quantize`, `enable_lora`): the layer
object stays where it is in the user's graph (functional, Sequential, subclassed, or nested in another layer);
only its variables and its call path change, and its config records the new form (`rank`), so a `.keras` file
reloads it. A plain `keras.layers.Embedding` becomes a `CompressibleEmbedding` in place (`from_embedding`, which
changes the object's class to this subclass of it), so `isinstance(layer, keras.layers.Embedding)` still holds.
"""

import contextlib

import keras
import numpy as np
from absl import logging
from keras import ops

from lmf_tf.compression.rank import check_rank_value
from lmf_tf.errors import ConfigError


@keras.saving.register_keras_serializable(package='lmf_tf')
class CompressibleEmbedding(keras.layers.Embedding):
  """`int[batch, ...]` ids -> `float[batch, ..., d]` vectors, stored as W or as its rank-k factors.

  Uncompressed (`rank=None`): exactly `keras.layers.Embedding(V, d)`, weight `embeddings`: float32[V, d].
  Compressed (`rank=k`): weights `low_rank_embeddings` = U_k Σ_k: float32[V, k] and `projection` = V_kᵀ:
  float32[k, d]; a token's vector is its row of U_k Σ_k times V_kᵀ (k d multiply-adds). `embeddings` is then the
  product U_k Σ_k V_kᵀ (V x d, computed when read), so code that reads the matrix, such as a tied softmax, keeps
  working on the factorized layer. The regularizer, if any, applies to both factors.

  Worked example: V = 14,000, d = 50, k = 4 stores 4 x 14,050 = 56,200 numbers instead of 700,000 (R = 92%).
  """

  def __init__(self, input_dim, output_dim, rank=None, weights=None, **kwargs):
    super().__init__(input_dim, output_dim, **kwargs)
    self.rank = None if rank is None else check_rank_value(rank)
    if weights is not None:  # as keras.layers.Embedding(weights=...), once the rank is known
      self.build()
      self.set_weights(weights if isinstance(weights, list) else [weights])

  @classmethod
  def from_embedding(cls, layer):
    """Makes a plain `keras.layers.Embedding` (built or not) a `CompressibleEmbedding`, in place; returns it.

    The object, its weights and its place in the model stay; only its class becomes this subclass, so that it can
    then be factorized and its config records the rank.
    Raises:
      ConfigError: for any other layer, including other subclasses of `Embedding` (their call path is theirs).
    """
    if isinstance(layer, cls):
      return layer
    if type(layer) is not keras.layers.Embedding:
      raise ConfigError(f'layer {layer.name!r} is a {type(layer).__name__}, not a keras.layers.Embedding or '
                        'lmf_tf.layers.CompressibleEmbedding; lmf_tf does not know how to factorize it')
    if layer.quantization_mode or layer.lora_enabled:
      raise ConfigError(f'embedding {layer.name!r} is {"quantized" if layer.quantization_mode else "LoRA-enabled"}; '
                        'factorize it before `quantize` / `enable_lora`, not after')
    layer.__class__ = cls
    layer.rank = None
    return layer

  @property
  def is_compressed(self):
    return self.rank is not None

  def build(self, input_shape=None):
    if self.built:
      return
    if self.rank is None:
      super().build(input_shape)
      return
    self._add_factors(self.rank)
    self.built = True

  def _add_factors(self, rank):
    # Built from a config: random factors that `factorize` or a weights file then overwrite.
    initializer = keras.initializers.RandomUniform(-0.05, 0.05)
    self.low_rank_embeddings = self.add_weight(shape=(self.input_dim, rank), initializer=initializer,
                                               name='low_rank_embeddings', regularizer=self.embeddings_regularizer)
    self.projection = self.add_weight(shape=(rank, self.output_dim), initializer=initializer, name='projection',
                                      regularizer=self.embeddings_regularizer)

  @property
  def embeddings(self):
    """W: float[V, d]; for a compressed layer the product U_k Σ_k V_kᵀ, computed when read."""
    if self.rank is None:
      return super().embeddings
    return ops.matmul(self.low_rank_embeddings, self.projection)

  def call(self, inputs):
    if self.rank is None:
      return super().call(inputs)
    if inputs.dtype not in ('int32', 'int64'):
      inputs = ops.cast(inputs, 'int32')
    vectors = ops.take(self.low_rank_embeddings, inputs, axis=0)  # [..., k]
    return ops.cast(ops.matmul(vectors, self.projection), self.compute_dtype)  # [..., d]

  def full_matrix(self):
    """The V x d matrix the layer represents, W or U_k Σ_k V_kᵀ, as a NumPy array."""
    # `.numpy()` of the tensor: NumPy 2 warns when it converts a TF tensor or variable itself (`__array__`
    # without `copy`), which `ops.convert_to_numpy` does.
    return np.asarray(ops.convert_to_tensor(self.embeddings).numpy())

  def factorize(self, left, right):
    """Replaces the layer's matrix by the factors `left` (U_k Σ_k, [V, k]) and `right` (V_kᵀ, [k, d]), in place.

    Works on an uncompressed layer and on a compressed one (a new rank: gradual reduction). The old variables are
    no longer tracked (not saved, not trained, not in `layer.weights`) and emptied (`retire_variable`), so a training
    step traced before the change fails at its next call instead of training them. An optimizer built for the old
    variables must be rebuilt for the new ones (`lmf_tf.compression.swap.carry_optimizer`).
    """
    if not self.built:
      raise ConfigError(f'embedding {self.name!r} is not built yet: build or call the model before compressing it')
    if self.quantization_mode or self.lora_enabled:
      raise ConfigError(f'embedding {self.name!r} is {"quantized" if self.quantization_mode else "LoRA-enabled"}; '
                        'factorize it before `quantize` / `enable_lora`, not after')
    rank = left.shape[1]
    if tuple(left.shape) != (self.input_dim, rank) or tuple(right.shape) != (rank, self.output_dim):
      raise ValueError(f'{self.name}: factors {tuple(left.shape)} x {tuple(right.shape)} do not make a '
                       f'{self.input_dim} x {self.output_dim} matrix')
    drop_constraint(self, 'embeddings_constraint', 'factors')
    with replacing_variables(self, ['_embeddings'] if self.rank is None else ['low_rank_embeddings', 'projection']) \
        as old:
      self.rank = int(rank)
      self._add_factors(self.rank)
    self.low_rank_embeddings.assign(left)
    self.projection.assign(right)
    for variable in old:
      retire_variable(variable)

  def quantize(self, mode=None, *args, **kwargs):  # pylint: disable=keyword-arg-before-vararg  (Keras's signature)
    if self.rank is not None:  # `model.quantize` warns with this message and goes on with the other layers
      raise NotImplementedError(
          f'embedding {self.name!r} is factorized (rank {self.rank}): Keras does not quantize its factors; '
          'lmf_tf.quantization.quantize_model (fixed point) or a TFLite int8 export (lmf_tf.to_tflite) does')
    return super().quantize(mode, *args, **kwargs)

  def enable_lora(self, *args, **kwargs):
    if self.rank is not None:
      raise ConfigError(f'embedding {self.name!r} is already low-rank (rank {self.rank}); LoRA would add a second '
                        'pair of factors')
    return super().enable_lora(*args, **kwargs)

  def save_own_variables(self, store):
    if self.rank is None:
      return super().save_own_variables(store)
    save_variables(store, [self.low_rank_embeddings, self.projection])

  def load_own_variables(self, store):
    if self.rank is None:
      return super().load_own_variables(store)
    load_variables(store, [self.low_rank_embeddings, self.projection],
                   f'embedding {self.name!r} of rank {self.rank}', ' (factors)')

  def get_config(self):
    return {**super().get_config(), 'rank': self.rank}


def save_variables(store, variables):
  """A compressed layer's `save_own_variables`: its `variables` (factors, blocks, bias) under '0', '1', ..."""
  for i, variable in enumerate(variables):
    store[str(i)] = variable


def load_variables(store, variables, what, contents=''):
  """A compressed layer's `load_own_variables`: `variables` from '0', '1', ...; a ValueError naming `what` (the
  layer) and `contents` where the file holds another number of them."""
  if len(store.keys()) != len(variables):
    raise ValueError(f'{what} expects {len(variables)} saved variables{contents}, found {len(store.keys())}')
  for i, variable in enumerate(variables):
    variable.assign(store[str(i)])


def drop_constraint(layer, attribute, what):
  """Drops `layer`'s constraint `attribute` (e.g. 'embeddings_constraint'), with a warning, where it does not apply
  to `what` (its factors, its blocks) that replace the matrix it constrained."""
  constraint = getattr(layer, attribute)
  if constraint is not None:
    logging.warning('%s: %s %s does not apply to the %s and is dropped.', layer.name, attribute, constraint, what)
    setattr(layer, attribute, None)


@contextlib.contextmanager
def replacing_variables(layer, names):
  """With `layer`'s tracker unlocked, untracks its variables `names` (`untrack_variables`) and yields them, for
  the body to add their replacements; locks the tracker again. Empty the old ones afterwards (`retire_variable`)."""
  layer._tracker.unlock()  # pylint: disable=protected-access
  try:
    yield untrack_variables(layer, names)
  finally:
    layer._tracker.lock()  # pylint: disable=protected-access


def untrack_variables(layer, names):
  """Removes the variable attributes `names` from `layer` (with its tracker unlocked) and returns the variables: no
  longer tracked, saved, trained or in `layer.weights`. As Keras's `Layer.__delattr__` does, without the
  `gc.collect()` it runs for each variable (0.1-0.2 s each in a process holding a model and TensorFlow); the caller
  empties the old buffers itself (`retire_variable`)."""
  variables = [getattr(layer, name) for name in names]
  for name, variable in zip(names, variables):
    layer._untrack_variable(variable)  # pylint: disable=protected-access  (what Layer.__delattr__ calls)
    super(keras.layers.Layer, layer).__delattr__(name)  # the tracking below Keras's Layer (TensorFlow's)
  return variables


def retire_variable(variable):
  """Empties a variable the layer no longer tracks: its value becomes float[0, ...] (the V x d buffer is freed).

  A `tf.function` traced before the change captured it: its next call then fails (InvalidArgumentError, a lookup
  out of the empty table, or an update of the wrong shape) instead of silently training a matrix the model no
  longer reads. Eager TensorFlow variables only; a distributed variable is left as it is.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  value = getattr(variable, 'value', None)
  if (keras.backend.backend() != 'tensorflow' or not tf.executing_eagerly() or not isinstance(value, tf.Variable)
      or isinstance(value, tf.distribute.DistributedValues)):
    return
  empty = tf.zeros((0,) + tuple(variable.shape[1:]), value.dtype)
  tf.raw_ops.AssignVariableOp(resource=value.handle, value=empty, validate_shape=False)
