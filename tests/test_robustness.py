"""No lost or corrupted output: NaN losses, truncated or corrupted files, two runs on one directory."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lmf_tf import io_utils
from lmf_tf.compression import schedules
from lmf_tf.harness import reporting
from lmf_tf.text import callbacks
from lmf_tf.text import models
from lmf_tf.text import trained_models
from lmf_tf.text import training
from lmf_tf.text.config import TrainConfig
from lmf_tf.errors import CorruptFileError, RunLockedError, TrainingDivergedError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(tiny_config, **overrides):
  return training.train_and_evaluate(TrainConfig(**dict(tiny_config, model='dan', seed=3, **overrides)))


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_state(interrupted_dan, monkeypatch):
  config = TrainConfig(**interrupted_dan, resume=True)
  train_dir = os.path.join(config.workdir, config.run_name, 'train')
  best_dir = os.path.join(config.workdir, config.run_name, 'best')
  state_before = open(os.path.join(train_dir, 'state.json')).read()
  best_before = {name: open(os.path.join(best_dir, name), 'rb').read() for name in os.listdir(best_dir)}
  # Epoch 2 diverges: a learning rate of 1e30 from its first step.
  monkeypatch.setattr(schedules.CyclicallyAnnealedLearningRate, '__call__', lambda self, step: 1e30)
  with pytest.raises(TrainingDivergedError,
                     match=r'(loss became (nan|inf)|became NaN or infinite).*state.json \(step \d+, epoch 1 done\)'):
    training.train_and_evaluate(config)
  assert open(os.path.join(train_dir, 'state.json')).read() == state_before
  assert {name: open(os.path.join(best_dir, name), 'rb').read()
          for name in os.listdir(best_dir)} == best_before  # the best checkpoint is intact, byte for byte


def test_weights_that_went_nan_are_caught_before_a_save(tmp_path):
  # The step that breaks the weights still reports the finite loss computed before its update.
  model = models.dan_classifier(models.ModelConfig(vocab_size=20, embedding_dim=4, dan_hidden=(3,)))
  model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
  model.optimizer.build(model.trainable_variables)
  guard = callbacks.StopOnNonFiniteLoss(str(tmp_path), every_steps=1)
  guard.set_model(model)
  guard.on_epoch_end(0)  # finite: nothing happens
  model.get_layer('hidden0').kernel.assign(np.full((4, 3), np.nan, np.float32))
  with pytest.raises(TrainingDivergedError, match=r'weight hidden0/kernel became NaN or infinite by step 0; no '
                                                  r'training state was saved yet'):
    guard.on_epoch_end(0)
  with pytest.raises(TrainingDivergedError, match='hidden0/kernel'):
    guard.on_train_batch_end(0, {'loss': 0.5})


def _corrupt(path, truncate=False):
  data = bytearray(open(path, 'rb').read())
  if truncate:
    data = data[:len(data) // 2]
  else:
    data[len(data) // 2] ^= 0xFF
  open(path, 'wb').write(bytes(data))


def test_corrupted_or_truncated_checkpoints_and_files_are_named_on_load(interrupted_dan, trained_dan, tmp_path):
  config = TrainConfig(**interrupted_dan, resume=True)
  best = os.path.join(config.workdir, config.run_name, 'best')
  train_dir = os.path.join(config.workdir, config.run_name, 'train')
  # The training checkpoint that state.json names: one flipped byte.
  _corrupt(glob.glob(os.path.join(train_dir, callbacks.read_state(train_dir)['checkpoint'] + '.data-*'))[0])
  with pytest.raises(CorruptFileError, match=r'training checkpoint .*ckpt-\d+ is truncated or corrupted'):
    training.train_and_evaluate(config)
  # The state file, truncated.
  _corrupt(os.path.join(train_dir, 'state.json'), truncate=True)
  with pytest.raises(CorruptFileError, match=r'training state .*state.json is truncated or corrupted'):
    callbacks.read_state(train_dir)
  # The inference checkpoint, truncated.
  _corrupt(glob.glob(os.path.join(best, 'model.data-*'))[0], truncate=True)
  with pytest.raises(CorruptFileError, match=r'inference checkpoint .*best/model is truncated or corrupted'):
    trained_models.load_trained_model(best)
  # A results file, truncated (a copy of a finished run's).
  finished, _ = trained_dan
  results_file = str(tmp_path / (finished['run'] + '.json'))
  io_utils.write_json_atomic(results_file, finished)
  _corrupt(results_file, truncate=True)
  with pytest.raises(CorruptFileError, match=f'results file {results_file} is truncated or corrupted'):
    reporting.load_runs(str(tmp_path))


def test_two_runs_on_one_directory_do_not_clobber_each_other(tiny_config):
  run_dir = os.path.join(tiny_config['workdir'], TrainConfig(**dict(tiny_config, model='dan', seed=3)).resolved()
                         .run_name)
  os.makedirs(run_dir)
  # Another process holds the run's lock (as a running training would), then is killed with SIGKILL.
  # The lock holder imports io_utils under a bare `lmf_tf` package, without the face's `import keras`.
  holder = subprocess.Popen([sys.executable, '-c', f"""
import sys, types
sys.modules['lmf_tf'] = types.ModuleType('lmf_tf')
sys.modules['lmf_tf'].__path__ = [{os.path.join(REPO, 'lmf_tf')!r}]
from lmf_tf import io_utils
with io_utils.run_lock({run_dir!r}):
  print('locked', flush=True)
  sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=REPO))
  try:
    assert holder.stdout.readline().strip() == 'locked'
    with pytest.raises(RunLockedError, match=f'{run_dir} is being written by another run \\(pid {holder.pid}\\)'):
      _train(tiny_config, epochs=1)
    assert os.listdir(run_dir) == ['.lock']  # nothing written
  finally:
    holder.kill()
    holder.wait()
  _, result = _train(tiny_config, epochs=1)  # the kernel released the dead holder's lock
  assert result['best_epoch'] == 1


def test_a_moved_clone_finds_its_vendored_data_again(tmp_path):
  root = tmp_path / 'new_clone'
  for below in ('data', 'data/ptb'):
    vendored = root / below
    vendored.mkdir(parents=True, exist_ok=True)
    gone = str(tmp_path / 'old_clone' / below)
    assert io_utils.relocated_data_dir(gone, str(vendored), str(root)) == str(vendored)
  # A folder that still exists, or one that was not the vendored one, is kept (and fails later, by name).
  assert io_utils.relocated_data_dir(str(tmp_path), str(vendored), str(root)) == str(tmp_path)
  other = str(tmp_path / 'old_clone' / 'my_data' / 'ptb')
  assert io_utils.relocated_data_dir(other, str(vendored), str(root)) == other
