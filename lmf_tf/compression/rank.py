"""The rank k of a factorization from the reduction R asked for, and its checks (Acharya et al. 2019, §3.1).

The embedding W (V x d) is replaced by its best rank-k approximation in the Frobenius norm (Eckart-Young):
W ≈ W_k = U_k Σ_k V_kᵀ, with U_k Σ_k (V x k) as the new embedding table and V_kᵀ (k x d) as a bias-free dense
projection. The layer then holds k (V + d) instead of V d parameters, a reduction

    R = 1 - k (V + d) / (V d),   so   k = floor((1 - R) V d / (V + d))            (paper §3.1, eq. 3).

Worked example: V = 14,000, d = 50, R = 90% -> k = floor(0.1 * 700,000 / 14,050) = floor(4.98) = 4.
"""

import fractions
import math
import numbers
import warnings

from lmf_tf.errors import ConfigError


def break_even_rank(vocab_size, dim):
  """V d / (V + d): a factorization saves parameters only for k below this (a float)."""
  return vocab_size * dim / (vocab_size + dim)


def max_useful_rank(vocab_size, dim):
  """The largest integer k with k (V + d) < V d."""
  return math.ceil(vocab_size * dim / (vocab_size + dim)) - 1


def rank_for_reduction(reduction, vocab_size, dim, name='reduction', what='embedding'):
  """k = floor((1 - R/100) V d / (V + d)) for a reduction R in percent (0 < R < 100), computed exactly.

  >>> rank_for_reduction(90, 14000, 50)
  4
  >>> rank_for_reduction(90, 10000, 300)
  29

  `name` is how the caller's user gave R, for messages: `reduction` (a Python argument) or `--reduction` (a flag);
  `what` names the matrix ('embedding', 'kernel').
  Raises:
    ConfigError: if R is not a number in (0, 100), or gives k < 1 or a k that would not shrink the layer; the
      message names `name`, the value and the possible range.
  """
  r = fractions.Fraction(str(check_reduction_value(reduction, name)))
  k = math.floor((1 - r / 100) * vocab_size * dim / (vocab_size + dim))
  if k < 1:
    # k >= 1 needs (1 - R/100) V d / (V + d) >= 1, i.e. R <= 100 (1 - (V + d) / (V d)).
    max_r = float(100 * (1 - fractions.Fraction(vocab_size + dim, vocab_size * dim)))
    raise ConfigError(
        f'{name}={reduction:g} leaves rank k={k} for V={vocab_size}, d={dim}; R must be at most {max_r:.4f} '
        f'(rank 1) for this {what}')
  return _useful_rank(k, vocab_size, dim, f'{name}={reduction:g}', what)


def check_reduction_value(reduction, name='reduction'):
  """Returns `reduction` if it is a number strictly between 0 and 100; raises ConfigError naming `name` otherwise."""
  if isinstance(reduction, bool) or not isinstance(reduction, numbers.Real) or not 0 < reduction < 100:
    raise ConfigError(f'{name}={reduction!r}: the reduction R must be a percentage strictly between 0 and 100')
  return reduction


def warn_if_fraction(reduction, name='reduction', stacklevel=3):
  """Warns (once, where the user gave it) for 0 < R < 1: most likely a fraction meant as a percentage."""
  if reduction is not None and 0 < reduction < 1:
    warnings.warn(f'{name}={reduction:g} removes {reduction:g}% of the embedding parameters: R is a percentage '
                  f'({name}={100 * reduction:g} removes {100 * reduction:g}%)', stacklevel=stacklevel)


def check_rank_value(rank, name='rank'):
  """Returns `rank` if it is a positive integer (not a bool, not 3.7); raises ConfigError naming `name` otherwise."""
  if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1:
    raise ConfigError(f'{name}={rank!r}: the rank k must be a positive integer')
  return int(rank)


def validate_rank(rank, vocab_size, dim, name='rank', what='embedding'):
  """Checks that `rank` is an integer with 1 <= k < V d / (V + d) and returns it; raises ConfigError naming `name`
  (`rank` for a Python argument, `--rank` for a flag) otherwise."""
  return _useful_rank(check_rank_value(rank, name), vocab_size, dim, f'{name}={rank}', what)


def _useful_rank(rank, vocab_size, dim, given, what='embedding'):
  limit = max_useful_rank(vocab_size, dim)
  if not 1 <= rank <= limit:
    raise ConfigError(
        f'{given} gives rank {rank}, but a rank-k factorization of a {vocab_size} x {dim} {what} is smaller '
        f'than the matrix only for 1 <= k <= {limit} (k < V d / (V + d) = {break_even_rank(vocab_size, dim):.2f})')
  return rank


def target_rank(vocab_size, dim, reduction=None, rank=None, names=('reduction', 'rank'), what='embedding'):
  """k for a V x d matrix (`what`: an embedding, or a kernel of M inputs and N outputs) from exactly one of R
  (`reduction`, percent) and `rank`, checked as above; `names` are how the user gave the two (`('--reduction',
  '--rank')` for a script's flags)."""
  if (reduction is None) == (rank is None):
    raise ConfigError(f'give exactly one of {names[0]} (R, percent) and {names[1]} (k)')
  if rank is None:
    return rank_for_reduction(reduction, vocab_size, dim, name=names[0], what=what)
  return validate_rank(rank, vocab_size, dim, name=names[1], what=what)


def reduction_of_rank(rank, vocab_size, dim):
  """The reduction R in percent that rank k achieves: 100 (1 - k (V + d) / (V d))."""
  return 100.0 * (1.0 - rank * (vocab_size + dim) / (vocab_size * dim))
