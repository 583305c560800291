"""Low-rank matrix factorization (LMF) of word embeddings, offline or online (Acharya et al. 2019, §3.1).

The embedding W (V x d) is replaced by its best rank-k approximation in the Frobenius norm (Eckart-Young):
W ≈ W_k = U_k Σ_k V_kᵀ, with U_k Σ_k (V x k) as the new embedding table and V_kᵀ (k x d) as a bias-free dense
projection. The layer then holds k (V + d) instead of V d parameters, a reduction

    R = 1 - k (V + d) / (V d),   so   k = floor((1 - R) V d / (V + d))            (paper §3.1, eq. 3).

Worked example: V = 14,000, d = 50, R = 90% -> k = floor(0.1 * 700,000 / 14,050) = floor(4.98) = 4.
"""

import dataclasses
import fractions
import math
import time

import keras
import numpy as np
from absl import logging

from lmf_tf.errors import ConfigError
from lmf_tf.layers import CompressibleEmbedding


def break_even_rank(vocab_size, dim):
  """V d / (V + d): a factorization saves parameters only for k below this (a float)."""
  return vocab_size * dim / (vocab_size + dim)


def max_useful_rank(vocab_size, dim):
  """The largest integer k with k (V + d) < V d."""
  return math.ceil(vocab_size * dim / (vocab_size + dim)) - 1


def rank_for_reduction(reduction, vocab_size, dim):
  """k = floor((1 - R/100) V d / (V + d)) for a reduction R in percent (0 < R < 100), computed exactly.

  >>> rank_for_reduction(90, 14000, 50)
  4
  >>> rank_for_reduction(90, 10000, 300)
  29

  Raises:
    ConfigError: if R gives k < 1 or a k that would not shrink the layer; the message gives the possible range.
  """
  r = fractions.Fraction(str(reduction))
  if not 0 < r < 100:
    raise ConfigError(f'R={reduction}: the reduction must be a percentage strictly between 0 and 100')
  k = math.floor((1 - r / 100) * vocab_size * dim / (vocab_size + dim))
  if k < 1:
    # k >= 1 needs (1 - R/100) V d / (V + d) >= 1, i.e. R <= 100 (1 - (V + d) / (V d)).
    max_r = float(100 * (1 - fractions.Fraction(vocab_size + dim, vocab_size * dim)))
    raise ConfigError(
        f'R={reduction} leaves rank k={k} for V={vocab_size}, d={dim}; R must be at most {max_r:.4f} '
        f'(rank 1) for this embedding')
  return validate_rank(k, vocab_size, dim, flag=f'R={reduction}')


def validate_rank(rank, vocab_size, dim, flag='--rank'):
  """Checks 1 <= k < V d / (V + d) and returns k; raises ConfigError naming `flag` otherwise."""
  limit = max_useful_rank(vocab_size, dim)
  if not 1 <= rank <= limit:
    raise ConfigError(
        f'{flag} gives rank {rank}, but a rank-k factorization of a {vocab_size} x {dim} embedding is smaller '
        f'than the matrix only for 1 <= k <= {limit} (k < V d / (V + d) = {break_even_rank(vocab_size, dim):.2f})')
  return rank


def target_rank(vocab_size, dim, reduction=None, rank=None):
  """k for a V x d embedding from exactly one of R (`reduction`, percent) and `rank`, checked as above."""
  if (reduction is None) == (rank is None):
    raise ConfigError('give exactly one of R (--reduction) and --rank')
  if rank is None:
    return rank_for_reduction(reduction, vocab_size, dim)
  return validate_rank(rank, vocab_size, dim)


def reduction_of_rank(rank, vocab_size, dim):
  """The reduction R in percent that rank k achieves: 100 (1 - k (V + d) / (V d))."""
  return 100.0 * (1.0 - rank * (vocab_size + dim) / (vocab_size * dim))


@dataclasses.dataclass
class TruncatedSVD:
  """W ≈ left @ right; left = U_k Σ_k: float32[V, k]; right = V_kᵀ: float32[k, d]; all singular values σ."""
  left: np.ndarray
  right: np.ndarray
  singular_values: np.ndarray

  @property
  def rank(self):
    return self.left.shape[1]

  @property
  def energy_kept(self):
    """Σ_{i<k} σ_i² / Σ_i σ_i²: the share of ||W||_F² that W_k keeps."""
    s2 = np.square(self.singular_values.astype(np.float64))
    return float(s2[:self.rank].sum() / s2.sum()) if s2.sum() > 0 else 1.0

  @property
  def discarded_error(self):
    """||W - W_k||_F = sqrt(Σ_{i>=k} σ_i²) (Eckart-Young)."""
    return float(np.sqrt(np.square(self.singular_values[self.rank:].astype(np.float64)).sum()))


SVD_METHODS = ('auto', 'svd', 'gram')
GRAM_MIN_ELEMENTS = 1 << 25  # 'auto' uses the Gram route from 32M entries (a 128 MB float32 matrix) up
GRAM_CHUNK_ROWS = 1 << 16


def truncated_svd(matrix, rank, method='auto'):
  """Best rank-k factors of `matrix` (float[V, d]).

  method: 'svd', a thin SVD in float64 (O(V d²) time but about 4 V d float64 of workspace: 43 s and +9 GiB for
  1M x 300 here); 'gram', `gram_truncated_svd` (tall matrices: O(V d²) in matrix products, O(d²) workspace); 'auto', the
  Gram route for tall matrices (V >= 10 d) of at least GRAM_MIN_ELEMENTS entries, the plain SVD otherwise.
  """
  if method not in SVD_METHODS:
    raise ConfigError(f'SVD method {method!r} is not one of {", ".join(SVD_METHODS)}')
  vocab_size, dim = matrix.shape
  if method == 'gram' or (method == 'auto' and vocab_size * dim >= GRAM_MIN_ELEMENTS and vocab_size >= 10 * dim):
    return gram_truncated_svd(matrix, rank)
  u, s, vt = np.linalg.svd(np.asarray(matrix, np.float64), full_matrices=False)
  left = (u[:, :rank] * s[:rank]).astype(np.float32)
  right = vt[:rank].astype(np.float32)
  return TruncatedSVD(left, right, s)


def gram_truncated_svd(matrix, rank, chunk_rows=GRAM_CHUNK_ROWS):
  """Best rank-k factors of a tall `matrix` (float[V, d], V >> d) from the eigen-decomposition of its Gram matrix.

  G = Wᵀ W (d x d) is accumulated in float64 over blocks of `chunk_rows` rows; G = V Σ² Vᵀ (`np.linalg.eigh`), so
  the right factor is V_kᵀ and the left one U_k Σ_k = W V_k, again computed block by block. Time: two passes of
  V d² multiply-adds; extra memory: one float64 block, G, and the V x k result. Squaring W squares its condition
  number: singular values below about 1e-8 σ_max lose their accuracy, but those are discarded at any useful k.
  """
  vocab_size, dim = matrix.shape
  gram = np.zeros((dim, dim), np.float64)
  for start in range(0, vocab_size, chunk_rows):
    block = np.asarray(matrix[start:start + chunk_rows], np.float64)
    gram += block.T @ block
  eigenvalues, eigenvectors = np.linalg.eigh(gram)  # ascending
  order = np.argsort(eigenvalues)[::-1]
  singular_values = np.sqrt(np.clip(eigenvalues[order], 0.0, None))
  right = eigenvectors[:, order[:rank]]  # d x k: V_k
  left = np.empty((vocab_size, rank), np.float32)
  for start in range(0, vocab_size, chunk_rows):
    left[start:start + chunk_rows] = np.asarray(matrix[start:start + chunk_rows], np.float64) @ right
  return TruncatedSVD(left, right.T.astype(np.float32), singular_values)


@dataclasses.dataclass
class CompressionReport:
  layer: str
  vocab_size: int
  dim: int
  rank: int
  reduction: float  # achieved R in percent
  params_before: int
  params_after: int
  energy_kept: float
  reconstruction_error: float
  seconds: float

  def as_dict(self):
    return dataclasses.asdict(self)


def compress_layer(layer, reduction=None, rank=None, svd_method='auto'):
  """Factorizes one built `CompressibleEmbedding` in place at the rank given by `reduction` (R in %) or `rank`."""
  start = time.perf_counter()
  vocab_size, dim = layer.input_dim, layer.output_dim
  k = target_rank(vocab_size, dim, reduction, rank)
  svd = truncated_svd(layer.full_matrix(), k, svd_method)
  layer.factorize(svd.left, svd.right)
  report = CompressionReport(
      layer=layer.name, vocab_size=vocab_size, dim=dim, rank=k,
      reduction=reduction_of_rank(k, vocab_size, dim), params_before=vocab_size * dim,
      params_after=k * (vocab_size + dim), energy_kept=svd.energy_kept,
      reconstruction_error=svd.discarded_error, seconds=time.perf_counter() - start)
  logging.info('Compressed %s: V=%d d=%d rank k=%d, params %d -> %d (R=%.2f%%), spectral energy kept %.2f%%, '
               '||W - W_k||_F = %.4f, %.2fs', layer.name, vocab_size, dim, k, report.params_before,
               report.params_after, report.reduction, 100 * report.energy_kept, report.reconstruction_error,
               report.seconds)
  return report


def _to_compressible(layer):
  """clone_model hook: a plain `keras.layers.Embedding` becomes an equivalent `CompressibleEmbedding`."""
  if type(layer) is keras.layers.Embedding:
    return CompressibleEmbedding(layer.input_dim, layer.output_dim, mask_zero=layer.mask_zero,
                                 embeddings_regularizer=layer.embeddings_regularizer, name=layer.name)
  return layer.__class__.from_config(layer.get_config())


def compress_model(model, reduction=None, rank=None):
  """Compresses every word embedding of a built Keras model to low rank; usable without training.

  Models made of `CompressibleEmbedding`s (at any depth, any kind of model) are changed in place. A functional or
  Sequential model with plain top-level `keras.layers.Embedding`s is cloned with `CompressibleEmbedding`s that take
  over the trained weights, and the clone is compressed (the original is left as it was). A plain `Embedding`
  nested in another layer, or in a subclassed model, cannot be reached that way: a ConfigError says so.

  Args:
    model: a built `keras.Model`.
    reduction: R in percent (90 removes 90% of each embedding's parameters), or
    rank: k directly.
  Returns:
    (model, [CompressionReport]): the compressed model (the same object when changed in place).
  """
  inner = {id(l) for c in model._flatten_layers() if isinstance(c, CompressibleEmbedding)
           for l in c._flatten_layers(include_self=False)}
  plain = [l for l in model._flatten_layers() if type(l) is keras.layers.Embedding and id(l) not in inner]
  if any(l not in model.layers for l in plain):
    raise ConfigError(f'{model.name}: embedding {next(l for l in plain if l not in model.layers).name!r} is nested '
                      'inside another layer; build it as lmf_tf.layers.CompressibleEmbedding to compress it')
  if plain:
    if not isinstance(model, keras.Sequential) and not hasattr(model, '_operations'):
      raise ConfigError(f'{model.name}: a subclassed model cannot be cloned; build its embedding as '
                        'lmf_tf.layers.CompressibleEmbedding to compress it in place')
    clone = keras.models.clone_model(model, clone_function=_to_compressible)
    clone.build(model.inputs[0].shape if model.inputs else None)
    for source, target in zip(model.layers, clone.layers):
      if isinstance(target, CompressibleEmbedding):
        target.embedding.set_weights(source.get_weights())
      else:
        target.set_weights(source.get_weights())
    model = clone
  layers = [l for l in model._flatten_layers() if isinstance(l, CompressibleEmbedding) and not l.is_compressed]
  if not layers:
    raise ConfigError(f'model {model.name!r} has no uncompressed embedding layer to compress')
  reports = [compress_layer(layer, reduction=reduction, rank=rank) for layer in layers]
  return model, reports


def rebuild_optimizer(model):
  """A fresh optimizer of the same kind and schedule for the model's current trainable variables.

  The step counter carries over (a learning-rate schedule is a function of it), as do the slot variables
  (moments) of every variable that existed before; new variables (the factors) start from zero state.
  """
  old = model.optimizer
  new = old.__class__.from_config(old.get_config())
  new.build(model.trainable_variables)
  old_slots = {v.path: v for v in old.variables}
  carried = 0
  for v in new.variables:
    source = old_slots.get(v.path)
    if source is not None and tuple(source.shape) == tuple(v.shape):
      v.assign(source)
      carried += 1
  new.iterations.assign(old.iterations)
  model.optimizer = new
  # Every traced function captured the old V x d variable: re-trace training, evaluation and prediction, or
  # `evaluate`/`predict` would go on reading the stale embedding.
  model.make_train_function(force=True)
  model.make_test_function(force=True)
  model.make_predict_function(force=True)
  logging.info('Optimizer rebuilt for %d trainable variables: %d optimizer variables carried over, step %d.',
               len(model.trainable_variables), carried, int(new.iterations.numpy()))
  return new


class OnlineCompression(keras.callbacks.Callback):
  """Swaps the model's embedding for its low-rank factors at a chosen step of `fit` (paper §3.1, online LMF).

  Exactly one of `at_step` (global optimizer step, counted from the start of training) and `at_epoch` (swap
  before this 0-based epoch begins). Training continues with every other trained weight kept; the new factors get
  a fresh optimizer state.
  `reports` holds the `CompressionReport`s; `swap_step` the global step of the swap.
  """

  def __init__(self, reduction=None, rank=None, at_step=None, at_epoch=None):
    super().__init__()
    if (at_step is None) == (at_epoch is None):
      raise ConfigError('give exactly one of --compress_at_step and --compress_at_epoch')
    if (reduction is None) == (rank is None):
      raise ConfigError('give exactly one of R (--reduction) and --rank')
    self.reduction, self.rank = reduction, rank
    self.at_step, self.at_epoch = at_step, at_epoch
    self.reports = []
    self.swap_step = None

  @property
  def done(self):
    return any(l.is_compressed for l in self.model._flatten_layers() if isinstance(l, CompressibleEmbedding))

  def _swap(self):
    with self.model.distribute_strategy.scope():  # new variables are mirrored like the others
      _, self.reports = compress_model(self.model, reduction=self.reduction, rank=self.rank)
      rebuild_optimizer(self.model)
    self.swap_step = int(self.model.optimizer.iterations.numpy())

  def on_train_begin(self, logs=None):
    if self.at_step is not None and not self.done and int(self.model.optimizer.iterations.numpy()) >= self.at_step:
      self._swap()  # --compress_at_step=0: compress before the first step

  def on_epoch_begin(self, epoch, logs=None):
    if self.at_epoch is not None and epoch >= self.at_epoch and not self.done:
      self._swap()

  def on_train_batch_end(self, batch, logs=None):
    if self.at_step is not None and not self.done and int(self.model.optimizer.iterations.numpy()) >= self.at_step:
      self._swap()
