import dataclasses
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from lmf_tf import io_utils
from lmf_tf.compression import model_size
from lmf_tf.text import callbacks
from lmf_tf.text import models
from lmf_tf.text import tfds_builders
from lmf_tf.text import trained_models
from lmf_tf.text import training
from lmf_tf.text.config import TrainConfig
from lmf_tf.errors import CheckpointNotFoundError, ConfigError


def check_run_end_to_end(saved, model, data_sizes, eval_every_steps):
  """What a run that swapped at the start of its second (last) epoch reports, and what it saved: dev/test were
  evaluated (and traced) before the swap, so the reported post-swap accuracies are right only if evaluation is
  re-traced for the factors."""
  assert saved['config']['reduction'] == 50 and saved['method'] == 'online'
  assert saved['best_epoch'] == 2  # the only epoch with the compressed model
  assert (saved['data']['train'], saved['data']['dev'], saved['data']['test']) == data_sizes
  assert saved['history'][0]['rank'] is None
  assert saved['history'][1]['rank'] == saved['rank'] == saved['compression']['rank']
  steps_per_epoch = saved['history'][0]['step']
  assert saved['compression']['swap_step'] == steps_per_epoch
  # Dev accuracy every few steps, the rank showing when the model was compressed.
  assert [p[0] for p in saved['dev_curve']] == list(range(eval_every_steps, 2 * steps_per_epoch + 1, eval_every_steps))
  assert all((p[2] is None) == (p[0] <= steps_per_epoch) for p in saved['dev_curve'])
  assert 0 <= saved['test_accuracy'] <= 1
  # The checkpoint holds the inference weights only: .data is 4 bytes per parameter plus a small header.
  sizes = saved['checkpoint_bytes']
  num_params = saved['params']['model']
  assert num_params == models.count_params(model)
  assert 4 * num_params <= sizes['data_bytes'] <= 4 * num_params + 4096
  data_files = glob.glob(os.path.join(saved['checkpoint_dir'], 'model.data-*'))
  assert sum(os.path.getsize(p) for p in data_files) == sizes['data_bytes']
  assert sizes['total_bytes'] == sizes['data_bytes'] + sizes['index_bytes'] + sizes['meta_bytes']
  assert sizes['meta_bytes'] > 1000
  # The compressed embedding's factors are all the checkpoint holds of it.
  v, d, k = saved['data']['vocab_size'], saved['data']['embedding_dim'], saved['rank']
  assert saved['params']['embedding'] == k * (v + d)
  assert saved['params']['uncompressed_model'] - num_params == v * d - k * (v + d)
  # The saved compressed model reloads (built at rank k) and gives the reported accuracies.
  reloaded = trained_models.evaluate_checkpoint(saved['checkpoint_dir'])
  assert reloaded['rank'] == k
  assert reloaded['test_accuracy'] == pytest.approx(saved['test_accuracy'], abs=1e-6)
  assert reloaded['dev_accuracy'] == pytest.approx(saved['dev_accuracy'], abs=1e-6)


def test_a_run_end_to_end_reports_and_reloads_what_it_trained(trained_dan, tmp_path):
  results, config = trained_dan  # the tiny data: 61 training phrases, 12 dev and 12 test sentences
  with open(os.path.join(config['results_dir'], f'{TrainConfig(**config).run_name}.json')) as f:
    saved = json.load(f)
  assert saved == json.loads(json.dumps(results))
  model, _, _ = trained_models.load_trained_model(saved['checkpoint_dir'])
  check_run_end_to_end(saved, model, (61, 12, 12), config['eval_every_steps'])
  with pytest.raises(CheckpointNotFoundError, match='no trained model at'):
    trained_models.evaluate_checkpoint(str(tmp_path / 'nowhere'))


@pytest.mark.slow
def test_one_epoch_end_to_end_on_a_slice_of_real_sst2(tmp_path, repo_root):
  # The 6,920 training sentences (not the 67k phrases: their preparation alone takes 20 s), the first 300 used.
  config = TrainConfig(max_train_examples=300, epochs=2, batch_size=32, lstm_units=8, train_level='sentence',
                       workdir=str(tmp_path / 'ck'), results_dir=str(tmp_path / 'res'), tfds_dir=str(tmp_path / 'tfds'),
                       reduction=50, compress_at_epoch=1, seed=3, eval_every_steps=3)
  model, _ = training.train_and_evaluate(config)
  saved = json.loads((tmp_path / 'res' / f'{config.run_name}.json').read_text())
  check_run_end_to_end(saved, model, (300, 872, 1821), 3)


def test_inference_checkpoint_round_trip(tmp_path):
  keras.utils.set_random_seed(0)
  config = models.ModelConfig(vocab_size=30, embedding_dim=6, lstm_units=4, embedding_rank=2)
  model = models.lstm_classifier(config)
  size = model_size.save_inference_checkpoint(model, str(tmp_path / 'best'), {'note': 'x'})
  clone = models.lstm_classifier(config)
  model_size.restore_inference_checkpoint(clone, str(tmp_path / 'best'))
  ids = np.array([[1, 2, 3, 0]], np.int32)
  np.testing.assert_allclose(model(ids), clone(ids), atol=1e-6)
  assert size.num_params == models.count_params(model)
  with pytest.raises(CheckpointNotFoundError, match='no checkpoint at .*missing'):
    model_size.restore_inference_checkpoint(clone, str(tmp_path / 'missing'))


def test_resume_without_a_checkpoint_names_the_missing_file(tiny_config):
  with pytest.raises(CheckpointNotFoundError, match=r'--resume: no training checkpoint .*state\.json'):
    training.train_and_evaluate(TrainConfig(**dict(tiny_config, resume=True)))


@pytest.mark.parametrize('overrides, message', [
    (dict(reduction=99.9, compress_at_epoch=0), r'--reduction=99.9 leaves rank k=0 for V=\d+, d=8; R must be at most'),
    (dict(rank=500, compress_at_epoch=0), r'--rank=500 gives rank 500, .* only for 1 <= k <= \d+'),
    (dict(reduction=50, compress_at_step=3, compress_at_epoch=0), 'only one of --compress_at_step and'),
    (dict(compress_at_epoch=0), 'without --reduction'),
    (dict(model='cnn'), r"--model='cnn'; choose one of lstm, dan"),
    (dict(reduction=120, compress_at_epoch=0), r'--reduction \(R\) must be a percentage'),
    (dict(dataset='no_such_set'), "--dataset='no_such_set' is neither"),
])
def test_bad_settings_raise_config_errors_before_training(tiny_config, overrides, message):
  with pytest.raises(ConfigError, match=message):
    training.train_and_evaluate(TrainConfig(**dict(tiny_config, **overrides)))


def test_model_defaults_and_middle_epoch_compression_by_default():
  dan = TrainConfig(model='dan', reduction=90).resolved()
  assert (dan.epochs, dan.compress_at_epoch, dan.word_dropout) == (6, 3, 0.3)
  lstm = TrainConfig(model='lstm', reduction=90, l2=0.005).resolved()
  assert (lstm.epochs, lstm.compress_at_epoch, lstm.l2) == (8, 4, 0.005)  # a given value wins
  assert TrainConfig(optimizer='adagrad', lr_schedule='constant').run_name == 'sst2_lstm_R0_adagrad-constant_seed1'


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
  path = tmp_path / 'r.json'
  io_utils.write_json_atomic(str(path), {'a': 1})
  with pytest.raises(TypeError):
    io_utils.write_json_atomic(str(path), {'a': object()})  # not JSON-able: fails half way
  assert json.loads(path.read_text()) == {'a': 1}
  assert os.listdir(tmp_path) == ['r.json']


def run_script(args, repo_root):
  env = dict(os.environ, PYTHONPATH=repo_root, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, os.path.join(repo_root, 'scripts', 'train.py'), *args],
                        capture_output=True, text=True, env=env, timeout=300)


def test_script_reports_bad_data_line_and_exits_non_zero(tiny_config, tiny_data, repo_root):
  (tiny_data / 'sst2' / 'dev.tsv').write_text('fine film\t1\nbroken line without label\n')
  args = [f'--{k}={v}' for k, v in tiny_config.items()] + ['--train_level=sentence']
  result = run_script(args, repo_root)
  assert result.returncode != 0
  assert 'dev.tsv:2: expected "text<TAB>label"' in result.stderr
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(tiny_config['results_dir'])


@pytest.mark.slow  # starts TensorFlow in a subprocess (~3.5 s); test_script_reports_bad_data_line_and_exits_non_zero stays fast
def test_script_rejects_an_unknown_model_flag(repo_root):
  result = run_script(['--model=cnn', '--epochs=1'], repo_root)
  assert result.returncode != 0 and 'flag --model=cnn: value should be one of <lstm|dan>' in result.stderr


def test_an_interrupted_or_finished_run_is_refused_without_resume_or_overwrite(interrupted_dan, trained_dan):
  with pytest.raises(ConfigError, match=r'was interrupted earlier .*; --resume continues it, --overwrite starts'):
    training.train_and_evaluate(TrainConfig(**interrupted_dan))
  with pytest.raises(ConfigError, match=r'is done \(.*\.json\); --overwrite runs it again'):
    training.train_and_evaluate(TrainConfig(**trained_dan[1]))


@pytest.mark.slow  # three training runs; the refusals above and tests/test_robustness.py resume the shared run
def test_resumed_run_ends_like_an_uninterrupted_one(tiny_config, tmp_path):
  base = dict(tiny_config, model='dan', epochs=2, reduction=50, compress_at_step=3, seed=6, word_dropout=0.3)
  straight_model, straight = training.train_and_evaluate(TrainConfig(**dict(base, workdir=str(tmp_path / 'a'))))
  # Interrupted after the swap (at step 3 of epoch 1's 5): its state on disk, no results; then resumed.
  other = TrainConfig(**dict(base, workdir=str(tmp_path / 'b'), results_dir=str(tmp_path / 'rb')))
  assert training.train_and_evaluate(dataclasses.replace(other, stop_after_epoch=1))[1] is None
  assert not os.path.exists(os.path.join(other.results_dir, other.run_name + '.json'))
  state = callbacks.read_state(os.path.join(other.workdir, other.run_name, 'train'))
  assert state['epoch'] == 1 and state['rank'] is not None
  with pytest.raises(ConfigError, match=r'was interrupted earlier .*; --resume continues it, --overwrite starts'):
    training.train_and_evaluate(other)
  resumed_model, resumed = training.train_and_evaluate(dataclasses.replace(other, resume=True))
  for a, b in zip(straight_model.weights, resumed_model.weights):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
  steps_per_epoch = state['history'][0]['step']
  assert [h['step'] for h in resumed['history']] == [steps_per_epoch * e for e in (1, 2)]
  assert resumed['history'][1]['rank'] == state['rank'] == models.word_embedding(resumed_model).rank
  assert resumed['compression']['swap_step'] == 3
  assert [h['dev_accuracy'] for h in resumed['history']] == [h['dev_accuracy'] for h in straight['history']]
  assert resumed['test_accuracy'] == straight['test_accuracy']
  with pytest.raises(ConfigError, match=r'is done \(.*\.json\); --overwrite runs it again'):
    training.train_and_evaluate(other)


def test_compress_at_step_beyond_training_is_rejected_before_training(tiny_config):
  with pytest.raises(ConfigError, match=r'--compress_at_step=999 is never reached: training runs \d+ steps'):
    training.train_and_evaluate(TrainConfig(**dict(tiny_config, reduction=50, compress_at_step=999)))


def test_a_gradual_swap_that_leaves_no_step_for_the_final_rank_is_rejected_before_training(tiny_config):
  with pytest.raises(ConfigError, match=r'--gradual_factors=4,2: the last swap, after step 1005, leaves no step'):
    training.train_and_evaluate(TrainConfig(**dict(tiny_config, reduction=50, compress_at_step=5,
                                                   gradual_factors='4,2', gradual_every_steps=500)))
  assert not os.listdir(tiny_config['workdir']) if os.path.exists(tiny_config['workdir']) else True


def test_unlabelled_split_is_rejected(tiny_config, monkeypatch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def fake_load_splits(name, **kwargs):
    make = lambda labels: tf.data.Dataset.from_tensor_slices((['a b'] * len(labels), tf.constant(labels, tf.int64)))
    return tfds_builders.TextSplits(make([0, 1]), make([1, 0]), make([-1, -1]), num_classes=2, name=name)

  monkeypatch.setattr(tfds_builders, 'load_splits', fake_load_splits)
  with pytest.raises(ConfigError, match='the test split of --dataset=glue/sst2 has unlabelled examples'):
    training.train_and_evaluate(TrainConfig(**dict(tiny_config, dataset='glue/sst2')))


def test_best_checkpoint_moves_into_place_only_with_the_state_that_records_it(interrupted_dan, monkeypatch):
  config = TrainConfig(**interrupted_dan, resume=True)
  best_dir = os.path.join(config.workdir, config.run_name, 'best')
  train_dir = os.path.join(os.path.dirname(best_dir), 'train')
  before = open(os.path.join(best_dir, 'model.data-00000-of-00001'), 'rb').read()
  state = callbacks.read_state(train_dir)
  state['best']['dev_accuracy'] = -1.0  # so that epoch 2 is a new best
  io_utils.write_json_atomic(os.path.join(train_dir, 'state.json'), state)

  original = callbacks.TrainingState.on_epoch_end
  monkeypatch.setattr(callbacks.TrainingState, 'on_epoch_end', lambda self, epoch, logs=None: 1 / 0)
  with pytest.raises(ZeroDivisionError):  # killed after epoch 2's best was saved, before its state was
    training.train_and_evaluate(config)
  assert os.path.isdir(best_dir + '.pending')
  assert open(os.path.join(best_dir, 'model.data-00000-of-00001'), 'rb').read() == before  # still epoch 1's

  monkeypatch.setattr(callbacks.TrainingState, 'on_epoch_end', original)
  _, resumed = training.train_and_evaluate(config)
  assert resumed['best_epoch'] == 2 and not os.path.exists(best_dir + '.pending')
  with open(os.path.join(best_dir, 'config.json')) as f:
    assert json.load(f)['epoch'] == 2
