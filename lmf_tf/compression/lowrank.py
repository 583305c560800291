"""Low-rank layers of the language-model study (Grachev et al. 2017, §3.3): `LowRankDense` (x A B + b, e.g. the
softmax) and `LowRankLSTM` (an LSTM whose input and recurrent matrices may each be factorized).
"""

import keras
from keras import ops


def _uniform(scale):
  return keras.initializers.RandomUniform(-scale, scale)


@keras.saving.register_keras_serializable(package='lmf_tf')
class LowRankDense(keras.layers.Layer):
  """`float32[..., M]` -> `float32[..., N]`: (x A) B + b, the rank-k form of a dense layer x W + b.

  A = U_k Σ_k: float32[M, k] (`left`) and B = V_kᵀ: float32[k, N] (`right`) are the truncated SVD of the kernel
  W (Grachev et al. 2017, §3.3: low-rank factorization of the softmax and LSTM matrices); b: float32[N]. It holds
  k (M + N) + N numbers and costs k (M + N) multiply-adds per row instead of M N; it saves both for
  k < M N / (M + N). Worked example: the 200 x 10,000 softmax of the small PTB model at k = 98 holds 999,600 + 10,000
  numbers against 2,010,000.
  """

  def __init__(self, units, rank, use_bias=True, init_scale=0.05, **kwargs):
    super().__init__(**kwargs)
    self.units, self.rank, self.use_bias, self.init_scale = int(units), int(rank), bool(use_bias), float(init_scale)

  def build(self, input_shape):
    self.left = self.add_weight(name='left', shape=(input_shape[-1], self.rank), initializer=_uniform(self.init_scale))
    self.right = self.add_weight(name='right', shape=(self.rank, self.units), initializer=_uniform(self.init_scale))
    self.bias = (self.add_weight(name='bias', shape=(self.units,), initializer=_uniform(self.init_scale))
                 if self.use_bias else None)
    self.built = True

  def call(self, inputs):
    outputs = ops.matmul(ops.matmul(inputs, self.left), self.right)
    return outputs if self.bias is None else outputs + self.bias

  def set_factors(self, left, right, bias=None):
    """Sets A (float[M, k]), B (float[k, N]) and, with a bias, b (float[N])."""
    self.left.assign(left)
    self.right.assign(right)
    if self.bias is not None and bias is not None:
      self.bias.assign(bias)

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], self.units)

  def get_config(self):
    return {**super().get_config(), 'units': self.units, 'rank': self.rank, 'use_bias': self.use_bias,
            'init_scale': self.init_scale}


@keras.saving.register_keras_serializable(package='lmf_tf')
class LstmRecurrenceCell(keras.layers.Layer):
  """One LSTM step given its input pre-activations: (`float32[B, 4H]` x W_x + b, state (h, c)) -> h, (h, c).

  z = x W_x + b + h W_h, split into the gates (i, f, g, o) in the order of `keras.layers.LSTMCell`;
  c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c'). W_h: float32[H, 4H] (`recurrent_kernel`), or its rank-k factors
  `recurrent_left` [H, k] and `recurrent_right` [k, 4H] when `recurrent_rank` is set.
  """

  def __init__(self, units, recurrent_rank=None, init_scale=0.05, **kwargs):
    super().__init__(**kwargs)
    self.units, self.init_scale = int(units), float(init_scale)
    self.recurrent_rank = None if recurrent_rank is None else int(recurrent_rank)
    self.state_size = [self.units, self.units]
    self.output_size = self.units

  def build(self, input_shape=None):
    h, init = self.units, _uniform(self.init_scale)
    if self.recurrent_rank is None:
      self.recurrent_kernel = self.add_weight(name='recurrent_kernel', shape=(h, 4 * h), initializer=init)
    else:
      self.recurrent_left = self.add_weight(name='recurrent_left', shape=(h, self.recurrent_rank), initializer=init)
      self.recurrent_right = self.add_weight(name='recurrent_right', shape=(self.recurrent_rank, 4 * h),
                                             initializer=init)
    self.built = True

  def call(self, inputs, states, training=None):
    h, c = states
    if self.recurrent_rank is None:
      recurrent = ops.matmul(h, self.recurrent_kernel)
    else:
      recurrent = ops.matmul(ops.matmul(h, self.recurrent_left), self.recurrent_right)
    i, f, g, o = ops.split(inputs + recurrent, 4, axis=-1)
    c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
    h = ops.sigmoid(o) * ops.tanh(c)
    return h, [h, c]

  def get_config(self):
    return {**super().get_config(), 'units': self.units, 'recurrent_rank': self.recurrent_rank,
            'init_scale': self.init_scale}


@keras.saving.register_keras_serializable(package='lmf_tf')
class LowRankLSTM(keras.layers.Layer):
  """An LSTM whose input matrix W_x [D, 4H] and recurrent matrix W_h [H, 4H] may each be of rank k (Grachev et al.
  2017, §3.3), same gates as `keras.layers.LSTM`.

  `(float32[B, T, D], initial_state ((h, c) float32[B, H]) or None) -> (float32[B, T, H], h, c)`, like
  `keras.layers.LSTM(return_sequences=True, return_state=True)`. The input pre-activations x W_x + b of all T steps
  are computed at once (`input_projection`: a `Dense(4H)` or `LowRankDense(4H, input_rank)`), the recurrence by
  `keras.layers.RNN(LstmRecurrenceCell)`. `set_from_lstm` copies a trained LSTM, through the truncated SVD where a
  rank is set.
  """

  def __init__(self, units, input_rank=None, recurrent_rank=None, init_scale=0.05, **kwargs):
    super().__init__(**kwargs)
    self.units, self.init_scale = int(units), float(init_scale)
    self.input_rank = None if input_rank is None else int(input_rank)
    self.recurrent_rank = None if recurrent_rank is None else int(recurrent_rank)
    init = _uniform(self.init_scale)
    self.input_projection = (
        keras.layers.Dense(4 * self.units, kernel_initializer=init, bias_initializer=init, name='input_projection')
        if self.input_rank is None else
        LowRankDense(4 * self.units, self.input_rank, init_scale=self.init_scale, name='input_projection'))
    cell = LstmRecurrenceCell(self.units, self.recurrent_rank, self.init_scale, name='cell')  # a fixed weight path
    self.recurrence = keras.layers.RNN(cell, return_sequences=True, return_state=True, name='recurrence')

  def build(self, input_shape):
    self.input_projection.build(input_shape)
    self.recurrence.build((*input_shape[:-1], 4 * self.units))
    self.built = True

  def call(self, inputs, initial_state=None, training=None):
    return self.recurrence(self.input_projection(inputs), initial_state=initial_state, training=training)

  def set_from_lstm(self, kernel, recurrent_kernel, bias, svd):
    """Copies a `keras.layers.LSTM`'s kernel [D, 4H], recurrent kernel [H, 4H] and bias [4H] (NumPy arrays);
    `svd(matrix, rank)` gives the (left, right) factors of the matrices that have a rank."""
    if self.input_rank is None:
      self.input_projection.kernel.assign(kernel)
      self.input_projection.bias.assign(bias)
    else:
      self.input_projection.set_factors(*svd(kernel, self.input_rank), bias)
    cell = self.recurrence.cell
    if self.recurrent_rank is None:
      cell.recurrent_kernel.assign(recurrent_kernel)
    else:
      left, right = svd(recurrent_kernel, self.recurrent_rank)
      cell.recurrent_left.assign(left)
      cell.recurrent_right.assign(right)

  def get_config(self):
    return {**super().get_config(), 'units': self.units, 'input_rank': self.input_rank,
            'recurrent_rank': self.recurrent_rank, 'init_scale': self.init_scale}
