"""Multi-worker training for real: two worker processes on this machine (loopback, free ports), the online swap
inside `fit`, a worker killed mid-epoch after the swap, and the run resumed (docs/distributed.md)."""

import dataclasses
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from lmf_tf import results
from lmf_tf.harness import multi_worker
from lmf_tf.text import callbacks
from lmf_tf.text import training
from lmf_tf.text.config import TrainConfig

TIMEOUT = 15  # --collective_timeout: how long a worker waits for a lost peer


def final_weights(train_dir):
  """{variable key: value} of the model in the training checkpoint `state.json` names."""
  state = callbacks.read_state(train_dir)
  reader = tf.train.load_checkpoint(os.path.join(train_dir, state['checkpoint']))
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith('model/')}


@pytest.mark.slow
def test_two_workers_train_like_one_process_and_resume_after_losing_one(tmp_path, shared_tfds):
  base = TrainConfig(train_level='sentence', max_train_examples=480, batch_size=8, epochs=2, lstm_units=8,
                     dropout=0.0, bucket=False, reduction=90, compress_at_step=20, seed=5, deterministic=True, threads=1,
                     checkpoint_every_steps=10, collective_timeout=TIMEOUT, tfds_dir=shared_tfds)
  where = lambda name: dataclasses.replace(base, workdir=str(tmp_path / name / 'ck'),
                                           results_dir=str(tmp_path / name / 'results'))
  # An uninterrupted two-worker run.
  straight = where('straight')
  workers = multi_worker.start_workers(straight, str(tmp_path / 'straight' / 'logs'))
  try:
    assert multi_worker.wait(workers, 120) == [0, 0], [w.output()[-2000:] for w in workers]
  finally:
    multi_worker.stop(workers)
  run = straight.run_name
  chief_train = os.path.join(straight.workdir, run, 'train')
  worker_train = os.path.join(straight.workdir, '.worker1', run, 'train')
  # Only the chief wrote the run's files; worker 1 wrote its own copies under .worker1/.
  assert os.listdir(straight.results_dir) == [run + '.json']
  assert sorted(os.listdir(straight.workdir)) == ['.worker1', run]
  chief_result = results.load(os.path.join(straight.results_dir, run + '.json'))
  assert chief_result.data['replicas'] == 2 and chief_result.compression['swap_step'] == 20
  # Both workers end with the same weights, bitwise.
  chief, worker = final_weights(chief_train), final_weights(worker_train)
  assert chief.keys() == worker.keys() and all(np.array_equal(chief[k], worker[k]) for k in chief)

  # One process, the same global batch (each two-worker step splits it): the same weights up to float rounding.
  # (Without buckets every batch is full: Keras averages each replica's loss over its own examples, so a partial
  # batch split unevenly would weigh its examples a little differently from one process.)
  single = dataclasses.replace(where('single'), threads=None)
  training.train_and_evaluate(single)
  alone = final_weights(os.path.join(single.workdir, run, 'train'))
  assert max(float(np.max(np.abs(alone[k] - chief[k]))) for k in chief) < 1e-5

  # Worker 1 is killed mid-epoch, after the swap: the chief stops with a clear error within the timeout.
  killed = where('killed')
  workers = multi_worker.start_workers(killed, str(tmp_path / 'killed' / 'logs'))
  state_path = os.path.join(killed.workdir, run, 'train', 'state.json')
  try:
    deadline = time.time() + 120
    while time.time() < deadline:
      if os.path.exists(state_path) and callbacks.read_state(os.path.dirname(state_path))['step'] >= 40:
        break
      time.sleep(0.02)
    workers[1].process.kill()
    killed_at = time.time()
    codes = multi_worker.wait(workers[:1], TIMEOUT + 45)
  finally:
    multi_worker.stop(workers)
  assert codes == [1], workers[0].output()[-2000:]
  assert time.time() - killed_at < TIMEOUT + 45
  assert 'error: a worker of the multi-worker run stopped answering' in workers[0].output()
  interrupted_at = callbacks.read_state(os.path.dirname(state_path))
  assert 40 <= interrupted_at['step'] < 2 * interrupted_at['steps_per_epoch'] and interrupted_at['rank'] == 4

  # Both restarted with --resume: the run ends as the uninterrupted one did.
  workers = multi_worker.start_workers(killed, str(tmp_path / 'killed' / 'resumed_logs'), extra_flags=['--resume'])
  try:
    assert multi_worker.wait(workers, 120) == [0, 0], [w.output()[-2000:] for w in workers]
  finally:
    multi_worker.stop(workers)
  resumed = results.load(os.path.join(killed.results_dir, run + '.json'))
  assert [h['dev_accuracy'] for h in resumed.history] == [h['dev_accuracy'] for h in chief_result.history]
  assert resumed.test_accuracy == chief_result.test_accuracy
  again = final_weights(os.path.join(killed.workdir, run, 'train'))
  assert all(np.array_equal(again[k], chief[k]) for k in chief)  # bitwise, with --deterministic
