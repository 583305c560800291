"""`CompressibleEmbedding`: a word embedding that can be swapped, in place and mid-training, for its low-rank form.

Acharya et al. 2019, §3.1: the embedding matrix W (V x d) is replaced by its truncated SVD W_k = U_k Σ_k V_kᵀ,
stored as an `Embedding(V, k)` holding U_k Σ_k followed by a bias-free `Dense(d)` holding V_kᵀ.
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
