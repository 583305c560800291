"""Low-rank dense and recurrent kernels swapped during training, beside the embedding
(`OnlineCompression(kernels=...)`).

Grachev et al. 2017, §3.3 factorize a language model's LSTM and softmax matrices; here a model's
`keras.layers.Dense` kernels W (M x N) and `keras.layers.LSTM` matrices W_x (D x 4H), W_h (H x 4H) are replaced by
their truncated SVD at the embedding's swap (Acharya et al. 2019, §3.1, applied to W instead of the embedding), and
training goes on with the factors:

    lmf_tf.OnlineCompression(reduction=90, at_epoch=4,
                             kernels=lmf_tf.LowRankKernels(rank=16, layers=['hidden', 'classifier']))

Each selected Dense becomes a `CompressibleDense` in place (`dense.py`): x U_k Σ_k V_kᵀ + b, k (M + N) + N numbers
instead of M N + N; each LSTM a `CompressibleLSTM` (`recurrent.py`). A factorization saves numbers only for
k < M N / (M + N), so a narrow layer (a binary output Dense(1)) is left alone by default.
"""

import dataclasses

import keras

from lmf_tf.compression import nested
from lmf_tf.compression.dense import CompressibleDense
from lmf_tf.compression.recurrent import CompressibleLSTM, CompressibleLSTMCell
from lmf_tf.compression.factorization import compress_layer
from lmf_tf.compression.rank import check_rank_value, check_reduction_value, target_rank
from lmf_tf.compression.swap import Family, select_named
from lmf_tf.errors import ConfigError

KERNELS = Family('Dense or LSTM layer', 'keras.layers.Dense, keras.layers.LSTM and their lmf_tf.layers.Compressible '
                 'forms')
PLAIN = (keras.layers.Dense, CompressibleDense, keras.layers.LSTM, CompressibleLSTM)


@dataclasses.dataclass(frozen=True)
class LowRankKernels:
  """Which kernels `OnlineCompression` factorizes at its swap, and to what rank.

  Exactly one of `reduction` (R in percent of each matrix's M N numbers: k = floor((1 - R/100) M N / (M + N))) and
  `rank` (k for every matrix). The matrices: a `keras.layers.Dense`'s kernel (M inputs x N units); an
  `keras.layers.LSTM`'s input matrix W_x (D x 4H) and recurrent matrix W_h (H x 4H), each factorized where the
  rank shrinks it. `layers`: None (default) every plain Dense and LSTM of the model with a matrix the rank shrinks
  (the others are left alone and named in the swap's printed lines); or names or attribute paths, a layer class, or
  a predicate, as `OnlineCompression(layers=...)` selects embeddings.
  """
  reduction: float | None = None
  rank: int | None = None
  layers: object = None

  def __post_init__(self):
    name = 'LowRankKernels'
    if (self.reduction is None) == (self.rank is None):
      raise ConfigError(f'{name}: give exactly one of reduction= (R, percent) and rank= (k)')
    try:
      check_reduction_value(self.reduction) if self.reduction is not None else check_rank_value(self.rank)
    except ConfigError as e:
      raise ConfigError(f'{name}: {e}') from None

  def ranks_of(self, layer):
    """{matrix: k} for the matrices of built `layer` that the setting shrinks; raises ConfigError naming the
    argument and the layer when it shrinks none."""
    ranks, error = {}, None
    for matrix, (rows, columns) in matrix_shapes(layer).items():
      try:
        ranks[matrix] = target_rank(rows, columns, self.reduction, self.rank, what=matrix.replace('_', ' '))
      except ConfigError as e:
        error = error or e
    if not ranks:
      raise ConfigError(f'LowRankKernels: {error} ({type(layer).__name__} {layer.name!r})')
    return ranks


def matrix_shapes(layer):
  """{matrix: (rows, columns)}: a Dense's kernel (M x N); an LSTM's W_x (D x 4H) and W_h (H x 4H)."""
  if isinstance(layer, keras.layers.Dense):
    return {'kernel': (int(layer.input_spec.axes[-1]), int(layer.units))}  # set by build, whole or factorized
  cell = layer.cell
  inputs = cell.input_dim if isinstance(cell, CompressibleLSTMCell) else int(cell.kernel.shape[0])
  return {'kernel': (inputs, 4 * cell.units), 'recurrent_kernel': (cell.units, 4 * cell.units)}


@dataclasses.dataclass
class KernelSelection:
  """The layers to factorize with their ranks (`ranks`: {layer name: {matrix: k}}), and those left alone with
  why."""
  ranks: dict
  chosen: list
  left_alone: list  # [(layer, why)]

  def left_alone_line(self):
    """One line naming the layers left alone and why, or '' if none."""
    if not self.left_alone:
      return ''
    return 'kernels left alone: ' + '; '.join(f'{layer.name} ({why})' for layer, why in self.left_alone)


def select_kernels(model, kernels, caller='OnlineCompression'):
  """The Dense and LSTM layers of built `model` that `kernels` (a `LowRankKernels`) factorizes, and their ranks.

  Raises ConfigError (naming `caller`) for a model whose layers are not built, a selection that names none, or a
  named layer the rank does not shrink."""
  found, skipped = [], []
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access  (Keras's own walk)
    if isinstance(layer, (keras.layers.Dense, keras.layers.LSTM)) and layer not in found + skipped:
      (found if type(layer) in PLAIN else skipped).append(layer)
  unbuilt = [l.name for l in found if not l.built]
  if unbuilt:
    raise ConfigError(f'{caller}(kernels=...): layers {unbuilt} of model {model.name!r} are not built; build or call '
                      'the model first (fit builds it before its first step)')
  if kernels.layers is not None:
    try:
      chosen = select_named(model, kernels.layers, found, skipped, KERNELS, 'LowRankKernels').chosen
      return KernelSelection({l.name: kernels.ranks_of(l) for l in chosen}, chosen, [])
    except ConfigError as e:
      raise ConfigError(f'{caller}: {e}') from None
  ranks, left_alone = {}, [(l, f'a {type(l).__name__}') for l in skipped]
  for layer in found:
    if getattr(layer, 'is_compressed', False):
      left_alone.append((layer, 'already factorized'))
      continue
    try:
      ranks[layer.name] = kernels.ranks_of(layer)
    except ConfigError:
      shapes = ', '.join(f'{r} x {c}' for r, c in matrix_shapes(layer).values())
      left_alone.append((layer, f'{shapes}: no rank saves numbers at this setting'))
  if not ranks:
    raise ConfigError(f'{caller}(kernels={kernels!r}): no Dense or LSTM of model {model.name!r} is shrunk by it '
                      f'({"; ".join(f"{l.name}: {why}" for l, why in left_alone) or "it has none"})')
  return KernelSelection(ranks, [l for l in found if l.name in ranks], left_alone)


class _Matrix:
  """One matrix of a layer, as `compress_layer` factorizes it: its `name`, `rank`, `full_matrix`, `factorize`."""
  FACTORIZED_MATRIX = 'kernel'

  def __init__(self, layer, matrix):
    self.layer, self.matrix = layer, matrix
    self.name = layer.name if isinstance(layer, keras.layers.Dense) else f'{layer.name}.{matrix}'

  @property
  def rank(self):
    if isinstance(self.layer, keras.layers.Dense):
      return self.layer.rank
    return self.layer.cell.ranks.get(self.matrix)

  def full_matrix(self):
    if isinstance(self.layer, keras.layers.Dense):
      return self.layer.full_matrix()
    return self.layer.cell.full_matrix(self.matrix)

  def factorize(self, left, right):
    if isinstance(self.layer, keras.layers.Dense):
      return self.layer.factorize(left, right)
    return self.layer.cell.factorize(self.matrix, left, right)


def make_compressible(layer):
  """A plain Dense or LSTM becomes its `Compressible` form in place; returns it."""
  if isinstance(layer, keras.layers.Dense):
    return CompressibleDense.from_dense(layer)
  return CompressibleLSTM.from_lstm(layer)


def factorize_kernels(model, selection, svd_method='auto', caller='OnlineCompression'):
  """Factorizes each chosen layer's matrices of `model` in place at their ranks (a plain Dense or LSTM becomes its
  `Compressible` form first); a user's layer or subclassed model holding one records it for a `.keras` file
  (`nested.carry`). Returns the [CompressionReport], one per matrix."""
  reports = []
  for layer in selection.chosen:
    make_compressible(layer)
    for matrix, rank in selection.ranks[layer.name].items():
      reports.append(compress_layer(_Matrix(layer, matrix), rank=rank, svd_method=svd_method))
  for layer in selection.chosen:
    nested.carry(model, layer, caller)
  return reports
