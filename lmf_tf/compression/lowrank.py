"""`CompressibleEmbedding`: a word embedding that can be swapped, in place and mid-training, for its low-rank form.

Acharya et al. 2019, §3.1: the embedding matrix W (V x d) is replaced by its truncated SVD W_k = U_k Σ_k V_kᵀ,
stored as an `Embedding(V, k)` holding U_k Σ_k followed by a bias-free `Dense(d)` holding V_kᵀ.

Also the low-rank layers of the language-model study (Grachev et al. 2017, §3.3): `LowRankDense` (the softmax)
and `LowRankLSTM` (an LSTM whose input and recurrent matrices may each be factorized).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package='lmf_tf')
class CompressibleEmbedding(keras.layers.Layer):
  """`int[batch, T]` ids -> `float32[batch, T, d]` vectors; id 0 is padding and is masked when `mask_zero`.

  Uncompressed (`rank=None`): one sub-layer `embedding = Embedding(V, d)`, weight W: float32[V, d].
  Compressed (`rank=k`): `embedding = Embedding(V, k)` (weight U_k Σ_k: float32[V, k]) followed by
  `projection = Dense(d, use_bias=False)` (kernel V_kᵀ: float32[k, d]). Only these two factors are tracked, so a
  checkpoint of a compressed layer holds k (V + d) numbers, not V d.

  `factorize` switches a built layer from the first form to the second in place (as Keras's own
  `Embedding.quantize` and `enable_lora` do), so a model under `fit` keeps its graph and other weights.
  """

  def __init__(self, input_dim, output_dim, rank=None, mask_zero=True, embeddings_initializer='uniform',
               embeddings_regularizer=None, **kwargs):
    super().__init__(**kwargs)
    self.input_dim = int(input_dim)
    self.output_dim = int(output_dim)
    self.rank = None if rank is None else int(rank)
    self.mask_zero = mask_zero
    self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
    self.embeddings_regularizer = keras.regularizers.get(embeddings_regularizer)
    self.projection = None
    self._make_sublayers(self.rank)

  def _make_sublayers(self, rank):
    width = self.output_dim if rank is None else rank
    # The configured initializer is for the V x d matrix (it may be a Constant of pre-trained vectors); factors
    # built from a config start random, and `factorize` overwrites them with the SVD factors.
    initializer = self.embeddings_initializer if rank is None else keras.initializers.RandomUniform(-0.05, 0.05)
    self.embedding = keras.layers.Embedding(
        self.input_dim, width, embeddings_initializer=initializer,
        embeddings_regularizer=self.embeddings_regularizer,
        name='embedding' if rank is None else 'factor_embedding')
    if rank is not None:
      self.projection = keras.layers.Dense(
          self.output_dim, use_bias=False, kernel_regularizer=self.embeddings_regularizer, name='projection')

  def build(self, input_shape=None):
    self.embedding.build()
    if self.projection is not None:
      self.projection.build((None, self.rank))
    self.built = True

  def call(self, inputs):
    vectors = self.embedding(inputs)
    if self.projection is not None:
      vectors = self.projection(vectors)
    return vectors

  def compute_mask(self, inputs, mask=None):
    if not self.mask_zero:
      return None
    return ops.not_equal(inputs, 0)

  def compute_output_shape(self, input_shape):
    return (*input_shape, self.output_dim)

  @property
  def is_compressed(self):
    return self.rank is not None

  def full_matrix(self):
    """The V x d matrix the layer represents: W, or U_k Σ_k V_kᵀ when compressed (a NumPy array)."""
    table = ops.convert_to_numpy(self.embedding.embeddings)
    if self.projection is None:
      return table
    return table @ ops.convert_to_numpy(self.projection.kernel)

  def factorize(self, left, right):
    """Replaces W by the factors `left` (U_k Σ_k, [V, k]) and `right` (V_kᵀ, [k, d]), in place.

    The old V x d variable is no longer tracked (it is not saved, not trained). The caller must give the new
    variables an optimizer state (see `compression.OnlineCompression`).
    """
    if not self.built:
      raise ValueError(f'{self.name}: cannot factorize a layer that is not built yet')
    if self.is_compressed:
      raise ValueError(f'{self.name}: already compressed to rank {self.rank}')
    rank = left.shape[1]
    if left.shape != (self.input_dim, rank) or right.shape != (rank, self.output_dim):
      raise ValueError(f'{self.name}: factors {left.shape} x {right.shape} do not make a '
                       f'{self.input_dim} x {self.output_dim} matrix')
    self._tracker.unlock()
    try:
      self._tracker.untrack(self.embedding)
      self.rank = int(rank)
      self._make_sublayers(self.rank)
      self.build()
    finally:
      self._tracker.lock()
    self.embedding.embeddings.assign(left)
    self.projection.kernel.assign(right)

  def get_config(self):
    config = super().get_config()
    config.update({
        'input_dim': self.input_dim,
        'output_dim': self.output_dim,
        'rank': self.rank,
        'mask_zero': self.mask_zero,
        'embeddings_initializer': keras.initializers.serialize(self.embeddings_initializer),
        'embeddings_regularizer': keras.regularizers.serialize(self.embeddings_regularizer),
    })
    return config


@keras.saving.register_keras_serializable(package='lmf_tf')
class WordDropout(keras.layers.Layer):
  """Drops whole tokens during training (Iyyer et al. 2015, DAN §3): `int[batch, T]` ids -> ids with some set to 0.

  Each non-padding token is replaced by the padding id 0 (so the embedding masks it) with probability `rate`. A
  sequence that would lose every token keeps all of them. Identity at inference.
  """

  def __init__(self, rate, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.rate = float(rate)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, ids, training=None):
    if not training or self.rate == 0:
      return ids
    keep = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) >= self.rate
    dropped = ops.where(keep, ids, ops.zeros_like(ids))
    any_left = ops.any(ops.not_equal(dropped, 0), axis=1, keepdims=True)
    return ops.where(any_left, dropped, ids)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'rate': self.rate, 'seed': self.seed}


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
