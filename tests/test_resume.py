"""Exact resume: a run killed with SIGKILL mid-epoch, right after the compression swap, and resumed with
--resume ends with the same weights and metrics as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import pytest
import time

import numpy as np
import tensorflow as tf

from lmf_tf import io_utils
from lmf_tf.text import callbacks


def _command(repo_root, tiny_config, workdir, results_dir, extra=()):
  flags = dict(tiny_config, workdir=workdir, results_dir=results_dir, model='dan', seed=5, epochs=3, batch_size=2,
               reduction=50, compress_at_step=25, checkpoint_every_steps=1, eval_every_steps=20, word_dropout=0.3,
               deterministic=True)
  return [sys.executable, os.path.join(repo_root, 'scripts', 'train.py')] + [f'--{k}={v}' for k, v in flags.items()] + list(extra)


def _env(repo_root):
  return dict(os.environ, PYTHONPATH=repo_root, TF_CPP_MIN_LOG_LEVEL='3')


def _kill_when(process, state_path, ready, timeout=240):
  """SIGKILLs `process` as soon as its state.json satisfies `ready(state)`; returns that state (read after)."""
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    try:
      state = io_utils.read_json(state_path)
    except (FileNotFoundError, Exception):  # not written yet, or being replaced
      state = None
    if state and ready(state):
      process.send_signal(signal.SIGKILL)
      process.wait()
      return io_utils.read_json(state_path)
    time.sleep(0.005)
  raise AssertionError(f'the run ended or timed out before the kill point (exit {process.poll()})')


def _variables(train_dir):
  state = io_utils.read_json(os.path.join(train_dir, callbacks.STATE_FILE))
  reader = tf.train.load_checkpoint(os.path.join(train_dir, state['checkpoint']))
  return state, {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
                 if not name.startswith('_CHECKPOINTABLE_OBJECT_GRAPH')}


def _comparable(results):
  history = [{k: v for k, v in h.items() if k != 'train_seconds'} for h in results['history']]
  return history, results['dev_curve'], results['test_accuracy'], results['best_epoch'], results['rank']


@pytest.mark.slow
def test_sigkill_mid_epoch_and_after_the_swap_then_resume_ends_bitwise_equal(tiny_config, tmp_path, repo_root):
  straight = subprocess.run(_command(repo_root, tiny_config, str(tmp_path / 'a'), str(tmp_path / 'ra')),
                            env=_env(repo_root), capture_output=True, text=True, timeout=300)
  assert straight.returncode == 0, straight.stderr[-2000:]

  workdir, results_dir = str(tmp_path / 'b'), str(tmp_path / 'rb')
  run_name = json.load(open(next((tmp_path / 'ra').glob('*.json'))))['run']
  state_path = os.path.join(workdir, run_name, 'train', callbacks.STATE_FILE)
  kills = []
  # Kill 1: right after the swap (after step 25, mid-epoch 2: the first state saved with the factors, step 26).
  # Kill 2: later in epoch 3, resumed from kill 1's state.
  for ready in (lambda s: s['rank'] is not None, lambda s: s['epoch'] >= 2 and s['batches_done'] >= 3):
    process = subprocess.Popen(_command(repo_root, tiny_config, workdir, results_dir, ['--resume'] if kills else []),
                               env=_env(repo_root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kills.append(_kill_when(process, state_path, ready))
  assert kills[0]['rank'] is not None and kills[0]['batches_done'] > 0  # compressed, and killed mid-epoch
  assert kills[1]['batches_done'] > 0
  resumed = subprocess.run(_command(repo_root, tiny_config, workdir, results_dir, ['--resume']), env=_env(repo_root),
                           capture_output=True, text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-2000:]

  a = json.load(open(os.path.join(tmp_path / 'ra', run_name + '.json')))
  b = json.load(open(os.path.join(results_dir, run_name + '.json')))
  assert _comparable(a) == _comparable(b)
  state_a, weights_a = _variables(os.path.join(tmp_path / 'a', run_name, 'train'))
  state_b, weights_b = _variables(os.path.join(workdir, run_name, 'train'))
  assert state_a['step'] == state_b['step'] and weights_a.keys() == weights_b.keys()
  for name in weights_a:
    np.testing.assert_array_equal(weights_a[name], weights_b[name], err_msg=name)
