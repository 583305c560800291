"""Frequency-aware ranks for an embedding: frequent words keep more rank than rare ones, in the same numbers.

GroupReduce (Chen, Si, Li, Chelba, Kumar, Hsieh; NeurIPS 2018) splits the vocabulary into groups of words of like
frequency and gives each group its own low-rank factors, with more rank where the words are frequent; mixed-
dimension embeddings (Ginart, Naumov, Mudigere, Yang, Zou; ISIT 2021) do the same with a dimension per block.
Here, at the swap, the rows of W (V x d) are cut into contiguous blocks of ids (most frequent first, as
`keras.layers.TextVectorization` and the study's vocabulary number them) and block g gets the factors of the
frequency-weighted truncated SVD of its rows W_g (n_g x d):

    min over rank-k_g  Σ_{i in g} f_i ||w_i - ŵ_i||²  =  ||D_g (W_g - Ŵ_g)||_F²,   D_g = diag(sqrt f_i),
    D_g W_g = U Σ Vᵀ  ->  Ŵ_g = (D_g⁻¹ U_k Σ_k) V_kᵀ,

where f_i is word i's frequency. The ranks k_g share the numbers a rank-k factorization of the whole matrix holds,
P = k (V + d), with Σ_g k_g (n_g + d) <= P: each next unit of rank goes to the block whose next weighted singular
value buys the most error per number, σ²_{g, k_g + 1} / (n_g + d) (greedy: near, not always at, the integer
optimum). A block may end at rank 0: its words then read a zero vector.

    lmf_tf.OnlineCompression(reduction=90, at_epoch=4, frequency=lmf_tf.FrequencyRanks(blocks=4))
"""

import dataclasses
import time

import numpy as np
from absl import logging

from lmf_tf.compression.block_embedding import FrequencyBlockEmbedding
from lmf_tf.compression.factorization import CompressionReport
from lmf_tf.compression.rank import max_useful_rank
from lmf_tf.errors import ConfigError

BLOCK_GROWTH = 4  # the default blocks: each holds 4 times the rows of the one before


@dataclasses.dataclass(frozen=True, eq=False)
class FrequencyRanks:
  """How `OnlineCompression` and `compress_model` spread an embedding's rank over frequency blocks.

  blocks: the number of blocks (>= 2; the rows split so that each block holds BLOCK_GROWTH times the rows of the one
    before: V = 14,000 and 4 blocks give 165, 659, 2,635 and 10,541 rows), or the first id of each block after the
    first, increasing: (500, 2000, 8000).
  counts: each id's count in the training text (length V), the weights f_i; default: Zipf's law f_i = 1 / (i + 1),
    for ids numbered most frequent first. The blocks are contiguous ids either way: number the words by frequency.
  """
  blocks: object = 4
  counts: object = None

  def __post_init__(self):
    blocks = self.blocks
    if isinstance(blocks, (int, np.integer)) and not isinstance(blocks, bool):
      if blocks < 2:
        raise ConfigError(f'FrequencyRanks(blocks={blocks!r}): give at least 2 blocks, or their first ids')
    elif not (isinstance(blocks, (list, tuple)) and blocks and all(
        isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in blocks)
              and list(blocks) == sorted(set(blocks)) and blocks[0] > 0):
      raise ConfigError(f'FrequencyRanks(blocks={blocks!r}): give a number of blocks (>= 2) or the increasing first '
                        'ids of the blocks after the first, e.g. (500, 2000, 8000)')
    if self.counts is not None:
      counts = np.asarray(self.counts, np.float64)
      if counts.ndim != 1 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ConfigError('FrequencyRanks(counts=...): give one count >= 0 per id (a 1-D sequence)')

  def block_rows(self, vocab_size):
    """The rows of each block (a tuple summing to `vocab_size`); ConfigError when the blocks do not fit V."""
    if isinstance(self.blocks, (list, tuple)):
      starts = [0] + [int(b) for b in self.blocks]
      if starts[-1] >= vocab_size:
        raise ConfigError(f'FrequencyRanks(blocks={self.blocks!r}): a block starts at id {starts[-1]}, past the '
                          f'embedding\'s {vocab_size} rows')
    else:
      sizes = BLOCK_GROWTH ** np.arange(int(self.blocks), dtype=np.float64)
      starts = sorted(set(int(s) for s in np.round(np.cumsum(sizes)[:-1] / sizes.sum() * vocab_size)) - {0})
      starts = [0] + [s for s in starts if s < vocab_size]
      if len(starts) < int(self.blocks):
        raise ConfigError(f'FrequencyRanks(blocks={self.blocks}): an embedding of {vocab_size} rows is too small '
                          'for that many blocks')
    return tuple(int(e - s) for s, e in zip(starts, starts[1:] + [vocab_size]))

  def weights(self, vocab_size):
    """f_i for the V rows: the counts (plus 1, so a word never seen keeps a weight), or 1 / (i + 1)."""
    if self.counts is None:
      return 1.0 / np.arange(1, vocab_size + 1, dtype=np.float64)
    counts = np.asarray(self.counts, np.float64)
    if counts.shape != (vocab_size,):
      raise ConfigError(f'FrequencyRanks(counts=...): {counts.shape[0]} counts for an embedding of {vocab_size} rows')
    return counts + 1.0


@dataclasses.dataclass
class BlockFactors:
  """The factors of each block: `rows` (n_g), `lefts` (D_g⁻¹ U_k Σ_k: float32[n_g, k_g]), `rights` (V_kᵀ:
  float32[k_g, d]), and the weighted energy kept, Σ kept σ² / Σ σ² over all blocks."""
  rows: tuple
  lefts: list
  rights: list
  energy_kept: float

  @property
  def ranks(self):
    return tuple(int(left.shape[1]) for left in self.lefts)

  @property
  def numbers(self):
    """Σ_g k_g (n_g + d): the numbers the blocks hold."""
    return sum(left.size + right.size for left, right in zip(self.lefts, self.rights))


def block_factors(matrix, numbers, setting):
  """The frequency-weighted factors of `matrix` (float[V, d]) in `numbers` numbers (module docstring)."""
  matrix = np.asarray(matrix, np.float64)
  vocab_size, dim = matrix.shape
  rows, weights = setting.block_rows(vocab_size), np.sqrt(setting.weights(vocab_size))
  starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(int)
  svds = []
  for start, n in zip(starts, rows):
    u, s, vt = np.linalg.svd(weights[start:start + n, None] * matrix[start:start + n], full_matrices=False)
    svds.append((u, s, vt))
  ranks = allocate_ranks([s for _, s, _ in svds], rows, dim, numbers)
  lefts, rights = [], []
  for (u, s, vt), start, n, k in zip(svds, starts, rows, ranks):
    lefts.append(((u[:, :k] * s[:k]) / weights[start:start + n, None]).astype(np.float32))
    rights.append(vt[:k].astype(np.float32))
  total = sum(float(np.square(s).sum()) for _, s, _ in svds)
  kept = sum(float(np.square(s[:k]).sum()) for (_, s, _), k in zip(svds, ranks))
  return BlockFactors(tuple(rows), lefts, rights, kept / total if total > 0 else 1.0)


def allocate_ranks(singular_values, rows, dim, numbers):
  """Ranks k_g with Σ_g k_g (n_g + d) <= `numbers`, each next unit of rank to the block of the largest
  σ²_{g, k_g + 1} / (n_g + d); a block's rank stays below its break-even rank (k (n + d) < n d)."""
  ranks = [0] * len(rows)
  left = numbers
  caps = [min(len(s), max_useful_rank(n, dim)) for s, n in zip(singular_values, rows)]
  while True:
    gains = [(s[k] ** 2 / (n + dim), g) for g, (s, n, k, cap) in enumerate(zip(singular_values, rows, ranks, caps))
             if k < cap and n + dim <= left]
    if not gains:
      return tuple(ranks)
    _, best = max(gains)
    ranks[best] += 1
    left -= rows[best] + dim


def check_fits(setting, embeddings, caller):
  """Raises ConfigError naming `caller` and the embedding when `setting`'s blocks or counts do not fit one of
  `embeddings` (before any of them is factorized)."""
  for layer in embeddings:
    try:
      setting.block_rows(layer.input_dim), setting.weights(layer.input_dim)
    except ConfigError as e:
      raise ConfigError(f'{caller}: {e} (embedding {layer.name!r})') from None


@dataclasses.dataclass(frozen=True)
class PlannedBlocks:
  """One embedding's blocks, made and not yet applied (`planned_blocks`): its matrix (float[V, d]), the rank k whose
  numbers they hold, the `BlockFactors`, and the seconds their SVDs took."""
  matrix: np.ndarray
  rank: int
  factors: BlockFactors
  seconds: float


def planned_blocks(layer, rank, setting):
  """The `PlannedBlocks` of one built embedding at the numbers of rank `rank`, k (V + d) (`block_factors`);
  ConfigError naming the layer when they buy no block. Changes nothing."""
  start = time.perf_counter()
  matrix = layer.full_matrix() if hasattr(layer, 'full_matrix') else np.asarray(layer.embeddings.numpy())
  vocab_size, dim = matrix.shape
  factors = block_factors(matrix, rank * (vocab_size + dim), setting)
  if not any(factors.ranks):
    raise ConfigError(f'FrequencyRanks: the {rank * (vocab_size + dim):,} numbers of rank {rank} buy no block of '
                      f'{setting.block_rows(vocab_size)} rows (a block of n rows costs n + {dim} a rank); give '
                      f'fewer rows to the first block (blocks=) or a higher rank (embedding {layer.name!r})')
  return PlannedBlocks(matrix, rank, factors, time.perf_counter() - start)


def compress_in_blocks(layer, planned):
  """Factorizes one built `keras.layers.Embedding` in place into the frequency blocks `planned` (`planned_blocks`,
  made for this layer); it becomes a `FrequencyBlockEmbedding`. Returns a `CompressionReport` whose `rank` is k and
  whose `block_rows` and `block_ranks` say how the blocks share its numbers."""
  start = time.perf_counter()
  matrix, factors = planned.matrix, planned.factors
  vocab_size, dim = matrix.shape
  FrequencyBlockEmbedding.from_embedding(layer)
  layer.factorize(factors)
  report = CompressionReport(
      layer=layer.name, vocab_size=vocab_size, dim=dim, rank=planned.rank,
      reduction=100.0 * (1 - factors.numbers / (vocab_size * dim)), params_before=vocab_size * dim,
      params_after=factors.numbers, energy_kept=factors.energy_kept,
      reconstruction_error=float(np.sqrt(np.square(matrix - layer.full_matrix()).sum())),
      seconds=planned.seconds + time.perf_counter() - start, block_rows=factors.rows, block_ranks=factors.ranks)
  logging.info('%s', report.summary())
  return report
