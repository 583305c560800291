"""Low-rank dense kernels swapped during training, beside the embedding (`OnlineCompression(kernels=...)`).

Grachev et al. 2017, §3.3 factorize a language model's LSTM and softmax matrices; here a classifier's
`keras.layers.Dense` kernels W (M x N) are replaced by their truncated SVD at the embedding's swap (Acharya et al.
2019, §3.1, applied to W instead of the embedding), and training goes on with the factors:

    lmf_tf.OnlineCompression(reduction=90, at_epoch=4,
                             kernels=lmf_tf.LowRankKernels(rank=16, layers=['hidden', 'classifier']))

Each selected Dense becomes a `CompressibleDense` in place (`dense.py`): x U_k Σ_k V_kᵀ + b, k (M + N) + N numbers
instead of M N + N. A factorization saves numbers only for k < M N / (M + N), so a narrow layer (a binary output
Dense(1)) is left alone by default.
"""

import dataclasses

import keras

from lmf_tf.compression import nested
from lmf_tf.compression.dense import CompressibleDense
from lmf_tf.compression.factorization import compress_layer
from lmf_tf.compression.rank import check_rank_value, check_reduction_value, target_rank
from lmf_tf.compression.swap import Family, Selection, select_named
from lmf_tf.errors import ConfigError

DENSE = Family('dense layer', 'keras.layers.Dense and lmf_tf.layers.CompressibleDense')


@dataclasses.dataclass(frozen=True)
class LowRankKernels:
  """Which dense kernels `OnlineCompression` factorizes at its swap, and to what rank.

  Exactly one of `reduction` (R in percent of each kernel's M N numbers: k = floor((1 - R/100) M N / (M + N))) and
  `rank` (k for every kernel). `layers`: None (default) every plain `keras.layers.Dense` of the model whose kernel
  the rank shrinks (the others are left alone and named in the swap's printed lines); or names or attribute paths, a
  layer class, or a predicate, as `OnlineCompression(layers=...)` selects embeddings.
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

  def rank_of(self, layer):
    """k for `layer`'s built kernel (M x N), or raises ConfigError naming the argument and the layer."""
    rows, columns = int(layer.kernel.shape[0]), int(layer.units)
    try:
      return target_rank(rows, columns, self.reduction, self.rank, what='kernel')
    except ConfigError as e:
      raise ConfigError(f'LowRankKernels: {e} (dense layer {layer.name!r})') from None


@dataclasses.dataclass
class KernelSelection:
  """The dense layers to factorize with their ranks (`ranks`: {name: k}), and those left alone with why."""
  ranks: dict
  chosen: list
  left_alone: list  # [(layer, why)]

  def left_alone_line(self):
    """One line naming the dense layers left alone and why, or '' if none."""
    if not self.left_alone:
      return ''
    return 'kernels left alone: ' + '; '.join(f'{layer.name} ({why})' for layer, why in self.left_alone)


def select_kernels(model, kernels, caller='OnlineCompression'):
  """The dense layers of built `model` that `kernels` (a `LowRankKernels`) factorizes, and their ranks.

  Raises ConfigError (naming `caller`) for a model whose layers are not built, a selection that names no dense
  layer, or a named layer the rank does not shrink."""
  found, skipped = [], []
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access  (Keras's own walk)
    if isinstance(layer, keras.layers.Dense) and layer not in found + skipped:
      (found if type(layer) in (keras.layers.Dense, CompressibleDense) else skipped).append(layer)
  unbuilt = [l.name for l in found if not l.built]
  if unbuilt:
    raise ConfigError(f'{caller}(kernels=...): dense layers {unbuilt} of model {model.name!r} are not built; build '
                      'or call the model first (fit builds it before its first step)')
  if kernels.layers is not None:
    chosen = select_named(model, kernels.layers, found, skipped, DENSE, f'{caller}(kernels=LowRankKernels)').chosen
    try:
      return KernelSelection({l.name: kernels.rank_of(l) for l in chosen}, chosen, [])
    except ConfigError as e:
      raise ConfigError(f'{caller}(kernels=...): {e}') from None
  ranks, left_alone = {}, [(l, f'a {type(l).__name__}') for l in skipped]
  for layer in found:
    if getattr(layer, 'rank', None) is not None:
      left_alone.append((layer, f'already rank {layer.rank}'))
      continue
    try:
      ranks[layer.name] = kernels.rank_of(layer)
    except ConfigError:
      rows, columns = int(layer.kernel.shape[0]), layer.units
      left_alone.append((layer, f'{rows} x {columns}: no rank saves numbers at this setting'))
  if not ranks:
    raise ConfigError(f'{caller}(kernels={kernels!r}): no dense layer of model {model.name!r} is shrunk by it '
                      f'({"; ".join(f"{l.name}: {why}" for l, why in left_alone) or "it has no Dense"})')
  return KernelSelection(ranks, [l for l in found if l.name in ranks], left_alone)


def factorize_kernels(model, selection, svd_method='auto', caller='OnlineCompression'):
  """Factorizes each chosen dense layer of `model` in place at its rank (a plain Dense becomes a
  `CompressibleDense` first); a user's layer or subclassed model holding one records it for a `.keras` file
  (`nested.carry`). Returns the [CompressionReport]."""
  reports = []
  for layer in selection.chosen:
    CompressibleDense.from_dense(layer)
    reports.append(compress_layer(layer, rank=selection.ranks[layer.name], svd_method=svd_method))
  for layer in selection.chosen:
    nested.carry(model, layer, caller)
  return reports
