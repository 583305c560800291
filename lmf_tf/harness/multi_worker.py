"""Several `scripts/train.py` workers of one `--strategy=multi_worker` run on this machine, talking over the loopback
interface, as TensorFlow's own multi-worker tests do: each worker is a process with its own `TF_CONFIG` (the
cluster's addresses on free local ports, and its index), started with the same settings. Used by
`make multi-worker-demo` and tests/test_multi_worker.py; docs/distributed.md says how to do the same on N machines.
"""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

from lmf_tf import settings
from lmf_tf.harness.runner import REPO_ROOT


def free_ports(count):
  """`count` distinct TCP ports on 127.0.0.1 that nothing listens on now."""
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(('127.0.0.1', 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def tf_config(ports, index):
  """The `TF_CONFIG` of worker `index` of a cluster of workers on `ports` (worker 0 is the chief)."""
  return json.dumps({'cluster': {'worker': [f'127.0.0.1:{p}' for p in ports]}, 'task': {'type': 'worker',
                                                                                       'index': index}})


@dataclasses.dataclass
class Worker:
  index: int
  process: subprocess.Popen
  log_path: str

  def output(self):
    with open(self.log_path, encoding='utf-8', errors='replace') as f:
      return f.read()


def start_workers(config, log_dir, workers=2, extra_flags=(), env=None):
  """Starts `workers` processes of `scripts/train.py` with `config` (a `TrainConfig`) under
  `--strategy=multi_worker`, each logging to `<log_dir>/worker<i>.log`; returns the `Worker`s."""
  config = dataclasses.replace(config, strategy='multi_worker')
  argv = settings.config_argv(config, os.path.join(REPO_ROOT, 'scripts', 'train.py'), sys.executable)
  ports = free_ports(workers)
  os.makedirs(log_dir, exist_ok=True)
  started = []
  for index in range(workers):
    log_path = os.path.join(log_dir, f'worker{index}.log')
    worker_env = {**os.environ, **(env or {}), 'TF_CONFIG': tf_config(ports, index), 'PYTHONPATH': REPO_ROOT}
    with open(log_path, 'w', encoding='utf-8') as log:
      process = subprocess.Popen(argv + list(extra_flags), env=worker_env, stdout=log, stderr=subprocess.STDOUT,
                                 cwd=REPO_ROOT)
    started.append(Worker(index, process, log_path))
  return started


def wait(workers, timeout):
  """Waits up to `timeout` seconds for every worker; kills those still running then. Returns their exit codes
  (None for a worker that had to be killed)."""
  deadline = time.time() + timeout
  codes = []
  for worker in workers:
    try:
      codes.append(worker.process.wait(timeout=max(deadline - time.time(), 0.1)))
    except subprocess.TimeoutExpired:
      codes.append(None)
  stop(workers)
  return codes


def stop(workers):
  """SIGKILLs every worker still running (and reaps it)."""
  for worker in workers:
    if worker.process.poll() is None:
      worker.process.send_signal(signal.SIGKILL)
      worker.process.wait()


def _run_alone(config, log_path):
  """One `scripts/train.py` process with `config`, its output to `log_path`; returns its exit code."""
  argv = settings.config_argv(config, os.path.join(REPO_ROOT, 'scripts', 'train.py'), sys.executable)
  with open(log_path, 'w', encoding='utf-8') as log:
    return subprocess.run(argv, env={**os.environ, 'PYTHONPATH': REPO_ROOT}, stdout=log, stderr=subprocess.STDOUT,
                          cwd=REPO_ROOT, check=False).returncode


def _follow(workers, timeout, echo):
  """Waits for `workers` like `wait`, echoing each new line of their logs as `[worker<i>] line`."""
  offsets = [0] * len(workers)
  deadline = time.time() + timeout

  def drain():
    for i, worker in enumerate(workers):
      text = worker.output()
      complete = text[offsets[i]:].rpartition('\n')[0]
      if complete:
        for line in complete.split('\n'):
          echo(f'[worker{worker.index}] {line}')
        offsets[i] += len(complete) + 1

  while time.time() < deadline and any(w.process.poll() is None for w in workers):
    drain()
    time.sleep(0.2)
  codes = wait(workers, max(deadline - time.time(), 0.1))
  drain()
  return codes


def _speed(result_path):
  """Training speed of a finished run from its results file: optimizer steps per second in its last epoch (the
  first one traces the step function, and the swap's epoch traces it again)."""
  from lmf_tf import results  # pylint: disable=g-import-not-at-top
  result = results.load(result_path)
  last, before = result.history[-1], result.history[-2]
  seconds = last['train_seconds']
  vocab, dim, rank = result.data['vocab_size'], result.data['embedding_dim'], result.rank
  dense_before = result.params['uncompressed_model'] - vocab * dim  # every weight but the V x d table
  dense_after = result.params['model'] - vocab * rank  # every weight but the V x k table (the k x d is dense)
  return {'steps_per_second': round((last['step'] - before['step']) / seconds, 2), 'last_epoch_seconds': seconds,
          'epoch_seconds': [h['train_seconds'] for h in result.history], 'test_accuracy': result.test_accuracy,
          'rank': rank, 'gradient_exchange': {
              'dense_bytes_per_step_before_swap': 4 * dense_before, 'dense_bytes_per_step_after_swap': 4 * dense_after,
              'embedding_row_bytes_before_swap': 4 * dim, 'embedding_row_bytes_after_swap': 4 * rank}}


def demo(config, out_dir, workers=2, timeout=1800, echo=print):
  """Trains `config` three ways, one after the other on this machine, and compares their speed: one process on one
  thread, one process on every core, and `workers` worker processes of a multi-worker run on one thread each
  (their output echoed line by line). Each way gets its own folder under `out_dir`; returns the measurements.

  The gradient exchanged per step is also reported: under a multi-worker strategy every step all-reduces the
  gradient of each trainable variable (4 bytes per float32 number for dense ones; an embedding table's gradient
  is IndexedSlices, one row per distinct word of the batch, so the swap shrinks each row from d to k numbers).

  Raises:
    RuntimeError: if a run fails (its log is named).
  """
  measured = {}
  ways = [('one_process_1_thread', 1, 1), ('one_process_all_threads', 1, None),
          (f'{workers}_workers_1_thread_each', workers, 1)]
  for name, count, threads in ways:
    way = dataclasses.replace(config, threads=threads, workdir=os.path.join(out_dir, name, 'runs'),
                              results_dir=os.path.join(out_dir, name, 'results'))
    log_dir = os.path.join(out_dir, name, 'logs')
    os.makedirs(log_dir, exist_ok=True)
    echo(f'--- {name}')
    started = time.time()
    if count == 1:
      codes = [_run_alone(way, os.path.join(log_dir, 'train.log'))]
    else:
      codes = _follow(start_workers(way, log_dir, workers=count), timeout, echo)
    if codes != [0] * count:
      raise RuntimeError(f'{name}: a run failed (exit codes {codes}); see {log_dir}')
    measured[name] = {'processes': count, 'threads_per_process': threads,
                      'wall_seconds': round(time.time() - started, 1),
                      **_speed(os.path.join(way.results_dir, way.run_name + '.json'))}
    echo(f'--- {name}: {measured[name]["steps_per_second"]} steps/s in the last epoch, '
         f'{measured[name]["wall_seconds"]} s in all')
  return measured
