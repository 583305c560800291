"""The recovery ablation's table and figure from the result JSONs of `plans.recovery_plan`.

One row per (data set, model, R, recipe): seeds done, dev and test accuracy over the seeds, the relative loss
against the same data set and model uncompressed (its 3-seed mean), the checkpoint size, and `selected`: the
recipe with the best dev mean among those with every seed done, one per (data set, model, R). Test accuracy plays
no part in the choice. Rows of online R = 90 then 8-bit are listed with their recipe and never selected.
"""

import os

import pandas as pd

from lmf_tf import io_utils
from lmf_tf.harness import reporting

COLUMNS = ['dataset', 'model', 'R', 'rank', 'recipe', 'seeds', 'dev_mean', 'test_mean', 'test_std',
           'rel_degradation_pct', 'checkpoint_bytes', 'selected']


def recovery_table(frame):
  """The table above from `reporting.plan_frame` of the recovery plan (which has a `recipe` column)."""
  base = frame[frame.method == 'uncompressed']
  base_test = reporting.aggregate(base, ['dataset', 'model']).set_index(['dataset', 'model']).test_mean
  rows = frame[frame.method.isin(['online', 'online+quant8'])].copy()
  rows['recipe'] = [r if m == 'online' else f'{r} + 8-bit' for r, m in zip(rows.recipe, rows.method)]
  table = reporting.aggregate(rows, ['dataset', 'model', 'R', 'recipe'])
  table['checkpoint_bytes'] = table.pop('bytes')
  table['rel_degradation_pct'] = [
      100 * (base_test.get((d, m), float('nan')) - t) / base_test.get((d, m), float('nan'))
      for d, m, t in zip(table.dataset, table.model, table.test_mean)]
  table['selected'] = False
  complete = table[reporting.every_seed_done(table) & ~table.recipe.str.endswith('8-bit')]
  for _, group in complete.groupby(['dataset', 'model', 'R']):
    table.loc[group.dev_mean.idxmax(), 'selected'] = True
  return table[COLUMNS].reset_index(drop=True)


def chosen_recipe_frame(results_dir, runs):
  """The runs of each recipe chosen on dev (`recovery_table`), when it is not the paper's, as rows for the paper
  tables: method `online, <recipe> (beyond the paper)` (and `online, <recipe> + 8-bit (beyond the paper)`), in
  Table 2 for SST-2 and Table 3 for the intent sets (`reporting.write_paper_tables(..., extra=...)`)."""
  frame = reporting.plan_frame(results_dir, runs)
  table = recovery_table(frame)
  rows = []
  for chosen in table[table.selected & (table.recipe != 'paper')].itertuples():
    match = frame[(frame.dataset == chosen.dataset) & (frame.model == chosen.model) & (frame.R == chosen.R)
                  & (frame.recipe == chosen.recipe) & frame.method.isin(['online', 'online+quant8'])].copy()
    match['method'] = [f'online, {chosen.recipe}{" + 8-bit" if m == "online+quant8" else ""} (beyond the paper)'
                       for m in match.method]
    match['table'] = 'table2' if chosen.dataset == 'sst2' else 'table3'
    rows.append(match)
  return pd.concat(rows, ignore_index=True) if rows else frame.iloc[:0]


def to_markdown(table, uncompressed=None):
  """Markdown of `recovery_table`: accuracy in %, mean ± sample std of test over seeds, the chosen rows bold."""
  lines = ['| data set | model | R (%) | rank k | recipe | seeds | dev mean (%) | test (%) | rel. loss vs '
           'uncompressed (%) | checkpoint bytes | chosen on dev |', '|' + '---|' * 11]
  cell, plus_minus = reporting.cell, reporting.plus_minus_cell  # '-' where no seed is done yet
  for row in table.itertuples():
    test = plus_minus(row.test_mean, row.test_std)
    mark = '**yes**' if row.selected else ''
    lines.append(f'| {row.dataset} | {row.model} | {row.R:g} | {cell(row.rank, ".0f")} | {row.recipe} | '
                 f'{row.seeds} | {cell(row.dev_mean, ".2f")} | {test} | {cell(row.rel_degradation_pct, ".2f")} | '
                 f'{cell(row.checkpoint_bytes, ",.0f")} | {mark} |')
  text = '\n'.join(lines) + '\n'
  if uncompressed is not None and not uncompressed.empty:
    text += '\nUncompressed, the reference of the relative loss (3-seed means):\n\n'
    text += '\n'.join(f'- {r.dataset} {r.model}: test {plus_minus(r.test_mean, r.test_std)}, dev '
                      f'{r.dev_mean:.2f} ({r.seeds} seeds)' for r in uncompressed.itertuples()) + '\n'
  return text


def write_recovery(results_dir, runs):
  """Writes `<results_dir>/recovery.{csv,md}` and the figure; returns the paths."""
  from lmf_tf.harness import figures  # pylint: disable=g-import-not-at-top  (matplotlib only when writing)
  frame = reporting.plan_frame(results_dir, runs)
  table = recovery_table(frame)
  uncompressed = reporting.aggregate(frame[frame.method == 'uncompressed'], ['dataset', 'model'])
  paths = [os.path.join(results_dir, 'recovery.csv'), os.path.join(results_dir, 'recovery.md')]
  io_utils.write_text_atomic(paths[0], table.to_csv(index=False, float_format='%.4f'))
  io_utils.write_text_atomic(paths[1], to_markdown(table, uncompressed))
  paths.append(figures.recovery_curves(frame, os.path.join(results_dir, 'figure_recovery_sst2_lstm_R90.png')))
  return paths
