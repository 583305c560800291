"""Low-rank matrix factorization (LMF) of word embeddings, offline or online (Acharya et al. 2019, §3.1).

The embedding W (V x d) is replaced by its best rank-k approximation in the Frobenius norm (Eckart-Young):
W ≈ W_k = U_k Σ_k V_kᵀ, with U_k Σ_k (V x k) as the new embedding table and V_kᵀ (k x d) as a bias-free dense
projection. The layer then holds k (V + d) instead of V d parameters, a reduction

    R = 1 - k (V + d) / (V d),   so   k = floor((1 - R) V d / (V + d))            (paper §3.1, eq. 3).

Worked example: V = 14,000, d = 50, R = 90% -> k = floor(0.1 * 700,000 / 14,050) = floor(4.98) = 4.
"""

import fractions
import math

from lmf_tf.errors import ConfigError


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
