"""Paper §4 formulas on hand-computed cases."""

import pandas as pd
import pytest

from lmf_tf.compression import analysis
from lmf_tf.text import models


def test_worked_example_10000_by_300_at_rank_29():
  m, n, k = 10_000, 300, 29
  assert analysis.dense_params(m, n) == 3_000_000
  assert analysis.factorized_params(m, n, k) == 298_700  # 29 * 10,300
  assert analysis.matmul_flops(m, n) == 19_999 * 300 == 5_999_700
  assert analysis.factorized_matmul_flops(m, n, k) == 19_999 * 29 + 57 * 300 == 597_071
  assert analysis.matmul_flops(m, n, rows=3) == 3 * 5_999_700
  assert analysis.weight_bytes(3_000_000) == 12_000_000
  assert analysis.weight_bytes(3_000_000, bits=8) == 3_000_000


@pytest.mark.parametrize('bits, reduction', [(16, 50.0), (8, 75.0), (32, 0.0), (4, 87.5)])
def test_space_break_even_reduction(bits, reduction):
  assert analysis.space_break_even_reduction(bits) == reduction


def test_space_break_even_rank_matches_the_reduction():
  m, n = 10_000, 300
  # float32: k (m + n) < m n  ->  k < 291.26; 8-bit: k < 72.8; 16-bit: k < 145.6.
  assert analysis.space_break_even_rank(m, n) == 291
  assert analysis.space_break_even_rank(m, n, bits=16) == 145
  assert analysis.space_break_even_rank(m, n, bits=8) == 72
  for bits in (8, 16):
    k = analysis.space_break_even_rank(m, n, bits)
    assert analysis.factorized_params(m, n, k) * 32 < m * n * bits <= analysis.factorized_params(m, n, k + 1) * 32


def test_flops_break_even_rank():
  m, n = 10_000, 300
  k = analysis.flops_break_even_rank(m, n)  # 2 m n / (2m + 2n - 1) = 291.27
  assert k == 291
  assert analysis.factorized_matmul_flops(m, n, k) < analysis.matmul_flops(m, n)
  assert analysis.factorized_matmul_flops(m, n, k + 1) >= analysis.matmul_flops(m, n)


def test_bad_bits():
  with pytest.raises(ValueError, match='bits'):
    analysis.space_break_even_reduction(0)


def test_embedding_costs():
  lmf = analysis.embedding_costs(10_000, 300, next_layer_width=1024, rank=29)
  assert (lmf.params, lmf.bytes) == (298_700, 1_194_800)
  assert lmf.lookup_flops == 57 * 300  # the projection V_kᵀ, per token
  assert lmf.first_layer_flops == 599 * 1024 and lmf.folded_first_layer_flops == 57 * 1024
  q8 = analysis.embedding_costs(10_000, 300, next_layer_width=1024, bits=8)
  assert (q8.method, q8.bytes, q8.lookup_flops) == ('quant8', 3_000_000, 300)  # one multiply per value read
  full = analysis.embedding_costs(10_000, 300, next_layer_width=1024)
  assert (full.method, full.bytes, full.flops) == ('float32', 12_000_000, 599 * 1024)
  assert analysis.lstm_flops_per_token(50, 150) == 99 * 600 + 299 * 600


def test_cost_table_skips_impossible_ranks_and_compares_with_quantization():
  # V d / (V + d) = 10,000 / 1,010 = 9.90: R=50 -> k=4, R=75 -> k=2, R=80 -> k=1, R=90 -> k=0 (skipped).
  table = analysis.cost_table(1000, 10, next_layer_width=40, reductions=(50, 75, 80, 90))
  assert list(table.method) == ['float32', 'quant16', 'quant8', 'lmf', 'lmf', 'lmf']
  lmf = table[table.method == 'lmf'].set_index('R')
  assert list(lmf['rank']) == [4, 2, 1]
  assert list(table.bytes[:3]) == [40_000, 20_000, 10_000]
  assert lmf.loc[50, 'bytes'] == 4 * 1010 * 4
  assert lmf.loc[50, 'smaller_than_q16'] and not lmf.loc[50, 'smaller_than_q8']  # 16,160 bytes
  assert lmf.loc[75, 'smaller_than_q8']  # 8,080 bytes
  assert not table.set_index('method').loc['quant16', 'smaller_than_q16']


def test_model_cost_table_joins_measured_rows():
  config = models.ModelConfig(vocab_size=1000, embedding_dim=20, lstm_units=6)  # R=90: k=1
  lstm = models.lstm_classifier(config)
  measured = [{'name': 'uncompressed', 'tflite_bytes': 123, 'seconds_batch1': 1.5},
              {'name': 'online R=90', 'tflite_bytes': 45}]
  table = analysis.model_cost_table(lstm, 'lstm', measured).set_index(['method', 'R'])
  assert table.loc[('float32', 0), 'first_layer_flops'] == 39 * 24
  assert table.loc[('float32', 0), 'measured_tflite_bytes'] == 123
  assert table.loc[('lmf', 90), 'measured_tflite_bytes'] == 45
  assert pd.isna(table.loc[('lmf', 50), 'measured_tflite_bytes'])
  assert '| lstm | lmf | 90 |' in analysis.to_markdown(table.reset_index())
