"""The budget front (`make budget-front`): SST-2 and CLINC150 at budgets from 20 KB to 1 MB, 3 seeds, the plan
chosen on dev; `results/budget_front.{csv,md,png}`.

Three phases, each a plan of processes for `runner.run_all` (resumable, `-j N`): every budget's candidates on seed 1
(`budget_search.search_candidates`; a plan shared by two budgets runs once) and the teachers of the small end; the
candidates made from each budget's best plan (its int4 twin; at the small end, distilled); then the other seeds
of the candidate each budget chose on dev. The table and
figure are rebuilt from the runs' JSON files.
"""

import os
import sys

import numpy as np
import pandas as pd

from lmf_tf import io_utils
from lmf_tf.harness import runner
from lmf_tf.text import budget_search

DATASETS = ('sst2', 'clinc150')
BUDGETS = (20_000, 45_000, 90_000, 180_000, 300_000, 1_000_000)
SEEDS = (1, 2, 3)
# The targets: 3-seed mean test accuracy (%) of the shipped files at each budget.
TARGETS = {'sst2': dict(zip(BUDGETS, (76.0, 80.5, 82.5, 83.5, 84.5, 85.0))),
           'clinc150': dict(zip(BUDGETS, (80.0, 85.0, 87.5, 88.5, 89.0, 89.5)))}
COLUMNS = ('dataset', 'budget_bytes', 'plan', 'deployable_bytes', 'tflite_bytes', 'vocabulary_bytes', 'seeds',
           'dev_mean', 'test_mean', 'test_std', 'keras_test_mean', 'train_seconds', 'search_seconds', 'target', 'met')


def _run(dataset, candidate, seed, results_dir, workdir):
  """The process of one `budget_search.Candidate` (or plan) and seed."""
  if not isinstance(candidate, budget_search.Candidate):
    candidate = budget_search.Candidate(candidate)
  trial = candidate.trial
  distill = (f'--distill_alpha={trial.distill_alpha:g}', f'--teacher={trial.teacher}') if trial.teacher else ()
  argv = (sys.executable, os.path.join(runner.REPO_ROOT, 'scripts', 'budget.py'), f'--dataset={dataset}',
          f'--plan={candidate.plan.name}', f'--seed={seed}', *distill, f'--results_dir={results_dir}',
          f'--workdir={workdir}')
  return runner.Run(name=budget_search.run_name(dataset, candidate.plan, seed, trial), table='budget',
                    model=candidate.plan.architecture, method='budget', reduction=0, seed=seed, argv=argv,
                    dataset=dataset)


def _unique(runs):
  seen = {}
  for run in runs:
    seen.setdefault(run.name, run)
  return list(seen.values())


def _small_end(candidates):
  """The data sets with a budget whose search distils (`budget_search.distils`)."""
  return sorted({dataset for dataset, budget_bytes in candidates if budget_search.distils(dataset, budget_bytes)})


def candidate_runs(candidates, results_dir, workdir):
  """Phase 1: seed 1 of every candidate of every (data set, budget) (`candidates` maps those to plans), and of the
  teacher of each data set with a budget at the small end."""
  teachers = [_run(d, budget_search.teacher_plan(d), 1, results_dir, workdir) for d in _small_end(candidates)]
  return _unique([_run(dataset, plan, 1, results_dir, workdir)
                  for (dataset, _), space in candidates.items() for plan in space.plans] + teachers)


def ensure_teachers(candidates, data, results_dir, workdir):
  """The shipped files of the teacher of each data set with a budget at the small end, trained in this process where
  its run's JSON is there but its files are not (`budget_search.ensure_teacher_files`); `data` maps data sets to
  their `budget_training.BudgetData`."""
  for dataset in _small_end(candidates):
    trial = budget_search.Trial(distill_alpha=budget_search.DISTILL_ALPHA, teacher=budget_search.TEACHERS[dataset])
    budget_search.ensure_teacher_files(data[dataset], trial, results_dir, workdir)


def derived_runs(candidates, results_dir, workdir):
  """Phase 2: seed 1 of each budget's candidates made from its best plan on dev, once its plans (and teacher)
  have run: the int4 twin, and at the small end the distilled one (`budget_search.derived_candidates`)."""
  runs = []
  for (dataset, budget_bytes), space in candidates.items():
    runs += [_run(dataset, candidate, 1, results_dir, workdir)
             for candidate in budget_search.derived_candidates(results_dir, dataset, budget_bytes, space)]
  return _unique(runs)


def seed_runs(candidates, seeds, results_dir, workdir):
  """Phase 3: the other seeds of each budget's candidate chosen on dev (those whose candidates have all run)."""
  runs = []
  for (dataset, budget_bytes), space in candidates.items():
    options = budget_search.budget_candidates(results_dir, dataset, budget_bytes, space)
    choice = budget_search.chosen_plan(results_dir, dataset, options)
    if choice is not None:
      runs += [_run(dataset, choice, seed, results_dir, workdir) for seed in seeds if seed != 1]
  return _unique(runs)


def _label(candidate):
  teacher = candidate.trial.teacher
  return candidate.plan.name + (f' + KD from {teacher}' if teacher else '')


def _search_seconds(results_dir, dataset, options):
  """Seconds of the candidates' seed-1 runs, and the teacher's when it is not one of them."""
  runs = [c.read_run(results_dir, dataset, 1) for c in options]
  teachers = {c.teacher() for c in options if c.teacher() is not None} - {c.plan for c in options}
  runs += [budget_search.read_run(results_dir, dataset, t, 1) for t in teachers]
  return round(sum(r['seconds'] for r in runs if r is not None), 1)


def front_rows(candidates, seeds, results_dir):
  """One row per (data set, budget): the chosen plan's shipped bytes and accuracies over the seeds done."""
  rows = []
  for (dataset, budget_bytes), space in candidates.items():
    options = budget_search.budget_candidates(results_dir, dataset, budget_bytes, space)
    choice = budget_search.chosen_plan(results_dir, dataset, options)
    if choice is None:
      continue
    runs = [r for r in (choice.read_run(results_dir, dataset, s) for s in seeds) if r is not None]
    test = 100 * np.array([r['test_accuracy'] for r in runs])
    target = TARGETS.get(dataset, {}).get(budget_bytes)
    deployable = max(r['deployable_bytes'] for r in runs)
    rows.append({
        'dataset': dataset, 'budget_bytes': budget_bytes, 'plan': _label(choice), 'deployable_bytes': deployable,
        'tflite_bytes': max(r['tflite_bytes'] for r in runs),
        'vocabulary_bytes': max(r['vocabulary_bytes'] for r in runs), 'seeds': f'{len(runs)}/{len(seeds)}',
        'dev_mean': round(100 * np.mean([r['dev_accuracy'] for r in runs]), 2), 'test_mean': round(test.mean(), 2),
        'test_std': round(test.std(ddof=1) if len(test) > 1 else 0.0, 2),
        'keras_test_mean': round(100 * np.mean([r['keras_test_accuracy'] for r in runs]), 2),
        'train_seconds': round(float(np.mean([r['seconds'] for r in runs])), 1),
        'search_seconds': _search_seconds(results_dir, dataset, options), 'target': target,
        'met': None if target is None or len(runs) < len(seeds) else bool(test.mean() >= target
                                                                             and deployable <= budget_bytes)})
  return pd.DataFrame(rows, columns=list(COLUMNS))


def write_front(frame, results_dir, reference=None, hashed=False):
  """results/budget_front.{csv,md} (or, of plans whose words are `hashed`, budget_front_hashed.{csv,md}) and
  results/budget_front.png, which draws both fronts there are; `reference` is `existing_rows`' frame, drawn too."""
  stem = os.path.join(results_dir, 'budget_front_hashed' if hashed else 'budget_front')
  io_utils.write_text_atomic(stem + '.csv', frame.to_csv(index=False))
  io_utils.write_text_atomic(stem + '.md', front_markdown(frame))
  fronts = {hashed: frame, not hashed: read_front(results_dir, not hashed)}
  from lmf_tf.harness import budget_figure  # pylint: disable=g-import-not-at-top  (matplotlib)
  png_path = budget_figure.draw(fronts[False], reference, os.path.join(results_dir, 'budget_front.png'),
                                hashed=fronts[True])
  return stem + '.csv', stem + '.md', png_path


def read_front(results_dir, hashed=False):
  """The front written before (`write_front`), or None."""
  path = os.path.join(results_dir, 'budget_front_hashed.csv' if hashed else 'budget_front.csv')
  return pd.read_csv(path) if os.path.exists(path) else None


def front_markdown(frame):
  """The front as a Markdown table (bytes with thousands separators, accuracy mean ± std over seeds)."""
  lines = ['| data set | budget | plan (chosen on dev) | deployable bytes (TFLite + vocabulary) | seeds | dev | test '
           '(LiteRT) | Keras test | target | met | s per run | search s |', '|' + '---|' * 12]
  for row in frame.itertuples():
    met = '' if row.met is None or row.met != row.met else ('yes' if row.met else '**no**')
    lines.append(f'| {row.dataset} | {row.budget_bytes:,} | {row.plan} | {row.deployable_bytes:,} ({row.tflite_bytes:,}'
                 f' + {row.vocabulary_bytes:,}) | {row.seeds} | {row.dev_mean:.2f} | {row.test_mean:.2f} ± '
                 f'{row.test_std:.2f} | {row.keras_test_mean:.2f} | {row.target if row.target else "-"} | {met} | '
                 f'{row.train_seconds:.0f} | {row.search_seconds:.0f} |')
  return '\n'.join(lines) + '\n'


def existing_rows(results_dir):
  """The LSTM rows of Tables 2-3 beyond the front, for the figure: the paper's recipe (online R), the recovery
  recipes, 8-bit; mean test accuracy over seeds against deployable bytes (`results/deployable_sizes.json`)."""
  sizes_path = os.path.join(results_dir, 'deployable_sizes.json')
  if not os.path.exists(sizes_path):
    return pd.DataFrame(columns=['dataset', 'group', 'name', 'deployable_bytes', 'test_mean'])
  sizes = io_utils.read_json(sizes_path, 'deployable sizes')
  rows = []
  for name, size in sizes.items():
    dataset, model = name.split('_')[:2]
    path = os.path.join(results_dir, name + '.json')
    if dataset not in DATASETS or model != 'lstm' or not os.path.exists(path):
      continue
    run = io_utils.read_json(path, 'run')
    group = ('8-bit' if run.get('method') == 'quant8' else
             'paper recipe' if run.get('method') == 'online' and run.get('recipe', 'paper') == 'paper' else
             'recovery recipes' if run.get('method') == 'online' else None)
    if group is not None:
      rows.append({'dataset': dataset, 'group': group, 'name': name.rsplit('_seed', 1)[0],
                   'deployable_bytes': size['deployable_bytes'], 'test_accuracy': 100 * run['test_accuracy']})
  frame = pd.DataFrame(rows)
  if frame.empty:
    return pd.DataFrame(columns=['dataset', 'group', 'name', 'deployable_bytes', 'test_mean'])
  return frame.groupby(['dataset', 'group', 'name'], as_index=False).agg(
      deployable_bytes=('deployable_bytes', 'max'), test_mean=('test_accuracy', 'mean'))
