"""Tables from the per-run result JSONs in `results/` (built with pandas, never typed by hand)."""

import glob
import json
import os

import pandas as pd

from lmf_tf import io_utils


def load_runs(results_dir, pattern='*.json'):
  """One row per run: dataset, model, R, seed, test/dev accuracy at the best dev epoch, rank, sizes, wall time."""
  rows = []
  for path in sorted(glob.glob(os.path.join(results_dir, pattern))):
    with open(path) as f:
      run = json.load(f)
    if 'config' not in run or 'best' not in run:
      continue  # not a training run (e.g. a benchmark)
    config = run['config']
    rows.append({
        'dataset': config['dataset'], 'model': config['model'], 'R': float(config['reduction'] or 0),
        'seed': config['seed'], 'rank': run['rank'], 'test_accuracy': 100 * run['test_accuracy'],
        'dev_accuracy': 100 * run['dev_accuracy'], 'best_epoch': run['best_epoch'], 'params': run['params']['model'],
        'embedding_params': run['params']['embedding'], 'checkpoint_bytes': run['checkpoint_bytes']['total_bytes'],
        'data_bytes': run['checkpoint_bytes']['data_bytes'], 'wall_seconds': run['wall_seconds'], 'file': path,
    })
  return pd.DataFrame(rows)


def summarize(runs):
  """Mean ± std (sample std, ddof=1) over seeds per (dataset, model, R); relative degradation against R = 0."""
  if runs.empty:
    return runs
  grouped = runs.groupby(['dataset', 'model', 'R'])
  table = grouped.agg(
      seeds=('seed', 'count'), rank=('rank', 'first'), test_mean=('test_accuracy', 'mean'),
      test_std=('test_accuracy', 'std'), dev_mean=('dev_accuracy', 'mean'), dev_std=('dev_accuracy', 'std'),
      params=('params', 'first'), embedding_params=('embedding_params', 'first'),
      checkpoint_bytes=('checkpoint_bytes', 'mean'), data_bytes=('data_bytes', 'mean'),
      wall_seconds=('wall_seconds', 'mean')).reset_index()
  base = table[table.R == 0].set_index(['dataset', 'model'])['test_mean']
  table['relative_degradation_pct'] = [
      100 * (base[(d, m)] - t) / base[(d, m)] if (d, m) in base.index else float('nan')
      for d, m, t in zip(table.dataset, table.model, table.test_mean)]
  return table


def to_markdown(table):
  """A Markdown table of `summarize`'s output (accuracy as mean ± std over seeds)."""
  header = ('| dataset | model | R (%) | rank k | seeds | test acc. (%) | dev acc. (%) | rel. degradation (%) '
            '| params | embedding params | checkpoint bytes (.data+.index+.meta) | wall time / run (s) |')
  lines = [header, '|' + '---|' * 12]
  for row in table.itertuples():
    lines.append(
        f'| {row.dataset} | {row.model} | {row.R:g} | {"-" if pd.isna(row.rank) else int(row.rank)} | {row.seeds} '
        f'| {row.test_mean:.2f} ± {0 if pd.isna(row.test_std) else row.test_std:.2f} '
        f'| {row.dev_mean:.2f} ± {0 if pd.isna(row.dev_std) else row.dev_std:.2f} '
        f'| {"-" if pd.isna(row.relative_degradation_pct) else f"{row.relative_degradation_pct:.2f}"} '
        f'| {row.params:,} | {row.embedding_params:,} | {row.checkpoint_bytes:,.0f} | {row.wall_seconds:.0f} |')
  return '\n'.join(lines) + '\n'


def write_summary(results_dir, pattern, output_prefix):
  """Builds the table and writes `<output_prefix>.md` and `.csv` atomically; returns the table."""
  table = summarize(load_runs(results_dir, pattern))
  if table.empty:
    raise FileNotFoundError(f'no result JSONs match {os.path.join(results_dir, pattern)}')
  with io_utils.atomic_path(output_prefix + '.csv') as tmp:
    table.to_csv(tmp, index=False, float_format='%.4f')
  with io_utils.atomic_path(output_prefix + '.md') as tmp:
    with open(tmp, 'w') as f:
      f.write(to_markdown(table))
  return table
