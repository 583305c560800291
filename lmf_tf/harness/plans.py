"""The experiments behind the paper's Tables 1-2 and Figures 2-3 (Acharya et al. 2019, §5), as a plan of runs.

Each `Run` is one independent process (`scripts/train.py` or `scripts/quantize.py`) that writes
`results/<name>.json`. `plan()` lists them; `scripts/reproduce.py` runs the missing ones, several at a time.
"""

import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import sys
import time

from lmf_tf.config import TrainConfig, derived_run_name

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE2_REDUCTIONS = (10, 30, 50, 70, 90, 95, 99)  # the paper's R, and beyond it, 95 and 99
QUICK_REDUCTIONS = (50, 90)
# Table 3 (issue 5): the paper's intent set is proprietary; CLINC150 and SNIPS stand in for it.
TABLE3_DATASETS = ('clinc150', 'snips')
TABLE3_REDUCTIONS = (50, 70, 90)
QUICK_TABLE3 = ((), ())  # the quick plan leaves Table 3 out, to stay well under an hour
FIGURE3_EVAL_EVERY = 100  # steps between dev evaluations for Figure 3

# Table 1: learning-rate policies on the uncompressed models. Adagrad and constant Adam use the usual rates
# for these optimizers; CLR runs between the same bounds as CALR.
LR_POLICIES = {
    'adagrad': dict(optimizer='adagrad', lr_schedule='constant', learning_rate=0.05),
    'adam': dict(optimizer='adam', lr_schedule='constant', learning_rate=1e-3),
    'clr': dict(optimizer='adam', lr_schedule='clr'),
    'calr': dict(optimizer='adam', lr_schedule='calr'),
}


@dataclasses.dataclass(frozen=True)
class Run:
  """One process: `name` (its results file stem), what it is, and its command line."""
  name: str
  table: str  # 'table1', 'table2' or 'both'
  model: str
  method: str  # uncompressed, online, offline, quant16, quant8, keras_int8, or a Table 1 policy
  reduction: float
  seed: int
  argv: tuple
  requires: str | None = None  # a run whose checkpoint this one needs
  resume_state: str | None = None  # a training run's state file: if it exists, the run is resumed
  dataset: str = 'sst2'

  def command(self):
    resume = self.resume_state is not None and os.path.exists(self.resume_state)
    return list(self.argv) + (['--resume'] if resume else [])

  def done(self, results_dir):
    return os.path.exists(os.path.join(results_dir, self.name + '.json'))


def _train_run(table, model, method, seed, reduction=0, workdir='checkpoints', results_dir='results', dataset='sst2',
               **flags):
  config = TrainConfig(dataset=dataset, model=model, seed=seed, reduction=reduction or None,
                       offline=method == 'offline',
                       **{k: v for k, v in flags.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}})
  argv = [sys.executable, os.path.join(REPO_ROOT, 'scripts', 'train.py'), f'--dataset={dataset}', f'--model={model}',
          f'--seed={seed}', '--tensorboard=false', f'--workdir={workdir}', f'--results_dir={results_dir}']
  if reduction:
    argv.append(f'--reduction={reduction:g}')
  if method == 'offline':
    argv.append('--offline')
  argv += [f'--{k}={v}' for k, v in flags.items()]
  return Run(config.run_name, table, model, method, float(reduction), seed, tuple(argv),
             resume_state=os.path.join(workdir, config.run_name, 'train', 'state.json'), dataset=dataset)


STACKED_REDUCTION = 90  # online LMF, then 8-bit quantization of its checkpoint (beyond the paper; issue 6)


def _quantize_run(source, bits=None, keras_int8=False, results_dir='results', workdir='checkpoints'):
  tag = 'kerasint8' if keras_int8 else f'q{bits}'
  name = derived_run_name(source.name, tag)
  argv = [sys.executable, os.path.join(REPO_ROOT, 'scripts', 'quantize.py'),
          f'--checkpoint_dir={os.path.join(workdir, source.name, "best")}', f'--results_dir={results_dir}']
  argv += ['--method=keras_int8'] if keras_int8 else [f'--bits={bits}']
  method = 'keras_int8' if keras_int8 else f'quant{bits}'
  if source.method == 'online':
    method = f'online+{method}'
  table = 'table3' if source.table == 'table3' else 'table2'
  return Run(name, table, source.model, method, source.reduction, source.seed, tuple(argv), requires=source.name,
             dataset=source.dataset)


def plan(quick=False, models=('lstm', 'dan'), workdir='checkpoints', results_dir='results'):
  """All runs of Tables 1-3 and Figure 3: 3 seeds, 7 values of R on SST-2 and 3 on CLINC150 and SNIPS; or with
  `quick` 1 seed and R in {50, 90} on SST-2 only."""
  seeds = (1,) if quick else (1, 2, 3)
  reductions = QUICK_REDUCTIONS if quick else TABLE2_REDUCTIONS
  where = dict(workdir=os.path.abspath(workdir), results_dir=os.path.abspath(results_dir))
  runs = []
  for model in models:
    for seed in seeds:
      base = _train_run('both', model, 'uncompressed', seed, **where)
      runs.append(base)
      for policy, flags in LR_POLICIES.items():
        if policy != 'calr':  # CALR is the default: the uncompressed run above
          runs.append(dataclasses.replace(_train_run('table1', model, policy, seed, **where, **flags), method=policy))
      runs += [_quantize_run(base, bits=16, **where), _quantize_run(base, bits=8, **where)]
      if seed == seeds[0]:
        runs.append(_quantize_run(base, keras_int8=True, **where))
      for r in reductions:
        runs.append(_train_run('table2', model, 'online', seed, r, **where, eval_every_steps=FIGURE3_EVAL_EVERY))
        runs.append(_train_run('table2', model, 'offline', seed, r, **where))
        if r == STACKED_REDUCTION:
          runs.append(_quantize_run(runs[-2], bits=8, **where))
  intent_sets, intent_reductions = QUICK_TABLE3 if quick else (TABLE3_DATASETS, TABLE3_REDUCTIONS)
  for dataset in intent_sets:
    for model in models:
      for seed in seeds:
        base = _train_run('table3', model, 'uncompressed', seed, dataset=dataset, **where)
        runs += [base, _quantize_run(base, bits=16, **where), _quantize_run(base, bits=8, **where)]
        for r in intent_reductions:
          runs.append(_train_run('table3', model, 'online', seed, r, dataset=dataset, **where))
          runs.append(_train_run('table3', model, 'offline', seed, r, dataset=dataset, **where))
  return runs


# The PTB table (issue 7; Grachev et al. 2017, Table 1): the `small` baseline, then each method at two or three
# levels, each compressed from the baseline's checkpoint and fine-tuned (quantization is not fine-tuned).
PTB_LEVELS = (  # in the order they run: one level of each method first
    ('lowrank', dict(reduction=60)),
    ('prune', dict(sparsity=0.8)),
    ('quantize', dict(bits=8)),
    ('tt', dict(tt_rank=16, matrices=('embedding', 'softmax'))),
    ('lowrank', dict(reduction=80)),
    ('prune', dict(sparsity=0.9)),
    ('tt', dict(tt_rank=64, matrices=('embedding', 'softmax'))),
    ('quantize', dict(bits=16)),
    ('lowrank', dict(reduction=60, matrices=('embedding', 'softmax'))),
    ('prune', dict(sparsity=0.6)),
)


def ptb_plan(config='small', seeds=(1,), workdir='checkpoints', results_dir='results', levels=PTB_LEVELS,
             **lm_flags):
  """The runs of the PTB table, seed by seed: `scripts/train_lm.py` for the seed's baseline, then
  `scripts/compress_lm.py` per level, starting from that baseline and fine-tuned with the same seed.

  `lm_flags`: extra `--flag=value` for every run (e.g. max_steps for a smoke plan); they change the run names.
  """
  from lmf_tf import lm_compression, lm_models  # the classifier plan needs neither

  workdir, results_dir = os.path.abspath(workdir), os.path.abspath(results_dir)
  runs = []
  for seed in seeds:
    lm_config = lm_models.get_lm_config(config, seed=seed, max_steps=lm_flags.get('max_steps'))
    baseline = Run(lm_config.run_name, 'ptb', config, 'baseline', 0.0, seed,
                   (sys.executable, os.path.join(REPO_ROOT, 'scripts', 'train_lm.py'), f'--config={config}',
                    f'--seed={seed}', f'--workdir={workdir}', f'--results_dir={results_dir}',
                    *[f'--{k}={v}' for k, v in lm_flags.items()]), dataset='ptb')
    runs.append(baseline)
    baseline_dir = os.path.join(workdir, baseline.name, 'final')
    for method, settings in levels:
      compress = lm_compression.LmCompressionConfig(baseline_dir=baseline_dir, method=method, seed=seed, **settings,
                                                    **lm_flags).validate()
      argv = [sys.executable, os.path.join(REPO_ROOT, 'scripts', 'compress_lm.py'), f'--baseline_dir={baseline_dir}',
              f'--method={method}', f'--seed={seed}', f'--workdir={workdir}', f'--results_dir={results_dir}']
      argv += [f'--{k}={",".join(v) if isinstance(v, tuple) else v}' for k, v in {**settings, **lm_flags}.items()]
      level = settings.get('reduction') or settings.get('sparsity') or settings.get('bits') or settings['tt_rank']
      runs.append(Run(compress.run_name(baseline.name), 'ptb', config, method, float(level), seed, tuple(argv),
                      requires=baseline.name, dataset='ptb'))
  return runs


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
      os.remove(lock)


class Stopped(KeyboardInterrupt):
  """The runner received SIGTERM, SIGHUP or SIGINT."""


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
        lock = os.path.join(results_dir, 'logs', run.name + '.lock')
        try:
          os.close(os.open(lock, os.O_CREAT | os.O_EXCL))  # one process per run, across runners
        except FileExistsError:
          echo(f'skip {run.name}: another runner holds {lock} (delete it if that runner is gone)')
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
      os.remove(lock)
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


def _clock(start):
  seconds = int(time.time() - start)
  return f'{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'
