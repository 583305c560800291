"""Runs a plan of experiments: each `Run` is its own process, several at a time, resumable and stoppable.

`run_all` skips runs whose results file exists, waits for the run a run `requires`, keeps each run's output in
`<results_dir>/logs/<name>.log` and the last error of a failed run in `<results_dir>/failed/<name>.txt`.
"""

import contextlib
import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

from lmf_tf import settings
from lmf_tf.errors import LmfError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Run:
  """One process: `name` (its results file stem), what it is, and what it runs: `config` (a config dataclass)
  given to `scripts/<script>` as flags (`settings.config_argv`), or else the command `argv`."""
  name: str
  table: str  # 'table1', 'table2', 'both', 'table3', 'recovery', 'ptb', ...
  model: str
  method: str  # uncompressed, online, offline, quant16, quant8, keras_int8, or a Table 1 policy
  reduction: float
  seed: int
  argv: tuple = ()
  requires: str | None = None  # a run whose checkpoint this one needs
  resume_state: str | None = None  # a training run's state file: if it exists, the run is resumed
  dataset: str = 'sst2'
  config: object = None
  script: str | None = None
  recipe: str = 'paper'  # the recovery recipe of an online run (`TrainConfig.recipe`)
  needs_checkpoint: bool = False  # done only once its `best/` checkpoint is on disk too (for timing it)

  def command(self):
    argv = (settings.config_argv(self.config, os.path.join(REPO_ROOT, 'scripts', self.script), sys.executable)
            if self.config is not None else list(self.argv))
    resume = self.resume_state is not None and os.path.exists(self.resume_state)
    return argv + (['--resume'] if resume else [])

  def done(self, results_dir):
    if self.needs_checkpoint and not os.path.exists(
        os.path.join(self.config.workdir, self.name, 'best', 'config.json')):
      return False
    return os.path.exists(os.path.join(results_dir, self.name + '.json'))


def failure_path(results_dir, name):
  return os.path.join(results_dir, 'failed', name + '.txt')


def _last_error(log_path):
  with open(log_path, errors='replace') as f:
    lines = [l.strip() for l in f if l.strip()]
  errors = [l for l in lines if l.startswith('error:')]
  return (errors or lines or ['(no output)'])[-1]


def is_impossible(message):
  """A run that cannot exist for this V and d (e.g. R = 99 leaves rank 0 for a 50-d embedding)."""
  return 'leaves rank k=0' in message or 'smaller than the matrix only for' in message


def run_all(runs, jobs=1, results_dir='results', echo=print, poll_seconds=1.0):
  """Runs every run of `runs` whose results file is missing, `jobs` processes at a time, in plan order.

  A run waits for the run it `requires`. Output goes to `<results_dir>/logs/<name>.log`. A run that fails leaves
  its last error line in `<results_dir>/failed/<name>.txt` (read by the tables); impossible runs are not retried,
  others are on the next call. Progress (current run, runs left, elapsed time) goes to `echo`.
  Returns:
    (number run, number failed).
  """
  if jobs < 1:
    raise ValueError(f'--jobs must be >= 1, got {jobs}')
  os.makedirs(os.path.join(results_dir, 'logs'), exist_ok=True)
  os.makedirs(os.path.join(results_dir, 'failed'), exist_ok=True)

  def impossible(run):
    path = failure_path(results_dir, run.name)
    return os.path.exists(path) and is_impossible(open(path).read())

  pending = [r for r in runs if not r.done(results_dir) and not impossible(r)]
  echo(f'{len(runs)} runs planned, {len(runs) - len(pending)} done or impossible, {len(pending)} to run, '
       f'{jobs} at a time')
  start, running, failed = time.time(), {}, set()
  try:
    with _stop_on_signals():
      return _schedule(pending, running, failed, jobs, results_dir, echo, poll_seconds, start)
  finally:
    for _, process, log, lock in running.values():  # interrupted: stop the children, release their locks
      process.terminate()
      process.wait()
      log.close()
      _release(lock)


class Stopped(KeyboardInterrupt):
  """The runner received SIGTERM, SIGHUP or SIGINT."""


class RunnerStopped(LmfError):
  """`run_plan` was stopped by a signal (message says what happens next)."""


@contextlib.contextmanager
def _stop_on_signals():
  """Turns SIGTERM, SIGHUP and SIGINT into `Stopped`, so that `run_all` stops its children and frees its locks.

  Needed because a runner started in the background by a non-interactive shell inherits SIGINT as ignored, and
  SIGTERM's default action kills it without running any `finally`.
  """
  if threading.current_thread() is not threading.main_thread():  # signal handlers can only be set there
    yield
    return

  def stop(signum, frame):
    del frame
    raise Stopped(f'stopped by {signal.Signals(signum).name}')

  stopped_by = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
  previous = {s: signal.signal(s, stop) for s in stopped_by}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


def _schedule(pending, running, failed, jobs, results_dir, echo, poll_seconds, start):
  finished = 0
  while pending or running:
    for run in list(pending):
      if len(running) >= jobs:
        break
      blocked = run.requires and not os.path.exists(os.path.join(results_dir, run.requires + '.json'))
      if run.requires in failed:
        pending.remove(run)
        failed.add(run.name)
        with open(failure_path(results_dir, run.name), 'w') as f:
          f.write(f'skipped: {run.requires} failed\n')
        echo(f'skip {run.name}: {run.requires} failed')
      elif not blocked:
        pending.remove(run)
        lock = _try_lock(os.path.join(results_dir, 'logs', run.name + '.lock'))  # one process per run
        if lock is None:
          echo(f'skip {run.name}: another runner is running it')
          continue
        log = open(os.path.join(results_dir, 'logs', run.name + '.log'), 'a')
        running[run.name] = (run, subprocess.Popen(run.command(), stdout=log, stderr=subprocess.STDOUT,
                                                   cwd=REPO_ROOT, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}),
                             log, lock)
        echo(f'[{_clock(start)}] start {run.name} ({len(running)} running, {finished} finished, '
             f'{len(pending)} waiting)')
    if not running and pending and all(r.requires for r in pending):  # Waiting for runs that will not come.
      for run in pending:
        echo(f'skip {run.name}: needs {run.requires}')
      break
    time.sleep(poll_seconds)
    for name, (_, process, log, lock) in list(running.items()):
      if process.poll() is None:
        continue
      log.close()
      _release(lock)
      del running[name]
      finished += 1
      if process.returncode == 0:
        if os.path.exists(failure_path(results_dir, name)):
          os.remove(failure_path(results_dir, name))
        echo(f'[{_clock(start)}] done  {name} ({finished} finished, {len(running) + len(pending)} left)')
      else:
        failed.add(name)
        message = _last_error(os.path.join(results_dir, 'logs', name + '.log'))
        with open(failure_path(results_dir, name), 'w') as f:
          f.write(message + '\n')
        echo(f'[{_clock(start)}] FAIL  {name}: {message}')
  return finished, len(failed)


def _try_lock(path):
  """An open file holding an exclusive `flock` on `path`, or None if another process holds it. The kernel releases
  the lock when its holder dies, even by SIGKILL, so a dead runner never blocks a run."""
  f = open(path, 'a')
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    f.close()
    return None
  return f


def _release(lock):
  with contextlib.suppress(FileNotFoundError):
    os.remove(lock.name)
  lock.close()


def run_plan(runs, jobs=1, results_dir='results', dry_run=False, tables_only=False, echo=print):
  """What `make reproduce`, `make recovery` and `make ptb-table` do with a plan: list it (`dry_run`), or run its
  missing runs (unless `tables_only`). Stopped by a signal: the children are stopped, and an `LmfError` says that
  the next call continues. Returns (number run, number failed), or None when nothing was run."""
  if dry_run:
    for run in runs:
      echo(f'{"done" if run.done(results_dir) else "todo"}  {run.name}')
    return None
  if tables_only:
    return None
  try:
    return run_all(runs, jobs, results_dir, echo)
  except Stopped as stopped:
    raise RunnerStopped(f'{stopped}: the running runs were stopped; the next call continues them (each resumes '
                        'from its last saved epoch)') from None


def _clock(start):
  seconds = int(time.time() - start)
  return f'{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'
