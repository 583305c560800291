"""The truncated SVD of an embedding matrix, and the factorization of one layer (Acharya et al. 2019, §3.1).

The embedding W (V x d) is replaced by its best rank-k approximation in the Frobenius norm (Eckart-Young):
W ≈ W_k = U_k Σ_k V_kᵀ, with U_k Σ_k (V x k) as the new embedding table and V_kᵀ (k x d) as a bias-free dense
projection. The layer then holds k (V + d) instead of V d parameters, a reduction

    R = 1 - k (V + d) / (V d),   so   k = floor((1 - R) V d / (V + d))            (paper §3.1, eq. 3).

Worked example: V = 14,000, d = 50, R = 90% -> k = floor(0.1 * 700,000 / 14,050) = floor(4.98) = 4.
"""

import dataclasses
import time

import numpy as np
from absl import logging

from lmf_tf.compression.rank import reduction_of_rank, target_rank
from lmf_tf.errors import ConfigError


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
  """One factorization: the layer, its matrix (V x d for an embedding, M inputs x N outputs for a kernel), k."""
  layer: str
  vocab_size: int  # rows: V words, or a kernel's M inputs
  dim: int  # columns: d, or a kernel's N outputs
  rank: int
  reduction: float  # achieved R in percent
  params_before: int
  params_after: int
  energy_kept: float
  reconstruction_error: float
  seconds: float
  matrix: str = 'embedding'  # or 'kernel'
  block_rows: tuple | None = None  # frequency blocks (`FrequencyRanks`): the rows of each block, and their ranks
  block_ranks: tuple | None = None

  def as_dict(self):
    return dataclasses.asdict(self)

  def summary(self):
    """One line: the layer, V, d, k, the parameters before and after, the energy kept, the error, the time."""
    shape = (f'V={self.vocab_size} d={self.dim}' if self.matrix == 'embedding' else
             f'kernel {self.vocab_size} x {self.dim}')
    rank = f'rank k={self.rank}'
    if self.block_rows:
      rank += f' spread over frequency blocks of {list(self.block_rows)} rows at ranks {list(self.block_ranks)}'
    return (f'Compressed {self.layer}: {shape} {rank}, params '
            f'{self.params_before} -> {self.params_after} (R={self.reduction:.2f}%), spectral energy kept '
            f'{100 * self.energy_kept:.2f}%, ||W - W_k||_F = {self.reconstruction_error:.4f}, {self.seconds:.2f}s')


def compress_layer(layer, reduction=None, rank=None, svd_method='auto'):
  """Factorizes one built `CompressibleEmbedding` or `CompressibleDense` in place at the rank given by
  `reduction` (R in %) or `rank`.

  An already factorized layer is factorized again at the new rank (the best rank-k approximation of its product
  U Σ Vᵀ): gradual reduction. Returns a `CompressionReport`.
  """
  start = time.perf_counter()
  matrix = layer.full_matrix()
  vocab_size, dim = matrix.shape
  what = getattr(layer, 'FACTORIZED_MATRIX', 'embedding')
  k = target_rank(vocab_size, dim, reduction, rank, what=what)
  params_before = vocab_size * dim if layer.rank is None else layer.rank * (vocab_size + dim)
  svd = truncated_svd(matrix, k, svd_method)
  layer.factorize(svd.left, svd.right)
  report = CompressionReport(
      layer=layer.name, vocab_size=vocab_size, dim=dim, rank=k,
      reduction=reduction_of_rank(k, vocab_size, dim), params_before=params_before,
      params_after=k * (vocab_size + dim), energy_kept=svd.energy_kept,
      reconstruction_error=svd.discarded_error, seconds=time.perf_counter() - start, matrix=what)
  logging.info('%s', report.summary())
  return report
