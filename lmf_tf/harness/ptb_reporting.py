"""The PTB compression table (Grachev et al. 2017, Table 1) from the result JSONs: run by run, then over seeds."""

import os

import pandas as pd

from lmf_tf import results
from lmf_tf.harness.reporting import _plus_minus, cell


PTB_METHOD_ORDER = ('baseline', 'lowrank', 'prune', 'quantize', 'tt')


def ptb_table(runs, results_dir, speeds=None):
  """The PTB table, run by run: one row per run of `plans.ptb_plan` that has a results JSON.

  Columns: seed, method, level, stored numbers, checkpoint bytes and how many times smaller than the same seed's
  baseline, valid and test perplexity, the test change against that baseline in percent, fine-tuning wall time
  and epoch kept, and words/s at inference from `speeds` (`bench_lm_speed.lm_inference_speed`, keyed by checkpoint
  dir). A run whose seed has no baseline result yet gets NaN for the two relative columns.
  """
  rows = []
  for run in runs:
    path = os.path.join(results_dir, run.name + '.json')
    if not os.path.exists(path):
      continue
    result = results.load(path)
    speed = (speeds or {}).get(result.checkpoint_dir, {}).get('words_per_second')
    rows.append({'run': run.name, 'seed': run.seed, 'method': run.method, 'level': result.level or run.model,
                 'params': result.params, 'checkpoint_bytes': result.checkpoint_bytes['total_bytes'],
                 'valid_perplexity': result.valid_perplexity, 'test_perplexity': result.test_perplexity,
                 'fine_tune_seconds': (result.fine_tune_seconds if result.fine_tune_seconds is not None
                                       else result.wall_seconds),
                 'chosen_epoch': result.chosen_epoch, 'words_per_second': speed,
                 'valid_perplexity_before_fine_tuning': result.valid_perplexity_before_fine_tuning})
  table = pd.DataFrame(rows)
  if table.empty:
    return table
  baselines = table[table.method == 'baseline'].set_index('seed')
  table['times_smaller'] = table.seed.map(baselines.checkpoint_bytes) / table.checkpoint_bytes
  table['test_change_pct'] = 100 * (table.test_perplexity / table.seed.map(baselines.test_perplexity) - 1)
  # Methods in PTB_METHOD_ORDER, each method's levels from the largest (mean over seeds) down, then by seed.
  table['order'] = table.method.map(PTB_METHOD_ORDER.index)
  table['level_bytes'] = table.groupby('level').checkpoint_bytes.transform('mean')
  return table.sort_values(['order', 'level_bytes', 'level', 'seed'], ascending=[True, False, True, True]).drop(
      columns=['order', 'level_bytes']).reset_index(drop=True)


def ptb_summary(table, runs):
  """The PTB table over seeds: one row per (method, level) of `ptb_table`'s output, in its order.

  Means over the seeds done, and sample stds (ddof=1, NaN for one seed) of the valid and test perplexity and of the
  test change against each seed's own baseline; `seeds` = 'done/planned' from `runs`. A missing run is never
  filled in: it only lowers the done count.
  """
  if table.empty:
    return table
  planned_seeds = len({run.seed for run in runs})
  rows = []
  for (method, level), group in table.groupby(['method', 'level'], sort=False):
    rows.append({
        'method': method, 'level': level, 'seeds': f'{len(group)}/{planned_seeds}', 'params': group.params.iloc[0],
        'checkpoint_bytes': group.checkpoint_bytes.mean(), 'times_smaller': group.times_smaller.mean(),
        'valid_mean': group.valid_perplexity.mean(), 'valid_std': group.valid_perplexity.std(),
        'valid_before_fine_tuning_mean': group.valid_perplexity_before_fine_tuning.astype(float).mean(),
        'test_mean': group.test_perplexity.mean(), 'test_std': group.test_perplexity.std(),
        'test_change_mean': group.test_change_pct.mean(), 'test_change_std': group.test_change_pct.std(),
        'fine_tune_seconds': group.fine_tune_seconds.mean(),
        'words_per_second': group.words_per_second.astype(float).mean()})
  return pd.DataFrame(rows)


def ptb_table_markdown(summary):
  """Markdown of `ptb_summary`: perplexities and the test change as mean ± std over the seeds done."""
  lines = ['| method | level | seeds | stored numbers | checkpoint (MB) | x smaller | valid ppl (before FT) | '
           'test ppl | test vs baseline | train time | words/s (batch 1) |', '|' + '---|' * 11]
  for row in summary.itertuples():
    before = '' if pd.isna(row.valid_before_fine_tuning_mean) else f' ({row.valid_before_fine_tuning_mean:.1f})'
    speed = cell(row.words_per_second, ',.0f')
    minutes = '-' if pd.isna(row.fine_tune_seconds) else f'{row.fine_tune_seconds / 60:.0f} min'
    change = '-' if row.method == 'baseline' else _plus_minus(row.test_change_mean, row.test_change_std, '+.1f') + '%'
    lines.append(f'| {row.method} | {row.level} | {row.seeds} | {row.params:,} | {row.checkpoint_bytes / 1e6:.2f} | '
                 f'{row.times_smaller:.2f} | {_plus_minus(row.valid_mean, row.valid_std, ".2f")}{before} | '
                 f'{_plus_minus(row.test_mean, row.test_std, ".2f")} | {change} | {minutes} | {speed} |')
  return '\n'.join(lines) + '\n'
