"""No lost or corrupted output: NaN losses, truncated or corrupted files, two runs on one directory (issue 8)."""

import glob
import json
import os
import subprocess
import sys

import pytest

from lmf_tf import callbacks, reporting, training
from lmf_tf.config import TrainConfig
from lmf_tf.errors import CorruptFileError, RunLockedError, TrainingDivergedError


def _train(tiny_config, **overrides):
  return training.train_and_evaluate(TrainConfig(**dict(tiny_config, model='dan', seed=3, **overrides)))


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_state(tiny_config):
  _, first = _train(tiny_config, epochs=1)
  train_dir = os.path.join(tiny_config['workdir'], first['run'], 'train')
  state_before = open(os.path.join(train_dir, 'state.json')).read()
  with pytest.raises(TrainingDivergedError, match=r'loss became (nan|inf).*state.json \(epoch 1\).*--resume'):
    _train(tiny_config, epochs=2, resume=True, lr_upper=1e30, lr_lower=1e29)
  assert open(os.path.join(train_dir, 'state.json')).read() == state_before
  model, _, _ = training.load_trained_model(first['checkpoint_dir'])  # the best checkpoint is intact
  assert model is not None
  assert json.load(open(os.path.join(tiny_config['results_dir'], first['run'] + '.json')))['best_epoch'] == 1


def _corrupt(path, truncate=False):
  data = bytearray(open(path, 'rb').read())
  if truncate:
    data = data[:len(data) // 2]
  else:
    data[len(data) // 2] ^= 0xFF
  open(path, 'wb').write(bytes(data))


def test_corrupted_or_truncated_checkpoints_and_files_are_named_on_load(tiny_config):
  _, result = _train(tiny_config, epochs=1)
  best = result['checkpoint_dir']
  train_dir = os.path.join(tiny_config['workdir'], result['run'], 'train')
  # The training checkpoint: one flipped byte.
  _corrupt(glob.glob(os.path.join(train_dir, 'ckpt-*.data-*'))[0])
  with pytest.raises(CorruptFileError, match=r'training checkpoint .*ckpt-\d+ is truncated or corrupted'):
    _train(tiny_config, epochs=2, resume=True)
  # The state file, truncated.
  _corrupt(os.path.join(train_dir, 'state.json'), truncate=True)
  with pytest.raises(CorruptFileError, match=r'training state .*state.json is truncated or corrupted'):
    callbacks.read_state(train_dir)
  # The inference checkpoint, truncated.
  _corrupt(glob.glob(os.path.join(best, 'model.data-*'))[0], truncate=True)
  with pytest.raises(CorruptFileError, match=r'inference checkpoint .*best/model is truncated or corrupted'):
    training.load_trained_model(best)
  # A results file, truncated.
  results_file = os.path.join(tiny_config['results_dir'], result['run'] + '.json')
  _corrupt(results_file, truncate=True)
  with pytest.raises(CorruptFileError, match=f'results file {results_file} is truncated or corrupted'):
    reporting.load_runs(tiny_config['results_dir'])


def test_two_runs_on_one_directory_do_not_clobber_each_other(tiny_config):
  run_dir = os.path.join(tiny_config['workdir'], TrainConfig(**dict(tiny_config, model='dan', seed=3)).resolved()
                         .run_name)
  os.makedirs(run_dir)
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    with open(os.path.join(run_dir, '.lock'), 'w') as f:
      f.write(str(holder.pid))
    with pytest.raises(RunLockedError, match=f'{run_dir} is being written by another run \\(pid {holder.pid}\\)'):
      _train(tiny_config, epochs=1)
    assert os.listdir(run_dir) == ['.lock']  # nothing written
  finally:
    holder.kill()
    holder.wait()
  _, result = _train(tiny_config, epochs=1)  # the holder is gone: its stale lock is taken over
  assert result['best_epoch'] == 1 and not os.path.exists(os.path.join(run_dir, '.lock'))
