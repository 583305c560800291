import dataclasses
import fcntl
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from lmf_tf import io_utils, results

from lmf_tf.compression import online
from lmf_tf.harness import figures
from lmf_tf.harness import plans
from lmf_tf.harness import reporting
from lmf_tf.harness import runner


def write_result(results_dir, name, test, dev=0.8, rank=None, total=1000, curve=None, swap=None, config=None):
  result = results.ClassifierResult(
      run=name, method='online' if rank else 'uncompressed', config=config or {}, test_accuracy=test,
      dev_accuracy=dev, rank=rank, wall_seconds=10.0, checkpoint_dir='',
      checkpoint_bytes={'total_bytes': total, 'data_bytes': total - 100}, params={'model': total // 4, 'embedding': 100},
      dev_curve=curve, compression={'swap_step': swap} if swap else None)
  results.write(result, str(results_dir))


@pytest.fixture
def hand_made(tmp_path):
  results = tmp_path / 'results'
  (results / 'failed').mkdir(parents=True)
  runs = plans.plan(quick=False, models=('dan',), results_dir=str(results))
  # Uncompressed: 3 seeds. Online R=90: 2 of 3 seeds. Offline R=90: none. Quant8: seed 1 only.
  for seed, acc in zip((1, 2, 3), (0.80, 0.82, 0.84)):
    write_result(results, f'sst2_dan_R0_seed{seed}', acc, total=4000)
  (results / 'logs').mkdir()
  write_result(results, 'sst2_dan_R90_seed1', 0.79, rank=29, total=800,
               curve=[[100, 0.7, None], [200, 0.75, 29], [300, 0.78, 29]], swap=150)
  write_result(results, 'sst2_dan_R90_seed2', 0.77, rank=29, total=800)
  write_result(results, 'sst2_dan_R0_q8_seed1', 0.81, total=1100)
  (results / 'failed' / 'sst2_dan_R99_seed1.txt').write_text(
      'error: R=99 leaves rank k=0 for V=100, d=3; R must be at most 1.0 (rank 1) for this embedding\n')
  write_result(results, 'sst2_dan_R0_adagrad-constant_seed1', 0.70)
  return results, runs


def test_table2_means_stds_and_missing_runs(hand_made):
  results, runs = hand_made
  table = reporting.table2(reporting.plan_frame(str(results), runs)).set_index(['method', 'R'])
  base = table.loc[('uncompressed', 0.0)]
  assert base.seeds == '3/3' and base.test_mean == pytest.approx(82.0)
  assert base.test_std == pytest.approx(2.0)  # sample std of 80, 82, 84
  online = table.loc[('online', 90.0)]
  assert online.seeds == '2/3' and online.status == 'missing'
  assert online.test_mean == pytest.approx(78.0) and online.test_std == pytest.approx(math.sqrt(2))
  assert online.relative_degradation_pct == pytest.approx(100 * 4 / 82)
  assert online.bytes == 800 and online['rank'] == 29
  offline = table.loc[('offline', 90.0)]
  assert offline.seeds == '0/3' and math.isnan(offline.test_mean)  # reported missing, not invented
  assert table.loc[('online', 99.0)].status == 'impossible, missing'
  q8 = table.loc[('quant8', 0.0)]
  assert q8.seeds == '1/3' and math.isnan(q8.test_std)
  markdown = reporting.table2_markdown(reporting.table2(reporting.plan_frame(str(results), runs)))
  assert '| dan | online | 90 | 29 | 800 | - | 78.00 ± 1.41 | 4.88 | 2/3 |' in markdown
  assert '| dan | offline | 90 | - | - | - | missing | - | 0/3 |' in markdown
  # With the deployable sizes measured (scripts/deployable_sizes.py), their mean over the seeds done.
  names = [r.name for r in runs if r.method == 'online' and r.reduction == 90]
  io_utils.write_json_atomic(str(results / reporting.DEPLOYABLE_FILE),
                             {names[0]: {'deployable_bytes': 700}, names[1]: {'deployable_bytes': 710}})
  markdown = reporting.table2_markdown(reporting.table2(reporting.plan_frame(str(results), runs)))
  assert '| dan | online | 90 | 29 | 800 | 705 | 78.00 ± 1.41 | 4.88 | 2/3 |' in markdown


def test_table3_per_data_set(tmp_path):
  results = tmp_path / 'results'
  (results / 'failed').mkdir(parents=True)
  runs = [r for r in plans.plan(models=('lstm',), results_dir=str(results))
          if r.table == 'table3' and r.dataset == 'clinc150' and r.seed == 1 and r.reduction in (0, 90)]
  for seed_acc, name in ((0.90, 'clinc150_lstm_R0_seed1'), (0.88, 'clinc150_lstm_R90_seed1')):
    write_result(results, name, seed_acc, rank=4 if 'R90' in name else None)
  table = reporting.table3(reporting.plan_frame(str(results), runs)).set_index(['dataset', 'method', 'R'])
  assert table.loc[('clinc150', 'online', 90.0), 'relative_degradation_pct'] == pytest.approx(100 * 0.02 / 0.90)
  assert table.loc[('clinc150', 'offline', 90.0), 'status'] == 'missing'
  markdown = reporting.table2_markdown(table.reset_index())
  assert markdown.startswith('| data set | model |') and '| clinc150 | lstm | online | 90 | 4 |' in markdown


def test_table1_policies(hand_made):
  results, runs = hand_made
  table = reporting.table1(reporting.plan_frame(str(results), runs))
  assert list(table.policy) == ['adagrad', 'adam', 'clr', 'calr']
  calr = table[table.policy == 'calr'].iloc[0]
  assert calr.test_mean == pytest.approx(82.0) and calr.seeds == '3/3'
  assert table[table.policy == 'adagrad'].iloc[0].seeds == '1/3'
  assert table[table.policy == 'adam'].iloc[0].status == 'missing'


def test_tables_and_figures_are_written(hand_made):
  results, runs = hand_made
  paths = reporting.write_paper_tables(str(results), runs) + figures.write_all(str(results), runs)
  assert {os.path.basename(p) for p in paths} >= {'table1.md', 'table2.csv', 'figure2_learning_rates.png',
                                                  'figure3_dan.png', 'size_accuracy_dan.png'}
  # The files hold what the tables computed: the markdown's rows, the CSV's numbers, images that decode.
  assert reporting.table2_markdown(reporting.table2(reporting.plan_frame(str(results), runs))) == (
      results / 'table2.md').read_text()
  csv = pd.read_csv(results / 'table2.csv').set_index(['method', 'R'])
  assert csv.loc[('online', 90.0)].test_mean == pytest.approx(78.0) and csv.loc[('online', 90.0)].seeds == '2/3'
  for name in ('figure2_learning_rates.png', 'figure3_dan.png', 'size_accuracy_dan.png'):
    height, width = plt.imread(results / name).shape[:2]
    assert height > 300 and width > 500


def test_plan_sizes():
  # Quick: SST-2 as below with 1 seed and 2 R, no Table 3.
  assert len(plans.plan(quick=True)) == 24
  full = plans.plan()
  # SST-2 per seed: base, 3 policies, q16, q8, online and offline at 7 R, online R=90 then q8; per model one Keras
  # int8. Table 3 per data set, model and seed: base, q16, q8, online and offline at 3 R.
  assert len(full) == 2 * (3 * (1 + 3 + 2 + 2 * 7 + 1) + 1) + 2 * 2 * 3 * (3 + 2 * 3)
  table3 = [r for r in full if r.table == 'table3']
  assert {r.dataset for r in table3} == {'clinc150', 'snips'} and all(r.name.startswith(r.dataset) for r in table3)
  assert all(f'--dataset={r.dataset}' in r.command() for r in table3 if r.method != 'quant8' and r.method != 'quant16')
  assert len({r.name for r in full}) == len(full)
  quant = [r for r in full if r.method in ('quant8', 'online+quant8')]
  assert all(r.name == r.requires.replace('_seed', '_q8_seed') for r in quant)
  stacked = [r for r in full if r.method == 'online+quant8']
  assert len(stacked) == 6 and all(r.reduction == 90 and r.requires.endswith(f'_R90_seed{r.seed}') for r in stacked)


def test_runner_resumes_skips_locked_runs_and_records_failures(tmp_path):
  results = tmp_path / 'results'
  ok = runner.Run('ok', 'table2', 'dan', 'online', 0.0, 1,
                       (sys.executable, '-c', f'open({str(results / "ok.json")!r}, "w").write("{{}}")'),
                       resume_state=str(tmp_path / 'state.json'))
  bad = runner.Run('bad', 'table2', 'dan', 'online', 0.0, 1, (sys.executable, '-c', 'raise SystemExit("error: R=99 leaves rank k=0")'))
  child = runner.Run('child', 'table2', 'dan', 'quant8', 0.0, 1, (sys.executable, '-c', 'pass'), requires='bad')
  locked = runner.Run('locked', 'table2', 'dan', 'online', 0.0, 1, (sys.executable, '-c', 'pass'))
  (results / 'logs').mkdir(parents=True)
  held = open(results / 'logs' / 'locked.lock', 'a')  # another runner is running `locked`
  fcntl.flock(held, fcntl.LOCK_EX)
  (results / 'logs' / 'ok.lock').write_text('')  # left by a runner that was killed: no holder, no obstacle
  lines = []
  finished, failed = runner.run_all([ok, bad, child, locked], jobs=2, results_dir=str(results),
                                    echo=lines.append, poll_seconds=0.05)
  held.close()
  assert (finished, failed) == (2, 2)
  assert ok.done(str(results)) and not locked.done(str(results))
  assert runner.is_impossible((results / 'failed' / 'bad.txt').read_text())
  assert (results / 'failed' / 'child.txt').read_text().startswith('skipped: bad failed')
  assert any('skip locked: another runner is running it' in line for line in lines)
  assert not (results / 'logs' / 'ok.lock').exists()
  assert ok.command()[-1] != '--resume'
  (tmp_path / 'state.json').write_text('{}')  # an interrupted run: the next call resumes it
  assert ok.command()[-1] == '--resume'
  with pytest.raises(ValueError, match='jobs'):
    runner.run_all([ok], jobs=0, results_dir=str(results))


def test_summary_of_existing_runs(tmp_path):
  # The last two are a tuning variant (batch 32) and a recovery recipe: their own tables', never mixed in here.
  for seed, r, acc, other in ((1, None, 0.85, {}), (2, None, 0.86, {}), (1, 90, 0.84, {}),
                              (3, None, 0.10, {'batch_size': 32}), (2, 90, 0.10, {'recovery_lr': 'restart'})):
    name = f'sst2_lstm_R{r or 0}_{"v_" if other else ""}seed{seed}'
    write_result(tmp_path, name, acc, rank=4 if r else None, total=1000 if r else 3000)
    path = tmp_path / (name + '.json')
    result = json.loads(path.read_text())
    result.update(config={'dataset': 'sst2', 'model': 'lstm', 'reduction': r, 'seed': seed, **other}, best={},
                  params={'model': 250, 'embedding': 100})
    path.write_text(json.dumps(result))
  (tmp_path / 'sst2_bench.json').write_text('{"speedup": 2}')  # not a run: left out
  table = reporting.write_summary(str(tmp_path), 'sst2_*.json', str(tmp_path / 'summary'))
  assert list(table.R) == [0.0, 90.0]
  assert table.test_mean[0] == pytest.approx(85.5) and table.seeds[0] == '2/2' and table.seeds[1] == '1/1'
  assert table.relative_degradation_pct[1] == pytest.approx(100 * 1.5 / 85.5)
  assert '| sst2 | lstm | 90 | 4 | 1 | 84.00 |' in (tmp_path / 'summary.md').read_text()


# The runner needs nothing of the library: its process imports it under a bare `lmf_tf` package, without the face's
# `import keras` (a TensorFlow start-up).
BARE_LMF_TF = ("import sys, types; sys.modules['lmf_tf'] = types.ModuleType('lmf_tf'); "
               f"sys.modules['lmf_tf'].__path__ = [{os.path.dirname(os.path.abspath(io_utils.__file__))!r}]\n")


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_runner_stopped_by_a_signal_stops_its_children_and_frees_their_locks(tmp_path, signum):
  # The runner ignores SIGINT at start, as one started in the background by a non-interactive shell does.
  results, pid_file = tmp_path / 'results', tmp_path / 'child.pid'
  child = (sys.executable, '-c', f'import os, time; open({str(pid_file)!r}, "w").write(str(os.getpid())); '
           'time.sleep(120)')
  runner = subprocess.Popen([sys.executable, '-c', BARE_LMF_TF + f'''
import signal
from lmf_tf.harness import runner
signal.signal(signal.SIGINT, signal.SIG_IGN)
run = runner.Run('slow', 'table2', 'dan', 'online', 0.0, 1, {child!r})
runner.run_all([run], results_dir={str(results)!r}, poll_seconds=0.05)
'''], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  deadline = time.time() + 60
  while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
    time.sleep(0.05)
  assert (results / 'logs' / 'slow.lock').exists()
  runner.send_signal(signum)
  output = runner.communicate(timeout=60)[0].decode()
  assert runner.returncode != 0 and 'Stopped' in output
  assert not (results / 'logs' / 'slow.lock').exists()
  with pytest.raises(ProcessLookupError):
    os.kill(int(pid_file.read_text()), 0)


def test_every_committed_results_file_loads_through_the_schema(repo_root):
  loaded = {}
  for path in glob.glob(os.path.join(repo_root, 'results', '*.json')):
    value = json.load(open(path))
    if results.is_run_result(value):
      loaded[path] = results.from_dict(value, path)
  classifier = [r for r in loaded.values() if isinstance(r, results.ClassifierResult)]
  assert len(classifier) > 200 and len(loaded) - len(classifier) >= 20  # Tables 1-3, and the PTB runs
  assert {r.schema_version for r in loaded.values()} >= {results.SCHEMA_VERSION}  # v1 files take the default
  offline = next(r for r in classifier if r.method == 'offline')
  assert offline.rank is None and offline.table_rank == offline.data['offline_rank']
  assert all(r.recipe == 'paper' for r in classifier if r.method != 'online')


def test_results_round_trip_and_a_foreign_json_is_named(tmp_path):
  result = results.ClassifierResult(run='x_seed1', method='online', config={'seed': 1}, dev_accuracy=0.5,
                                    test_accuracy=0.6, checkpoint_bytes={'total_bytes': 9}, params={'model': 1},
                                    checkpoint_dir='d', wall_seconds=1.0, rank=4, recipe='restart')
  path = results.write(result, str(tmp_path))
  assert results.load(path) == result and json.load(open(path))['schema_version'] == results.SCHEMA_VERSION
  (tmp_path / 'odd.json').write_text('{"run": "odd", "test_accuracy": 0.5}')
  with pytest.raises(results.CorruptFileError, match=r'odd.json is not a results file of lmf_tf'):
    results.load(str(tmp_path / 'odd.json'))


def test_recovery_table_chooses_on_dev_among_complete_recipes(tmp_path):
  from lmf_tf.harness import recovery_reporting  # pylint: disable=g-import-not-at-top
  runs = plans.recovery_plan(seeds=(1, 2), recipes=('paper', 'restart', 'kd', 'gradual'),
                             settings=(('sst2', 'lstm', 90),),
                             results_dir=str(tmp_path))
  scores = {  # (recipe, method) -> [(dev, test) per seed]; kd has one seed of two, with the best dev of all
      ('paper', 'uncompressed'): [(0.83, 0.80), (0.83, 0.82)], ('paper', 'online'): [(0.78, 0.79), (0.80, 0.77)],
      ('restart', 'online'): [(0.82, 0.80), (0.84, 0.80)], ('kd', 'online'): [(0.90, 0.70)],
      ('paper', 'online+quant8'): [(0.95, 0.78), (0.95, 0.78)], ('restart', 'online+quant8'): [(0.81, 0.79)]}
  for run in runs:
    done = scores.get((run.recipe, run.method), [])
    if run.seed <= len(done):
      dev, test = done[run.seed - 1]
      results.write(results.ClassifierResult(
          run=run.name, method=run.method, config={}, dev_accuracy=dev, test_accuracy=test, wall_seconds=1.0,
          checkpoint_dir='', checkpoint_bytes={'total_bytes': 700, 'data_bytes': 600}, params={'model': 1},
          rank=None if run.method == 'uncompressed' else 4), str(tmp_path))
  table = recovery_reporting.recovery_table(reporting.plan_frame(str(tmp_path), runs)).set_index('recipe')
  assert list(table.index[table.selected]) == ['restart']  # kd's better dev has one seed only; 8-bit never chosen
  assert table.loc['kd'].seeds == '1/2' and table.loc['paper + 8-bit'].seeds == '2/2'
  assert table.loc['restart'].rel_degradation_pct == pytest.approx(100 * (81 - 80) / 81)
  assert table.loc['paper'].dev_mean == pytest.approx(79) and table.loc['restart'].test_std == pytest.approx(0)
  markdown = recovery_reporting.to_markdown(table.reset_index())
  assert [line for line in markdown.splitlines() if '**yes**' in line] == [
      '| sst2 | lstm | 90 | 4 | restart | 2/2 | 83.00 | 80.00 ± 0.00 | 1.23 | 700 | **yes** |']
  assert '| sst2 | lstm | 90 | - | gradual | 0/2 | - | - | - | - |  |' in markdown.splitlines()  # none done yet
  # The chosen recipe joins Table 2 after the paper's methods, beyond the paper, with its 8-bit rows.
  beyond = recovery_reporting.chosen_recipe_frame(str(tmp_path), runs)
  assert sorted(set(beyond.method)) == ['online, restart (beyond the paper)',
                                         'online, restart + 8-bit (beyond the paper)']
  assert set(beyond.table) == {'table2'}
  paper = [r for r in runs if r.recipe == 'paper' and r.method != 'online+quant8']
  paper = reporting.plan_frame(str(tmp_path), paper).assign(table='table2')  # as Table 2's own runs
  table = reporting.table2(pd.concat([paper, beyond], ignore_index=True))
  assert list(table.method) == ['uncompressed', 'online', 'online, restart (beyond the paper)',
                                'online, restart + 8-bit (beyond the paper)']
  assert table.iloc[2].test_mean == pytest.approx(80) and table.iloc[3].seeds == '1/2'


def test_recovery_plan_runs_and_names(tmp_path):
  runs = plans.recovery_plan(results_dir=str(tmp_path))
  names = [r.name for r in runs]
  assert len(names) == len(set(names))
  lstm90 = [r for r in runs if (r.dataset, r.model, r.reduction) == ('sst2', 'lstm', 90)]
  assert {r.recipe for r in lstm90} == set(plans.RECOVERY_RECIPES)
  assert sum(r.method == 'online+quant8' for r in lstm90) == 3 * len(plans.RECOVERY_RECIPES)  # 8-bit for R=90 only
  assert 'sst2_lstm_R90_restart-gradual_seed2' in names and 'sst2_lstm_R90_seed2' in names  # the paper's: Table 2's
  dan = {r.recipe for r in runs if r.model == 'dan' and r.method == 'online'}
  assert dan == {'paper', 'restart', 'lrconst', 'kd', 'gradual', 'devpeak'}  # single options only at R = 99
  assert sum(r.method == 'uncompressed' for r in runs) == 3 * 3  # sst2 lstm, clinc150 lstm, sst2 dan
  # A gradual stage is about half an epoch: CLINC150's 238-step epochs would end before 2 stages of 500.
  stages = {(r.dataset, r.config.gradual_every_steps) for r in runs if 'gradual' in r.recipe and r.method == 'online'}
  assert stages == {('sst2', 500), ('clinc150', 120)}
  some = plans.recovery_plan(seeds=(1,), recipes=('gradual',), settings=(('clinc150', 'lstm', 90),))
  assert [r.name for r in some] == ['clinc150_lstm_R0_seed1', 'clinc150_lstm_R90_gradual_h7844fa_seed1']


def test_recovery_curves_align_seeds_on_steps_after_the_swap():
  # Dev curves recorded every 200 steps; the swaps at 4224 and 2112 are not multiples of 200.
  curve = lambda swap, slope: [[s, 0.5 + slope * max(s - swap, 0) / 1000, 4 if s > swap else None]
                               for s in range(200, 8001, 200)]
  frame = pd.DataFrame([
      dict(dataset='sst2', model='lstm', R=90.0, method='online', status='done', recipe='paper', swap_step=4224.0,
           dev_curve=curve(4224, 0.01)),
      dict(dataset='sst2', model='lstm', R=90.0, method='online', status='done', recipe='paper', swap_step=4224.0,
           dev_curve=curve(4224, 0.03)),
      dict(dataset='sst2', model='lstm', R=90.0, method='online', status='done', recipe='devpeak', swap_step=2112.0,
           dev_curve=curve(2112, 0.02)),
      dict(dataset='sst2', model='lstm', R=90.0, method='online', status='missing', recipe='kd', swap_step=None,
           dev_curve=None)])
  data = figures.recovery_curve_data(frame)
  assert sorted(data) == ['devpeak', 'paper']
  steps, mean, seeds = data['paper']
  assert seeds == 2 and steps[0] == 200 and steps[-1] == 3600  # the curves end 3,776 steps after the swap
  np.testing.assert_allclose(mean, 50 + 2 * steps / 1000)  # the mean of slopes 1 and 3 (% per 1000 steps), exact
  assert data['devpeak'][1][0] == pytest.approx(50 + 2 * 200 / 1000)


def test_dan_variants_are_separate_runs_chosen_on_dev_among_complete_ones(tmp_path):
  runs = plans.dan_plan(seeds=(1, 2), results_dir=str(tmp_path))
  names = [r.name for r in runs]
  assert len(names) == len(set(names)) == 2 * len(plans.DAN_VARIANTS)  # no variant writes another's files
  assert 'sst2_dan_R0_seed1' in names  # the default is Table 2's own run
  by_variant = {r.recipe: r for r in runs if r.seed == 1}
  assert by_variant['batch32-l2_1e-5'].config.batch_size == 32 and by_variant['batch32-l2_1e-5'].config.l2 == 1e-5
  scores = {'default': [(0.82, 0.81), (0.80, 0.83)], 'batch32': [(0.83, 0.80), (0.83, 0.82)], 'l2_1e-5': [(0.9, 0.7)]}
  for run in runs:
    done = scores.get(run.recipe, [])
    if run.seed <= len(done):
      dev, test = done[run.seed - 1]
      results.write(results.ClassifierResult(
          run=run.name, method=run.method, config={}, dev_accuracy=dev, test_accuracy=test, wall_seconds=1.0,
          checkpoint_dir='', checkpoint_bytes={'total_bytes': 700, 'data_bytes': 600}, params={'model': 1}),
          str(tmp_path))
  table = reporting.variant_table(reporting.plan_frame(str(tmp_path), runs), plans.DAN_VARIANTS).set_index('recipe')
  assert list(table.index[table.selected]) == ['batch32']  # l2_1e-5's better dev has one seed of two
  assert table.loc['batch32'].settings == 'batch_size=32' and table.loc['l2_1e-5'].seeds == '1/2'
  reporting.write_variant_table(str(tmp_path), runs, 'dan_tuning', plans.DAN_VARIANTS)
  lines = (tmp_path / 'dan_tuning.md').read_text().splitlines()
  assert '| wd0.5 | word_dropout=0.5 | 0/2 | - | missing |  |' in lines  # not run: no number made up
  assert '| batch32 | batch_size=32 | 2/2 | 83.00 ± 0.00 | 81.00 ± 1.41 | **yes** |' in lines


@pytest.mark.slow  # each case starts TensorFlow in a subprocess (~3.5 s)
@pytest.mark.parametrize('script, flag, message', [
    ('recovery.py', '--settings=clinc150_lstm_R95', r'^error: --settings: clinc150_lstm_R95 not among sst2_lstm_R90, '),
    ('recovery.py', '--recipes=restart-fast', r'^error: --recipes: restart-fast is not paper or a "-"-joined list'),
    ('dan_tuning.py', '--variants=batch16', r'^error: --variants: batch16 not among default, batch32, '),
])
def test_ablation_scripts_refuse_an_unknown_part_in_one_line_and_write_nothing(tmp_path, repo_root, script, flag,
                                                                               message):
  result = subprocess.run(
      [sys.executable, os.path.join(repo_root, 'scripts', script), flag, f'--results_dir={tmp_path / "res"}',
       f'--workdir={tmp_path / "ck"}'],
      capture_output=True, text=True, timeout=120, env={**os.environ, 'PYTHONPATH': repo_root})
  assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
  assert re.search(message, result.stderr), result.stderr
  assert not (tmp_path / 'res').exists() and not (tmp_path / 'ck').exists()


def test_a_script_without_its_study_package_names_the_extra_in_one_line(capsys):
  # Every script imports cli first; its excepthook makes a missing package of the `study` extra, at the script's
  # imports or during its run, one line (exit status 1, as for any uncaught exception).
  from lmf_tf import cli  # pylint: disable=g-import-not-at-top
  assert sys.excepthook is cli._missing_extra_in_one_line  # pylint: disable=protected-access
  sys.excepthook(ModuleNotFoundError, ModuleNotFoundError("No module named 'pandas'", name='pandas'), None)
  assert capsys.readouterr().err.splitlines() == [
      "error: the reproduction needs pandas, which is not installed: pip install -e '.[study]' in a clone of the "
      "repository (make venv does it)"]
  sys.excepthook(ModuleNotFoundError, ModuleNotFoundError("No module named 'nonesuch'", name='nonesuch'), None)
  assert capsys.readouterr().err.splitlines() == ["ModuleNotFoundError: No module named 'nonesuch'"]  # Python's own
