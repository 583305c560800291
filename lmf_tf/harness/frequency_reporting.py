"""The table of frequency-aware ranks against one rank at the same R (`results/frequency_ranks.md`): each run's
results JSON and, beside it, `<run>_int8.json` (`scripts/evaluate.py --tflite=int8`: the shipped file by LiteRT)."""

import glob
import os

import pandas as pd

from lmf_tf import io_utils, results
from lmf_tf.harness.reporting import plus_minus_cell


def frequency_frame(results_dir):
  """One row per run of `results_dir`: data set, variant, seed, dev and test (Keras), the int8 file's test accuracy
  by LiteRT and its deployable bytes (NaN until evaluated), the embedding's numbers and the checkpoint's bytes."""
  rows = []
  for path in sorted(glob.glob(os.path.join(results_dir, '*.json'))):
    if path.endswith('_int8.json'):
      continue
    run = results.load(path)
    shipped_path = path[:-len('.json')] + '_int8.json'
    shipped = io_utils.read_json(shipped_path, 'shipped evaluation') if os.path.exists(shipped_path) else {}
    blocks = run.config.get('frequency_blocks')
    rows.append({
        'dataset': run.config['dataset'], 'model': run.config['model'], 'R': run.config['reduction'],
        'variant': f'{blocks} frequency blocks' if blocks else f'one rank (k = {run.rank})', 'recipe': run.recipe,
        'seed': run.config['seed'],
        'dev': 100 * run.dev_accuracy, 'test': 100 * run.test_accuracy,
        'shipped_test': 100 * shipped['test_accuracy'] if shipped else float('nan'),
        'deployable_bytes': shipped.get('deployable_bytes', float('nan')),
        'embedding_params': run.params['embedding'], 'checkpoint_bytes': run.checkpoint_bytes['total_bytes'],
        'block_ranks': str((run.compression or {}).get('block_ranks') or '')})
  return pd.DataFrame(rows)


def frequency_table(frame):
  """Mean and sample std over seeds per (data set, model, R, variant, recovery recipe)."""
  keys = ['dataset', 'model', 'R', 'variant', 'recipe']
  grouped = frame.groupby(keys, sort=True)
  table = grouped[['dev', 'test', 'shipped_test']].agg(['mean', 'std'])
  table.columns = [f'{a}_{b}' for a, b in table.columns]
  others = grouped.agg(seeds=('seed', 'count'), embedding_params=('embedding_params', 'mean'),
                       checkpoint_bytes=('checkpoint_bytes', 'mean'), deployable_bytes=('deployable_bytes', 'mean'),
                       block_ranks=('block_ranks', lambda r: ' / '.join(sorted(set(r)))))
  return table.join(others).reset_index()


def to_markdown(table):
  lines = ['| data set | model | R | embedding | recovery recipe | seeds | dev (%) | test, Keras (%) '
           '| test, int8 file by LiteRT (%) '
           '| embedding numbers | checkpoint bytes | deployable bytes (int8 TFLite + vocabulary) | block ranks |',
           '|' + '---|' * 13]
  for row in table.itertuples():
    lines.append(f'| {row.dataset} | {row.model} | {row.R:g} | {row.variant} | {row.recipe} | {row.seeds} '
                 f'| {plus_minus_cell(row.dev_mean, row.dev_std)} | {plus_minus_cell(row.test_mean, row.test_std)} '
                 f'| {plus_minus_cell(row.shipped_test_mean, row.shipped_test_std)} | {row.embedding_params:,.0f} '
                 f'| {row.checkpoint_bytes:,.0f} | {row.deployable_bytes:,.0f} | {row.block_ranks or "-"} |')
  return '\n'.join(lines) + '\n'


def write_frequency_table(results_dir, output):
  """Writes `output` (Markdown) atomically from the runs of `results_dir`; returns the table."""
  frame = frequency_frame(results_dir)
  if frame.empty:
    raise FileNotFoundError(f'no run results in {results_dir}')
  table = frequency_table(frame)
  io_utils.write_text_atomic(output, to_markdown(table))
  return table
