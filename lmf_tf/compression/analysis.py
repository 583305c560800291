"""Space and FLOPs of a matrix, of its rank-k factorization and of its b-bit quantization (Acharya et al. 2019, §4).

The paper's §4 compares, for a weight matrix W (m x n) applied to an input row x (1 x m):
  - space: m n floats for W, k (m + n) for its factors A (m x k) and B (k x n), m n b / 32 float-equivalents for
    W quantized to b bits. The factorization is smaller than b-bit quantization when
        k (m + n) 32 < m n b,   i.e.   R = 1 - k (m + n) / (m n) > 1 - b / 32,
    so it beats 16-bit at R > 50% and 8-bit at R > 75%, whatever m and n are;
  - time, counted in FLOPs (one multiply or one add each): x W takes (2m - 1) n; x A B takes (2m - 1) k + (2k - 1) n,
    fewer exactly when k < 2 m n / (2m + 2n - 1) (about the space break-even m n / (m + n)). Fixed-point weights
    run on a float kernel must first be de-quantized, one multiply per weight used.

An embedding is the special case where x is one-hot: the lookup costs no FLOPs, its factorized form costs
(2k - 1) d per token (the projection V_kᵀ), and a b-bit table costs d multiplies per token to de-quantize. The
projection is linear, so it can be folded into the next layer's input matrix W_in (d x n) at export time
(V_kᵀ W_in is k x n), which makes the first layer cheaper than the uncompressed one: (2k - 1) n instead of
(2d - 1) n FLOPs per token.

Worked example (the paper's DAN-sized case): m = 10,000, n = 300, k = 29 (R = 90%):
dense 3,000,000 parameters and 5,999,700 FLOPs per row; factorized 298,700 parameters and
(19,999)(29) + (57)(300) = 597,071 FLOPs.

The paper's text was not available offline; these formulas are derived here from first principles and checked
against hand-computed cases in tests/test_analysis.py.
"""

import dataclasses
import math

from lmf_tf import extras
from lmf_tf.compression.rank import rank_for_reduction
from lmf_tf.errors import ConfigError

FLOAT_BITS = 32


def dense_params(m, n):
  """Parameters of W (m x n)."""
  return m * n


def factorized_params(m, n, k):
  """Parameters of A (m x k) and B (k x n)."""
  return k * (m + n)


def weight_bytes(params, bits=FLOAT_BITS):
  """Bytes of `params` weights stored with `bits` bits each (scales and headers not counted)."""
  return params * bits // 8


def matmul_flops(m, n, rows=1):
  """FLOPs of x W for x (rows x m), W (m x n): each output is m multiplies and m - 1 adds."""
  return rows * (2 * m - 1) * n


def factorized_matmul_flops(m, n, k, rows=1):
  """FLOPs of (x A) B for A (m x k), B (k x n)."""
  return rows * ((2 * m - 1) * k + (2 * k - 1) * n)


def space_break_even_reduction(bits):
  """The reduction R (in %) above which a factorization is smaller than `bits`-bit quantization: 100 (1 - b/32)."""
  if not 0 < bits <= FLOAT_BITS:
    raise ValueError(f'bits must be in 1..{FLOAT_BITS}, got {bits}')
  return 100 * (1 - bits / FLOAT_BITS)


def space_break_even_rank(m, n, bits=FLOAT_BITS):
  """The largest k whose factorization takes fewer bits than W at `bits` bits: k (m + n) 32 < m n b."""
  return math.ceil(m * n * bits / (FLOAT_BITS * (m + n))) - 1


def flops_break_even_rank(m, n):
  """The largest k with (2m - 1) k + (2k - 1) n < (2m - 1) n, i.e. k < 2 m n / (2m + 2n - 1)."""
  return math.ceil(2 * m * n / (2 * m + 2 * n - 1)) - 1


@dataclasses.dataclass(frozen=True)
class EmbeddingCosts:
  """Space and per-token FLOPs of a V x d embedding and of the first layer after it (input width d, n outputs).

  `method` is 'float32', 'lmf' (rank k) or 'quant<b>'. `first_layer_flops` is the input matrix product of the next
  layer per token, (2d - 1) n; for 'lmf' `folded_first_layer_flops` is the same with V_kᵀ folded in, (2k - 1) n.
  """
  method: str
  vocab_size: int
  dim: int
  rank: int | None
  params: int
  bytes: int
  lookup_flops: int
  first_layer_flops: int
  folded_first_layer_flops: int

  @property
  def flops(self):
    """Per-token FLOPs of the lookup and the next layer's input product, as the graph runs them (no folding)."""
    return self.lookup_flops + self.first_layer_flops


def embedding_costs(vocab_size, dim, next_layer_width, rank=None, bits=FLOAT_BITS):
  """Costs of one embedding variant: float32 (rank and bits unset), LMF (rank k) or b-bit quantized (bits < 32)."""
  first = matmul_flops(dim, next_layer_width)
  if rank is not None:
    params = factorized_params(vocab_size, dim, rank)
    return EmbeddingCosts('lmf', vocab_size, dim, rank, params, weight_bytes(params),
                          lookup_flops=matmul_flops(rank, dim), first_layer_flops=first,
                          folded_first_layer_flops=matmul_flops(rank, next_layer_width))
  params = dense_params(vocab_size, dim)
  dequantize = dim if bits < FLOAT_BITS else 0
  return EmbeddingCosts('float32' if bits == FLOAT_BITS else f'quant{bits}', vocab_size, dim, None, params,
                        weight_bytes(params, bits), lookup_flops=dequantize, first_layer_flops=first,
                        folded_first_layer_flops=first)


def lstm_flops_per_token(input_dim, units):
  """Matrix FLOPs of one LSTM step as Keras computes it: x W (d x 4h) and h U (h x 4h) as two products, summed
  (4h more than one product of [x, h] with the stacked (d + h) x 4h matrix, whose sums include that addition)."""
  return matmul_flops(input_dim, 4 * units) + matmul_flops(units, 4 * units)


def cost_table(vocab_size, dim, next_layer_width, reductions=(10, 30, 50, 70, 75, 90, 95), bits=(16, 8)):
  """One row per variant of a V x d embedding feeding a layer with `next_layer_width` outputs: float32, b-bit
  quantized for each of `bits`, and LMF at each R (rank from `rank_for_reduction`; an R that leaves
  no rank is skipped). Columns: method, R, rank, params, bytes, lookup/first-layer FLOPs per token, and whether
  the variant is smaller than each b-bit quantization (`smaller_than_q<b>`).

  Returns:
    pandas.DataFrame.
  """
  variants = [(0, embedding_costs(vocab_size, dim, next_layer_width))]
  variants += [(0, embedding_costs(vocab_size, dim, next_layer_width, bits=b)) for b in bits]
  for r in reductions:
    try:
      rank = rank_for_reduction(r, vocab_size, dim)
    except ConfigError:
      continue
    variants.append((r, embedding_costs(vocab_size, dim, next_layer_width, rank=rank)))
  rows = []
  for r, costs in variants:
    row = {'method': costs.method, 'R': r, 'rank': costs.rank, 'params': costs.params, 'bytes': costs.bytes,
           'lookup_flops': costs.lookup_flops, 'first_layer_flops': costs.first_layer_flops,
           'folded_first_layer_flops': costs.folded_first_layer_flops}
    for b in bits:
      row[f'smaller_than_q{b}'] = costs.bytes < weight_bytes(dense_params(vocab_size, dim), b)
    rows.append(row)
  return extras.require('pandas', 'cost_table').DataFrame(rows)  # the `study` extra


def _measured_name(method, reduction):
  """The Table 4 variant (`benchmarks.table4_variants`) that measures an analysis row, if any."""
  return {'float32': 'uncompressed', 'quant16': 'TFLite float16', 'quant8': 'TFLite int8'}.get(
      method, f'online R={reduction:g}')


def model_cost_table(model, model_name, measured=()):
  """`cost_table` for a trained classifier (V, d from its `word_embedding`; the next layer is the LSTM's input
  product, 4 x units wide, per token, or DAN's first hidden layer, per sentence), joined with measured Table 4
  rows (`benchmarks.time_inference` output) by variant name."""
  embedding = model.get_layer('word_embedding')
  if model_name == 'lstm':
    width, unit = 4 * model.get_layer('lstm').units, 'token'
  else:
    width, unit = model.get_layer('hidden0').units, 'sentence'
  table = cost_table(embedding.input_dim, embedding.output_dim, width)
  table.insert(0, 'model', model_name)
  table['first_layer_per'] = unit
  by_name = {row['name']: row for row in measured}
  for column in ('tflite_bytes', 'seconds_batch1', 'seconds_batch64', 'latency_ms_p50'):
    table[f'measured_{column}'] = [by_name.get(_measured_name(m, r), {}).get(column)
                                   for m, r in zip(table.method, table.R)]
  table['measured_folded_seconds_batch1'] = [by_name.get(f'online R={r:g} folded', {}).get('seconds_batch1')
                                             if m == 'lmf' else None for m, r in zip(table.method, table.R)]
  return table


def to_markdown(table):
  """A `model_cost_table` as Markdown (FLOPs per token or per sentence, bytes of the embedding alone)."""
  head = ['model', 'method', 'R (%)', 'rank k', 'embedding bytes', '< 16-bit', '< 8-bit', 'lookup FLOPs/token',
          'first-layer FLOPs', 'folded first-layer FLOPs', 'measured TFLite bytes', 'measured batch-1 s',
          'measured batch-64 s', 'measured folded batch-1 s']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]

  def fmt(value, spec):
    return '-' if value is None or value != value else format(value, spec)

  for row in table.itertuples():
    cells = [row.model, row.method, f'{row.R:g}', fmt(row.rank, '.0f'), f'{row.bytes:,}',
             'yes' if row.smaller_than_q16 else 'no', 'yes' if row.smaller_than_q8 else 'no', f'{row.lookup_flops:,}',
             f'{row.first_layer_flops:,} / {row.first_layer_per}', f'{row.folded_first_layer_flops:,}',
             fmt(row.measured_tflite_bytes, ',.0f'), fmt(row.measured_seconds_batch1, '.2f'),
             fmt(row.measured_seconds_batch64, '.2f'), fmt(row.measured_folded_seconds_batch1, '.2f')]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'
