"""LM compression: TT and low-rank layers, the factorized copy, pruning in the LM loop, `compress_lm`."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorly as tl

from lmf_tf import results
from lmf_tf.compression import lowrank
from lmf_tf.compression import model_size
from lmf_tf.compression import pruning
from lmf_tf.compression import tensor_train
from lmf_tf.harness import bench_lm_speed
from lmf_tf.harness import plans
from lmf_tf.harness import ptb_reporting
from lmf_tf.harness import runner
from lmf_tf.lm import compression as lm_compression
from lmf_tf.lm import config as lm_config
from lmf_tf.lm import data as lm_data
from lmf_tf.lm import models as lm_models
from lmf_tf.lm import training as lm_training
from lmf_tf.errors import ConfigError
from test_lm import tiny_config, tiny_model, write_corpus


# Tensor-train layers.

def test_balanced_factors_and_parameter_counts():
  assert tensor_train.balanced_factors(10000) == (20, 20, 25)
  assert tensor_train.balanced_factors(200) == (5, 5, 8)
  assert tensor_train.balanced_factors(13) == (1, 1, 13)
  assert math.prod(tensor_train.balanced_factors(650)) == 650
  # The module docstring's worked example.
  assert tensor_train.tt_num_params((20, 20, 25), (5, 5, 8), 16) == 30400
  assert tensor_train.max_tt_ranks((2, 3), (4, 5)) == [1, 8, 1]
  with pytest.raises(ConfigError, match='TT ranks'):
    tensor_train.tt_rank_list([1, 4, 1], 3)


def test_tt_layers_with_full_ranks_reproduce_their_dense_matrix():
  rng = np.random.RandomState(0)
  matrix = rng.randn(24, 12).astype(np.float32)  # 24 = 2*3*4, 12 = 2*2*3
  row_shape, col_shape = (2, 3, 4), (2, 2, 3)
  cores = tensor_train.tt_matrix_svd(matrix, row_shape, col_shape, ranks=10 ** 6)
  # Our contraction agrees with tensorly's and with the matrix.
  np.testing.assert_allclose(tensor_train.dense_from_cores(cores), matrix, atol=1e-5)
  np.testing.assert_allclose(
      tl.tt_matrix_to_tensor(tl.tt_matrix.TTMatrix([c.astype(np.float64) for c in cores])).reshape(24, 12),
      matrix, atol=1e-5)

  dense = tensor_train.TTDense(row_shape, col_shape, tt_rank=10 ** 6)
  x = rng.randn(5, 24).astype(np.float32)
  dense.build((None, 24))
  dense.cores_from(matrix)
  dense.bias.assign(np.arange(12, dtype=np.float32))
  np.testing.assert_allclose(dense(x), x @ matrix + np.arange(12), rtol=1e-4, atol=1e-4)

  embedding = tensor_train.TTEmbedding(row_shape, col_shape, tt_rank=10 ** 6)
  embedding.build()
  embedding.cores_from(matrix)
  ids = np.array([[0, 5, 23], [7, 7, 1]])
  np.testing.assert_allclose(embedding(ids), matrix[ids], atol=1e-5)
  # Lower ranks hold fewer numbers and approximate less well.
  small = tensor_train.TTEmbedding(row_shape, col_shape, tt_rank=2)
  small.build()
  small.cores_from(matrix)
  assert sum(int(np.prod(w.shape)) for w in small.weights) == tensor_train.tt_num_params(row_shape, col_shape, 2) < 288
  assert np.abs(small.full_matrix() - matrix).max() > 1e-2


def test_tt_layer_trains_and_round_trips_its_config():
  layer = tensor_train.TTDense((2, 4), (3, 3), tt_rank=2, name='tt')
  clone = tensor_train.TTDense.from_config(layer.get_config())
  assert clone.row_shape == (2, 4) and clone.ranks == [1, 2, 1]
  model = keras.Sequential([keras.Input((8,)), layer])
  model.compile(optimizer=keras.optimizers.SGD(0.1), loss='mse')
  before = [w.numpy().copy() for w in layer.weights]
  model.fit(np.ones((4, 8), np.float32), np.zeros((4, 9), np.float32), verbose=0)
  assert all(not np.allclose(a, b.numpy()) for a, b in zip(before, layer.weights))


# Low-rank layers.

def test_low_rank_lstm_at_full_rank_equals_the_keras_lstm():
  keras.utils.set_random_seed(0)
  lstm = keras.layers.LSTM(6, return_sequences=True, return_state=True, unit_forget_bias=False)
  x = np.random.RandomState(1).randn(3, 5, 4).astype(np.float32)
  state = [np.random.RandomState(2).randn(3, 6).astype(np.float32) for _ in range(2)]
  expected = lstm(x, initial_state=state)
  kernel, recurrent, bias = (w.numpy() for w in (lstm.cell.kernel, lstm.cell.recurrent_kernel, lstm.cell.bias))

  def svd(matrix, rank):
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    return u[:, :rank] * s[:rank], vt[:rank]

  for input_rank, recurrent_rank in ((None, None), (4, 6), (None, 6)):
    factorized = lowrank.LowRankLSTM(6, input_rank, recurrent_rank)
    factorized.build((None, None, 4))
    factorized.set_from_lstm(kernel, recurrent, bias, svd)
    for got, want in zip(factorized(x, initial_state=state), expected):
      np.testing.assert_allclose(got, want, atol=1e-5)
  # A lower rank holds fewer numbers and changes the output.
  low = lowrank.LowRankLSTM(6, 2, 2)
  low.build((None, None, 4))
  low.set_from_lstm(kernel, recurrent, bias, svd)
  assert sum(int(np.prod(w.shape)) for w in low.weights) == 2 * (4 + 24) + 24 + 2 * (6 + 24)
  assert not np.allclose(low(x, initial_state=state)[0], expected[0], atol=1e-3)


def test_factorization_from_reduction_worked_example():
  f = lm_config.LmFactorization.from_reduction(60, 10000, 200)
  assert (f.embedding_rank, f.softmax_rank, f.lstm_input_rank, f.lstm_recurrent_rank) == (78, 78, 64, 64)
  assert lm_config.LmFactorization.from_reduction(60, 10000, 200, ('softmax',)).embedding_rank is None
  with pytest.raises(ConfigError, match='not both'):
    lm_config.LmFactorization(embedding_rank=4, embedding_tt_rank=4)
  with pytest.raises(ConfigError, match='unknown matrices'):
    lm_config.LmFactorization.from_reduction(60, 10000, 200, ('decoder',))


@pytest.mark.parametrize('factorization', [
    lm_config.LmFactorization(embedding_rank=8, softmax_rank=8, lstm_input_rank=8, lstm_recurrent_rank=8),
    lm_config.LmFactorization(embedding_tt_rank=1000, softmax_tt_rank=1000, tt_cores=2)])
def test_factorized_copy_at_full_rank_predicts_like_the_model(factorization):
  model = tiny_model(vocab_size=12, hidden_size=8)
  config = lm_config.LmConfig(name='tiny', hidden_size=8)
  copy = lm_compression.factorized_copy(model, factorization, config)
  ids = np.array([[1, 5, 11, 0], [3, 3, 2, 7]], np.int32)
  (logits, state), (want, want_state) = copy(ids), model(ids)
  np.testing.assert_allclose(logits, want, atol=1e-4)
  np.testing.assert_allclose(state[1][1], want_state[1][1], atol=1e-5)
  again = lm_models.LstmLanguageModel.from_config(copy.get_config())
  assert again.factorization == factorization


def test_pruned_lm_keeps_its_zeros_through_a_training_step():
  model = tiny_model()
  masks = pruning.magnitude_masks(model, 0.5, names=lm_compression.pruning_targets(model, ('embedding', 'lstm')))
  assert masks and not any(name.startswith('softmax') for name in masks)
  pruning.apply_masks(model, masks)
  config = lm_config.LmConfig(name='tiny', hidden_size=8, num_steps=5, batch_size=4)
  train_step = lm_training.make_train_step(model, lm_training.create_optimizer(config, 10), masks)
  inputs, targets = next(iter(lm_data.tbptt_dataset(np.arange(24) % 10, 4, 5)))
  before = {n: w.numpy().copy() for n, w in model_size.weight_dict(model).items()}
  train_step(inputs, targets, model.zero_state(4))
  for name, w in model_size.weight_dict(model).items():
    if name in masks:
      assert np.all(w.numpy()[~masks[name]] == 0), name
      assert not np.allclose(w.numpy()[masks[name]], before[name][masks[name]]), f'{name}: kept entries froze'


# The whole run.

@pytest.fixture(scope='module')
def baseline(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp('lm')
  write_corpus(tmp_path / 'ptb')
  config = tiny_config(tmp_path, hidden_size=16, epochs=1)
  _, results = lm_training.train_lm(config)
  return tmp_path, results


SLOW = pytest.mark.slow  # each case compresses and fine-tunes: two stay in the fast set, the rest run with the slow


@pytest.mark.parametrize('settings, storage', [
    (dict(method='lowrank', reduction=50), 'dense'),
    pytest.param(dict(method='lowrank', softmax_rank=3, matrices=('softmax',)), 'dense', marks=SLOW),
    (dict(method='prune', sparsity=0.9), 'sparse'),
    pytest.param(dict(method='quantize', bits=8), 'quantized', marks=SLOW),
    pytest.param(dict(method='tt', tt_rank=2, tt_cores=2), 'dense', marks=SLOW)])
def test_compress_lm_end_to_end(baseline, settings, storage):
  tmp_path, base = baseline
  config = lm_config.LmCompressionConfig(
      baseline_dir=base['checkpoint_dir'], fine_tune_epochs=1, workdir=str(tmp_path / 'ck'),
      results_dir=str(tmp_path / 'results'), **settings)
  model, results = lm_compression.compress_lm(config)
  saved = json.loads((tmp_path / 'results' / f'{results["run"]}.json').read_text())
  assert saved == json.loads(json.dumps(results))
  assert saved['run'] == f'{base["run"]}_{config.tag}' and saved['storage'] == storage
  for epochs in (2, 3):  # the default number of epochs (2) is not in the name, another one is
    assert config.__class__(**{**config.__dict__, 'fine_tune_epochs': epochs}).tag.endswith(f'_ft{epochs}') == (
        epochs != 2 and settings['method'] != 'quantize')
  assert saved['baseline_test_perplexity'] == base['test_perplexity']
  assert saved['checkpoint_bytes']['data_bytes'] < base['checkpoint_bytes']['data_bytes']
  assert saved['params'] < base['params'] or settings['method'] == 'quantize'
  epochs = 0 if settings['method'] == 'quantize' else 1
  assert [h['epoch'] for h in saved['history']] == list(range(epochs + 1))
  assert saved['valid_perplexity'] == min(h['valid_perplexity'] for h in saved['history'])
  assert saved['history'][saved['chosen_epoch']]['valid_perplexity'] == saved['valid_perplexity']
  # The saved checkpoint reloads into the same predictions.
  again, _, _ = lm_training.load_trained_lm(saved['checkpoint_dir'])
  ids = np.array([[1, 2, 3, 4]], np.int32)
  np.testing.assert_allclose(again(ids)[0], model(ids)[0], atol=1e-5)
  if storage == 'sparse':
    assert saved['sparsity'] == pytest.approx(0.9, abs=0.02)


def test_compression_config_errors_name_the_flag(baseline):
  base = baseline[1]['checkpoint_dir']
  for settings, flag in ((dict(method='lowrank'), '--reduction'), (dict(method='prune'), '--sparsity'),
                         (dict(method='tt'), '--tt_rank'), (dict(method='quantize', bits=4), '--bits'),
                         (dict(method='svd'), '--method'), (dict(method='lowrank', reduction=50,
                                                                 matrices=('decoder',)), '--matrices')):
    with pytest.raises(ConfigError, match=flag):
      lm_config.LmCompressionConfig(baseline_dir=base, **settings).validate()
  with pytest.raises(ConfigError, match='--embedding_rank'):
    lm_compression.factorization_for(
        lm_config.LmCompressionConfig(baseline_dir=base, embedding_rank=10 ** 4), 10, 16)


def test_ptb_table_and_inference_speed_from_result_files(baseline):
  tmp_path, base = baseline
  config = lm_config.LmCompressionConfig(baseline_dir=base['checkpoint_dir'], method='quantize', bits=8,
                                              workdir=str(tmp_path / 'ck'), results_dir=str(tmp_path / 'results'))
  _, quantized = lm_compression.compress_lm(config)
  runs = [runner.Run(base['run'], 'ptb', 'tiny', 'baseline', 0.0, 1, ()),
          runner.Run(quantized['run'], 'ptb', 'tiny', 'quantize', 8.0, 1, ()),
          runner.Run('not_run_yet', 'ptb', 'tiny', 'prune', 0.9, 1, ())]
  speeds = bench_lm_speed.lm_inference_speed([base['checkpoint_dir'], quantized['checkpoint_dir']], words=20, repeats=2)
  assert all(s['words'] == 20 and len(s['pass_seconds']) == 2 for s in speeds.values())
  assert all(s['words_per_second'] == pytest.approx(20 / min(s['pass_seconds'])) for s in speeds.values())
  table = ptb_reporting.ptb_table(runs, str(tmp_path / 'results'), speeds)
  assert list(table.method) == ['baseline', 'quantize']  # the missing run is left out
  row = table.iloc[1]
  assert row.times_smaller == pytest.approx(base['checkpoint_bytes']['total_bytes'] /
                                            quantized['checkpoint_bytes']['total_bytes'])
  assert row.test_change_pct == pytest.approx(100 * (quantized['test_perplexity'] / base['test_perplexity'] - 1))
  markdown = ptb_reporting.ptb_table_markdown(ptb_reporting.ptb_summary(table, runs))
  assert markdown.count('\n') == 4 and 'quantize_q8' in markdown and f'{row.times_smaller:.2f}' in markdown


def test_ptb_plan_gives_each_seed_its_own_baseline(tmp_path):
  runs = plans.ptb_plan('small', (1, 2), str(tmp_path / 'ck'), str(tmp_path / 'results'))
  assert len(runs) == 2 * (1 + len(plans.PTB_LEVELS))
  baselines = {run.seed: run for run in runs if run.method == 'baseline'}
  assert [baselines[s].name for s in (1, 2)] == ['ptb_small_seed1', 'ptb_small_seed2']
  for run in runs:
    if run.method != 'baseline':
      assert run.requires == baselines[run.seed].name and f'--seed={run.seed}' in run.argv
      assert f'--baseline_dir={tmp_path / "ck" / baselines[run.seed].name / "final"}' in run.argv
  assert len({run.name for run in runs}) == len(runs)


def test_integer_list_flags_parse_to_ints_and_name_the_flag_on_bad_input():
  from absl import flags
  from lmf_tf.harness import flags as lmf_flags
  values = flags.FlagValues()
  lmf_flags.define_int_list('seeds', '1,2', 'Seeds.', flag_values=values)
  lmf_flags.define_int_list('batch_sizes', '1,64', 'Batch sizes.', minimum=1, flag_values=values)
  values(['prog'])
  assert values.seeds == [1, 2] and values.batch_sizes == [1, 64]
  values(['prog', '--seeds=3, 0,7'])
  assert values.seeds == [3, 0, 7]
  for bad, name in (('--seeds=1,x', 'seeds'), ('--seeds=', 'seeds'), ('--seeds=-1', 'seeds'),
                    ('--batch_sizes=0', 'batch_sizes'), ('--batch_sizes=1.5', 'batch_sizes')):
    with pytest.raises(flags.IllegalFlagValueError, match=f'--{name}=.*comma-separated list of integers'):
      values(['prog', bad])


def test_ptb_summary_compares_each_seed_with_its_own_baseline(tmp_path):
  def write(name, bytes_, test, valid=None):
    results.write(results.LmResult(
        run=name, task='ptb_lm_compression', checkpoint_dir=str(tmp_path / name), params=10,
        level=name.split('_', 2)[-1], checkpoint_bytes={'total_bytes': bytes_}, valid_perplexity=valid or test + 5,
        test_perplexity=test, fine_tune_seconds=60.0, wall_seconds=61.0), str(tmp_path))

  runs = [runner.Run(f'b_s{seed}_base', 'ptb', 'tiny', 'baseline', 0.0, seed, ()) for seed in (1, 2, 3)]
  runs += [runner.Run(f'b_s{seed}_q8', 'ptb', 'tiny', 'quantize', 8.0, seed, ()) for seed in (1, 2, 3)]
  write('b_s1_base', 400, 100.0)
  write('b_s2_base', 400, 200.0)
  write('b_s1_q8', 100, 110.0)  # +10% against seed 1's baseline
  write('b_s2_q8', 200, 230.0)  # +15% against seed 2's baseline; seed 3 is not run
  table = ptb_reporting.ptb_table(runs, str(tmp_path), speeds={str(tmp_path / 'b_s1_q8'): {'words_per_second': 7.0}})
  assert list(table.run) == ['b_s1_base', 'b_s2_base', 'b_s1_q8', 'b_s2_q8']
  assert list(table.test_change_pct.round(6)) == [0.0, 0.0, 10.0, 15.0]
  assert list(table.times_smaller) == [1.0, 1.0, 4.0, 2.0]
  summary = ptb_reporting.ptb_summary(table, runs).set_index('method')
  q8 = summary.loc['quantize']
  assert q8.seeds == '2/3' and q8.test_mean == 170.0 and q8.test_std == pytest.approx(np.std([110, 230], ddof=1))
  assert q8.test_change_mean == pytest.approx(12.5) and q8.test_change_std == pytest.approx(np.std([10, 15], ddof=1))
  assert q8.times_smaller == 3.0 and q8.words_per_second == 7.0  # the mean over the runs timed
  markdown = ptb_reporting.ptb_table_markdown(summary.reset_index())
  assert '| quantize | q8 | 2/3 |' in markdown and '170.00 ± 84.85' in markdown and '+12.5 ± 3.5%' in markdown
