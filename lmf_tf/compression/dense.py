"""`CompressibleDense`: a `keras.layers.Dense` whose kernel can be factorized in place, mid-training.

The kernel W (M inputs x N outputs) is replaced by its truncated SVD W_k = U_k Σ_k V_kᵀ, stored as
`kernel_left` = U_k Σ_k (M x k) and `kernel_right` = V_kᵀ (k x N): the layer computes (x U_k Σ_k) V_kᵀ + b and holds
k (M + N) + N numbers instead of M N + N. This is the low-rank factorization of a network's dense and LSTM matrices of Grachev
et al. 2017, §3.3, done online like the embedding swap of Acharya et al. 2019, §3.1 (`embedding.py`): the layer
object stays in the user's graph, only its variables and call path change, and its config records `rank`.
"""

import types

import keras
import numpy as np
from keras import ops

from lmf_tf.compression.embedding import (drop_constraint, load_variables, replacing_variables, retire_variable,
                                          save_variables)
from lmf_tf.compression.rank import check_rank_value
from lmf_tf.errors import ConfigError


@keras.saving.register_keras_serializable(package='lmf_tf')
class CompressibleDense(keras.layers.Dense):
  """`float[..., M]` -> `float[..., N]`, activation(x W + b), W stored whole or as its rank-k factors.

  Uncompressed (`rank=None`): exactly `keras.layers.Dense(N)`, weights `kernel`: float32[M, N] and `bias`.
  Compressed (`rank=k`): weights `kernel_left` = U_k Σ_k: float32[M, k], `kernel_right` = V_kᵀ: float32[k, N] and
  `bias`; `kernel` is then the product (computed when read). The kernel regularizer applies to both factors.

  Worked example: the 64 -> 150 output layer of an intent classifier at k = 16 holds 16 x 214 = 3,424 numbers
  instead of 9,600 (R = 64%), and costs 3,424 instead of 9,600 multiply-adds per example.
  """
  FACTORIZED_MATRIX = 'kernel'

  def __init__(self, units, rank=None, **kwargs):
    super().__init__(units, **kwargs)
    self.rank = None if rank is None else check_rank_value(rank)

  @classmethod
  def from_dense(cls, layer):
    """Makes a plain `keras.layers.Dense` (built or not) a `CompressibleDense` in place; returns it.

    Raises:
      ConfigError: for any other layer (subclasses of Dense have their own call path), or a quantized or
        LoRA-enabled Dense.
    """
    if isinstance(layer, cls):
      return layer
    if type(layer) is not keras.layers.Dense:
      raise ConfigError(f'layer {layer.name!r} is a {type(layer).__name__}, not a keras.layers.Dense or '
                        'lmf_tf.layers.CompressibleDense; lmf_tf does not know how to factorize its kernel')
    if layer.quantization_mode or layer.lora_enabled:
      raise ConfigError(f'dense layer {layer.name!r} is {"quantized" if layer.quantization_mode else "LoRA-enabled"}; '
                        'factorize it before `quantize` / `enable_lora`, not after')
    layer.__class__ = cls
    layer.rank = None
    if not layer.built:
      _build_as(layer, cls)
    return layer

  @classmethod
  def with_rank(cls, layer, rank):
    """Gives `layer` (a Dense, built or not) the rank-k form, for a model rebuilt from a saved config: an unbuilt
    layer builds its factors itself; a built one gets placeholder factors that a weights file then overwrites."""
    cls.from_dense(layer)
    if layer.rank == rank:
      return
    if not layer.built:
      layer.rank = check_rank_value(rank)
      return
    random = np.random.default_rng(0)
    layer.factorize(random.uniform(-0.05, 0.05, (layer.kernel.shape[0], rank)).astype(np.float32),
                    random.uniform(-0.05, 0.05, (rank, layer.units)).astype(np.float32))

  @property
  def is_compressed(self):
    return self.rank is not None

  def build(self, input_shape):
    if self.built:
      return
    if self.rank is None:
      super().build(input_shape)
      return
    self._add_factors(input_shape[-1], self.rank)
    self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_shape[-1]})
    self.built = True

  def _add_factors(self, inputs, rank):
    """Adds the factors, then the bias: the order a layer built from its config has, which a saved optimizer's
    variables follow."""
    initializer = keras.initializers.RandomUniform(-0.05, 0.05)  # a weights file or `factorize` overwrites them
    self.kernel_left = self.add_weight(name='kernel_left', shape=(inputs, rank), initializer=initializer,
                                       regularizer=self.kernel_regularizer)
    self.kernel_right = self.add_weight(name='kernel_right', shape=(rank, self.units), initializer=initializer,
                                        regularizer=self.kernel_regularizer)
    self.bias = (self.add_weight(name='bias', shape=(self.units,), initializer=self.bias_initializer,
                                 regularizer=self.bias_regularizer, constraint=self.bias_constraint)
                 if self.use_bias else None)

  @property
  def kernel(self):
    """W: float[M, N]; for a compressed layer the product U_k Σ_k V_kᵀ, computed when read."""
    if self.rank is None:
      return super().kernel
    return ops.matmul(self.kernel_left, self.kernel_right)

  def call(self, inputs, training=None):
    if self.rank is None:
      return super().call(inputs, training=training)
    x = ops.matmul(ops.matmul(inputs, self.kernel_left), self.kernel_right)  # [..., k], then [..., N]
    if self.bias is not None:
      x = ops.add(x, self.bias)
    return x if self.activation is None else self.activation(x)

  def full_matrix(self):
    """The M x N kernel the layer represents, W or U_k Σ_k V_kᵀ, as a NumPy array."""
    return np.asarray(ops.convert_to_tensor(self.kernel).numpy())

  def factorize(self, left, right):
    """Replaces the kernel by `left` (U_k Σ_k, [M, k]) and `right` (V_kᵀ, [k, N]), in place; the bias stays.

    As `CompressibleEmbedding.factorize`: the old variables are untracked and emptied, and an optimizer built for
    them must be rebuilt (`lmf_tf.compression.swap.carry_optimizer`).
    """
    if not self.built:
      raise ConfigError(f'dense layer {self.name!r} is not built yet: build or call the model before compressing it')
    if self.quantization_mode or self.lora_enabled:
      raise ConfigError(f'dense layer {self.name!r} is {"quantized" if self.quantization_mode else "LoRA-enabled"}; '
                        'factorize it before `quantize` / `enable_lora`, not after')
    rank, inputs = left.shape[1], self.input_spec.axes[-1]
    if tuple(left.shape) != (inputs, rank) or tuple(right.shape) != (rank, self.units):
      raise ValueError(f'{self.name}: factors {tuple(left.shape)} x {tuple(right.shape)} do not make a '
                       f'{inputs} x {self.units} kernel')
    drop_constraint(self, 'kernel_constraint', 'factors')
    bias = None if self.bias is None else self.bias.numpy()
    # The bias is re-made after the factors (same name and value; its optimizer slots carry over).
    with replacing_variables(self, (['_kernel'] if self.rank is None else ['kernel_left', 'kernel_right'])
                             + (['bias'] if self.bias is not None else [])) as old:
      self.rank = int(rank)
      self._add_factors(inputs, self.rank)
    self.kernel_left.assign(left)
    self.kernel_right.assign(right)
    if bias is not None:
      self.bias.assign(bias)
    for variable in old:
      retire_variable(variable)

  def quantize(self, mode=None, *args, **kwargs):  # pylint: disable=keyword-arg-before-vararg  (Keras's signature)
    if self.rank is not None:
      raise NotImplementedError(
          f'dense layer {self.name!r} is factorized (rank {self.rank}): Keras does not quantize its factors; a TFLite '
          'int8 export (lmf_tf.to_tflite) does')
    return super().quantize(mode, *args, **kwargs)

  def enable_lora(self, *args, **kwargs):
    if self.rank is not None:
      raise ConfigError(f'dense layer {self.name!r} is already low-rank (rank {self.rank}); LoRA would add a second '
                        'pair of factors')
    return super().enable_lora(*args, **kwargs)

  def _factors(self):
    return [self.kernel_left, self.kernel_right] + ([self.bias] if self.bias is not None else [])

  def save_own_variables(self, store):
    if self.rank is None:
      return super().save_own_variables(store)
    save_variables(store, self._factors())

  def load_own_variables(self, store):
    if self.rank is None:
      return super().load_own_variables(store)
    load_variables(store, self._factors(), f'dense layer {self.name!r} of rank {self.rank}', ' (factors and bias)')

  def get_config(self):
    return {**super().get_config(), 'rank': self.rank}


def _build_as(layer, cls):
  """Makes an unbuilt layer whose class changed build as `cls`: Keras wraps each layer's bound `build` when the
  object is made (`Layer.__new__`: name scope, build config, state lock), so the wrapper would still call
  `Dense.build`; its captured method becomes `cls.build` of the layer."""
  wrapper = layer.__dict__.get('build')
  names = getattr(getattr(wrapper, '__code__', None), 'co_freevars', ())
  cells = dict(zip(names, getattr(wrapper, '__closure__', None) or ()))
  if 'original_build_method' not in cells:
    raise ConfigError(f'dense layer {layer.name!r} is not built, and this Keras version builds it as a plain Dense '
                      'after its class changes; build or call the model before compressing it')
  cells['original_build_method'].cell_contents = types.MethodType(cls.build, layer)
