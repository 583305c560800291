"""Tensor-train (TT) matrices as Keras layers: `TTEmbedding` and `TTDense` (Grachev et al. 2017, §3.4).

A matrix W of shape M x N with M = m_1···m_d and N = n_1···n_d is seen as the 2d-way tensor
W[(i_1..i_d), (j_1..j_d)] (row-major multi-indices) and stored in the TT-matrix format of Oseledets (2011),

    W[(i_1..i_d), (j_1..j_d)] = G_1[:, i_1, j_1, :] G_2[:, i_2, j_2, :] ··· G_d[:, i_d, j_d, :],

with cores G_k: float32[r_{k-1}, m_k, n_k, r_k] and r_0 = r_d = 1. It holds Σ_k r_{k-1} m_k n_k r_k numbers instead
of M N. Worked example: a 10,000 x 200 embedding with row shape (20, 20, 25), column shape (5, 5, 8) and TT rank 16
holds 1·20·5·16 + 16·20·5·16 + 16·25·8·1 = 30,400 numbers against 2,000,000 (66x fewer).

The cores of a trained matrix come from TT-SVD (Oseledets 2011, Algorithm 1), done by `tensorly`'s
`tensor_train_matrix` rather than written here (`tt_matrix_svd`). With full ranks it is exact (tested).

`TTEmbedding` looks a word up by contracting the core slices of its row multi-index only (a few r² products per
token; no V x N table is ever built). `TTDense` rebuilds its M x N kernel from the cores at every call
(`dense_from_cores`, about M N r multiply-adds) and then does a plain matrix product: in training that cost is
shared by the B x T rows of a window and is far below the product's own B T M N, but at inference with batch 1 it
is paid for every window. A TT matrix-by-vector product would avoid building the kernel, but for the small model's
200 x 10,000 softmax it costs more per row than the dense product at the ranks that keep perplexity; this is the
speed side of TT's size gain, and `make ptb-table` measures it.
"""

import math

import keras
import numpy as np
from keras import ops

from lmf_tf import extras
from lmf_tf.errors import ConfigError


def balanced_factors(n, num_factors=3):
  """n as a product of `num_factors` integers as close to n^(1/num_factors) as its divisors allow, ascending.

  >>> balanced_factors(10000)
  (20, 20, 25)
  >>> balanced_factors(200)
  (5, 5, 8)
  """
  if n < 1 or num_factors < 1:
    raise ConfigError(f'cannot factor {n} into {num_factors} factors')
  if num_factors == 1:
    return (n,)
  target = n ** (1.0 / num_factors)
  divisors = [d for d in range(1, n + 1) if n % d == 0]
  first = min(divisors, key=lambda d: (abs(math.log(d) - math.log(target)), d))
  return tuple(sorted((first,) + balanced_factors(n // first, num_factors - 1)))


def tt_rank_list(rank, num_cores):
  """[1, r, ..., r, 1] from an int r, or a full list [1, r_1, ..., r_{d-1}, 1] checked for length and ends."""
  if isinstance(rank, int):
    ranks = [1] + [rank] * (num_cores - 1) + [1]
  else:
    ranks = [int(r) for r in rank]
  if len(ranks) != num_cores + 1 or ranks[0] != 1 or ranks[-1] != 1 or min(ranks) < 1:
    raise ConfigError(f'TT ranks {rank}: need an int >= 1 or a list of {num_cores + 1} ranks starting and ending '
                      'with 1')
  return ranks


def max_tt_ranks(row_shape, col_shape):
  """The ranks at which a TT-matrix is exact: r_k = min(Π_{l<=k} m_l n_l, Π_{l>k} m_l n_l)."""
  sizes = [m * n for m, n in zip(row_shape, col_shape)]
  return [1] + [min(math.prod(sizes[:k]), math.prod(sizes[k:])) for k in range(1, len(sizes))] + [1]


def tt_num_params(row_shape, col_shape, ranks):
  """Σ_k r_{k-1} m_k n_k r_k: numbers stored by the TT cores."""
  ranks = [min(r, m) for r, m in zip(tt_rank_list(ranks, len(row_shape)), max_tt_ranks(row_shape, col_shape))]
  return sum(ranks[k] * m * n * ranks[k + 1] for k, (m, n) in enumerate(zip(row_shape, col_shape)))


def tt_matrix_svd(matrix, row_shape, col_shape, ranks):
  """TT-SVD of `matrix` (float[M, N]) into cores float32[r_{k-1}, m_k, n_k, r_k] (ranks capped at the exact ones).

  Uses `tensorly.decomposition.tensor_train_matrix` on the tensorized matrix of shape (m_1..m_d, n_1..n_d).
  """
  tensor_train_matrix = extras.require('tensorly.decomposition', 'TT-SVD (cores_from)').tensor_train_matrix  # `tt`

  matrix = np.asarray(matrix, np.float64)
  if matrix.shape != (math.prod(row_shape), math.prod(col_shape)):
    raise ConfigError(f'a {matrix.shape} matrix does not have TT shape {row_shape} x {col_shape}')
  ranks = [min(r, m) for r, m in zip(tt_rank_list(ranks, len(row_shape)), max_tt_ranks(row_shape, col_shape))]
  tensor = matrix.reshape(tuple(row_shape) + tuple(col_shape))
  return [np.asarray(core, np.float32) for core in tensor_train_matrix(tensor, rank=ranks).factors]


def dense_from_cores(cores):
  """The M x N matrix of TT cores [r_{k-1}, m_k, n_k, r_k] (the module's formula), as a tensor."""
  result = cores[0]  # [1, m_1, n_1, r_1]
  rows, cols = cores[0].shape[1], cores[0].shape[2]
  result = ops.reshape(result, (rows, cols, cores[0].shape[3]))
  for core in cores[1:]:
    # [M', N', r] x [r, m, n, r'] -> [M', m, N', n, r'] -> [M' m, N' n, r']
    result = ops.einsum('abr,rmns->ambns', result, core)
    rows, cols = rows * core.shape[1], cols * core.shape[2]
    result = ops.reshape(result, (rows, cols, core.shape[3]))
  return ops.reshape(result, (rows, cols))


class _TTMatrix(keras.layers.Layer):
  """Holds the cores `core0..core{d-1}` of an M x N TT-matrix; `cores_from(matrix)` sets them by TT-SVD."""

  def __init__(self, row_shape, col_shape, tt_rank, init_scale=0.1, **kwargs):
    super().__init__(**kwargs)
    self.row_shape, self.col_shape = tuple(int(m) for m in row_shape), tuple(int(n) for n in col_shape)
    if len(self.row_shape) != len(self.col_shape):
      raise ConfigError(f'TT row shape {self.row_shape} and column shape {self.col_shape} need as many factors')
    self.tt_rank = tt_rank if isinstance(tt_rank, int) else [int(r) for r in tt_rank]
    self.ranks = [min(r, m) for r, m in zip(tt_rank_list(self.tt_rank, len(self.row_shape)),
                                            max_tt_ranks(self.row_shape, self.col_shape))]
    self.init_scale = float(init_scale)
    self.cores = []

  def _build_cores(self):
    # Each core ~ U(-a, a) with a chosen so that an entry of the product has about the variance of U(-s, s).
    d = len(self.row_shape)
    var = (self.init_scale ** 2 / 3) ** (1 / d)
    for k, (m, n) in enumerate(zip(self.row_shape, self.col_shape)):
      a = math.sqrt(3 * var / self.ranks[k])
      self.cores.append(self.add_weight(name=f'core{k}', shape=(self.ranks[k], m, n, self.ranks[k + 1]),
                                        initializer=keras.initializers.RandomUniform(-a, a)))

  @property
  def shape(self):
    return math.prod(self.row_shape), math.prod(self.col_shape)

  def full_matrix(self):
    """The M x N matrix as a NumPy array."""
    return ops.convert_to_numpy(dense_from_cores(self.cores))

  def cores_from(self, matrix):
    """Sets the cores to the TT-SVD of `matrix` (float[M, N]) at this layer's ranks."""
    for variable, core in zip(self.cores, tt_matrix_svd(matrix, self.row_shape, self.col_shape, self.ranks)):
      variable.assign(core)

  def get_config(self):
    return {**super().get_config(), 'row_shape': self.row_shape, 'col_shape': self.col_shape,
            'tt_rank': self.tt_rank, 'init_scale': self.init_scale}


@keras.saving.register_keras_serializable(package='lmf_tf')
class TTEmbedding(_TTMatrix):
  """`int[B, T]` ids -> `float32[B, T, N]`: rows of the V x N TT-matrix (V = Π row_shape, N = Π col_shape)."""

  def build(self, input_shape=None):
    self._build_cores()
    self.built = True

  def call(self, ids):
    """Contracts, for each id, only the core slices of its multi-index (i_1..i_d): about Σ_k r² n_1···n_k
    multiply-adds per token, with no V x N matrix built (row-major i_k = (id // Π_{l>k} m_l) mod m_k)."""
    ids = ops.cast(ids, 'int32')
    flat = ops.reshape(ids, (-1,))
    rows = None
    for k, core in enumerate(self.cores):
      index = (flat // math.prod(self.row_shape[k + 1:])) % self.row_shape[k]
      piece = ops.transpose(ops.take(core, index, axis=1), (1, 0, 2, 3))  # [tokens, r_{k-1}, n_k, r_k]
      if rows is None:
        rows = piece[:, 0]  # r_0 = 1: [tokens, n_1, r_1]
      else:
        rows = ops.einsum('tar,trbs->tabs', rows, piece)
        rows = ops.reshape(rows, (ops.shape(rows)[0], -1, ops.shape(rows)[-1]))
    return ops.reshape(rows, (*ops.shape(ids), self.shape[1]))

  def compute_output_shape(self, input_shape):
    return (*input_shape, self.shape[1])


@keras.saving.register_keras_serializable(package='lmf_tf')
class TTDense(_TTMatrix):
  """`float32[..., M]` -> `float32[..., N]`: x W + b, with the M x N kernel W a TT-matrix and b: float32[N]."""

  def build(self, input_shape=None):
    if input_shape is not None and input_shape[-1] != self.shape[0]:
      raise ValueError(f'{self.name}: input width {input_shape[-1]} is not the TT row size {self.shape[0]}')
    self._build_cores()
    self.bias = self.add_weight(name='bias', shape=(self.shape[1],),
                                initializer=keras.initializers.RandomUniform(-self.init_scale, self.init_scale))
    self.built = True

  def call(self, inputs):
    return ops.matmul(inputs, dense_from_cores(self.cores)) + self.bias

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], self.shape[1])
