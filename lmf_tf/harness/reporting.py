"""Tables from the per-run result JSONs in `results/` (built with pandas, never typed by hand)."""

import dataclasses
import glob
import os

import pandas as pd

from lmf_tf import io_utils, results
from lmf_tf.harness import runner
from lmf_tf.text.config import TrainConfig

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def result_row(result):
  """The numbers of one `results.ClassifierResult` that the tables use (accuracies in %)."""
  return {
      'test': 100 * result.test_accuracy, 'dev': 100 * result.dev_accuracy, 'rank': result.table_rank,
      'bytes': result.checkpoint_bytes['total_bytes'], 'data_bytes': result.checkpoint_bytes['data_bytes'],
      'params': result.params['model'], 'wall_seconds': result.wall_seconds, 'dev_curve': result.dev_curve,
      'swap_step': result.swap_step,
  }


def load_runs(results_dir, pattern='*.json'):
  """One row per run matching `pattern` that is uncompressed or compressed online with the default settings (Adam
  + CALR, the paper's recipe, no setting changed: a run name without `_h<hash>`): dataset, model, R, seed and the
  `result_row` numbers. Other runs (offline, quantized, Table 1 policies, recovery recipes, tuning variants) belong
  to their own tables and are left out here, so no row mixes settings.
  """
  rows = []
  for path in sorted(glob.glob(os.path.join(results_dir, pattern))):
    value = io_utils.read_json(path, 'results file')
    if not results.is_run_result(value) or 'test_accuracy' not in value:
      continue  # not a classifier run (a benchmark, a table)
    run = results.from_dict(value, path)
    config = TrainConfig(**{k: v for k, v in run.config.items() if k in TRAIN_FIELDS})
    default = ((config.optimizer, config.lr_schedule) == ('adam', 'calr') and not config.recipe
               and not config.non_default_settings())
    if run.method not in ('uncompressed', 'online') or not default:
      continue
    rows.append({'dataset': config.dataset, 'model': config.model, 'R': float(config.reduction or 0),
                 'seed': config.seed, 'status': 'done', **result_row(run),
                 'embedding_params': run.params['embedding'], 'file': path})
  return pd.DataFrame(rows)


def summarize(runs):
  """Mean ± std (sample std, ddof=1) over seeds per (dataset, model, R); relative degradation against R = 0."""
  if runs.empty:
    return runs
  table = aggregate(runs, ['dataset', 'model', 'R'])
  table['params'] = runs.groupby(['dataset', 'model', 'R'], sort=False).params.first().values
  table['embedding_params'] = runs.groupby(['dataset', 'model', 'R'], sort=False).embedding_params.first().values
  base = table[table.R == 0].set_index(['dataset', 'model'])['test_mean']
  table['relative_degradation_pct'] = [
      100 * (base[(d, m)] - t) / base[(d, m)] if (d, m) in base.index else float('nan')
      for d, m, t in zip(table.dataset, table.model, table.test_mean)]
  return table.sort_values(['dataset', 'model', 'R']).reset_index(drop=True)


def to_markdown(table):
  """A Markdown table of `summarize`'s output (accuracy as mean ± std over seeds)."""
  header = ('| dataset | model | R (%) | rank k | seeds | test acc. (%) | dev acc. (%) | rel. degradation (%) '
            '| params | embedding params | checkpoint bytes (.data+.index+.meta) | wall time / run (s) |')
  lines = [header, '|' + '---|' * 12]
  for row in table.itertuples():
    lines.append(
        f'| {row.dataset} | {row.model} | {row.R:g} | {cell(row.rank, ".0f")} '
        f'| {row.seeds.split("/")[0]} | {_accuracy(row)} | {_plus_minus(row.dev_mean, row.dev_std)} '
        f'| {cell(row.relative_degradation_pct, ".2f")} '
        f'| {row.params:,} | {row.embedding_params:,} | {row.bytes:,.0f} | {row.wall_seconds:.0f} |')
  return '\n'.join(lines) + '\n'


def write_summary(results_dir, pattern, output_prefix):
  """Builds the table and writes `<output_prefix>.md` and `.csv` atomically; returns the table."""
  table = summarize(load_runs(results_dir, pattern))
  if table.empty:
    raise FileNotFoundError(f'no result JSONs match {os.path.join(results_dir, pattern)}')
  with io_utils.atomic_path(output_prefix + '.csv') as tmp:
    table.to_csv(tmp, index=False, float_format='%.4f')
  io_utils.write_text_atomic(output_prefix + '.md', to_markdown(table))
  return table


METHOD_ORDER = ['uncompressed', 'quant16', 'quant8', 'keras_int8', 'offline', 'online', 'online+quant8']
POLICY_ORDER = ['adagrad', 'adam', 'clr', 'calr']


DEPLOYABLE_FILE = 'deployable_sizes.json'  # written by scripts/deployable_sizes.py


def plan_frame(results_dir, runs):
  """One row per planned run: its result if it is done, else status 'missing', 'failed' or 'impossible'."""
  deployable_path = os.path.join(results_dir, DEPLOYABLE_FILE)
  deployable = io_utils.read_json(deployable_path, 'deployable sizes') if os.path.exists(deployable_path) else {}
  rows = []
  for run in runs:
    row = {'name': run.name, 'table': run.table, 'dataset': run.dataset, 'model': run.model, 'method': run.method,
           'R': run.reduction, 'seed': run.seed, 'recipe': run.recipe,
           'deployable_bytes': deployable.get(run.name, {}).get('deployable_bytes', float('nan'))}
    path = os.path.join(results_dir, run.name + '.json')
    failure = runner.failure_path(results_dir, run.name)
    if os.path.exists(path):
      row.update(status='done', **result_row(results.load(path)))
    elif os.path.exists(failure):
      message = open(failure).read().strip()
      row.update(status='impossible' if runner.is_impossible(message) else 'failed', note=message)
    else:
      row.update(status='missing')
    rows.append(row)
  return pd.DataFrame(rows)


def aggregate(frame, keys):
  """Mean and sample std over seeds of each group; `seeds` = 'done/planned'; never fills in a missing run."""
  out = []
  for key, group in frame.groupby(keys, sort=False):
    done = group[group.status == 'done']
    row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
    statuses = sorted(set(group.status) - {'done'})
    row.update(seeds=f'{len(done)}/{len(group)}', status=', '.join(statuses) if statuses else 'done',
               test_mean=done.test.mean() if len(done) else float('nan'),
               test_std=done.test.std() if len(done) > 1 else float('nan'),
               dev_mean=done.dev.mean() if len(done) else float('nan'),
               dev_std=done.dev.std() if len(done) > 1 else float('nan'),
               rank=done['rank'].dropna().iloc[0] if len(done) and done['rank'].notna().any() else None,
               bytes=done.bytes.mean() if len(done) else float('nan'),
               data_bytes=done.data_bytes.mean() if len(done) else float('nan'),
               wall_seconds=done.wall_seconds.mean() if len(done) else float('nan'),
               deployable_bytes=(done.deployable_bytes.mean() if len(done) and 'deployable_bytes' in done
                                 else float('nan')))
    out.append(row)
  return pd.DataFrame(out)


def _plus_minus(mean, std, fmt='.2f'):
  """'mean ± std' in `fmt` (the std without a sign), or only the mean when std is NaN (one seed)."""
  return format(mean, fmt) + ('' if pd.isna(std) else ' ± ' + format(std, fmt.lstrip('+')))


def cell(value, fmt):
  """`value` in `fmt`, or '-' where there is none (NaN or None: no seed done, or not applicable)."""
  return '-' if value is None or pd.isna(value) else format(value, fmt)


def plus_minus_cell(mean, std, fmt='.2f'):
  """`_plus_minus`, or '-' where no seed is done (a NaN mean)."""
  return '-' if pd.isna(mean) else _plus_minus(mean, std, fmt)


def every_seed_done(table):
  """Boolean Series: the rows of an `aggregate` table whose planned seeds are all done (`seeds` 'n/n')."""
  return table.seeds.map(lambda s: s.split('/')[0] == s.split('/')[1]).astype(bool)


def _accuracy(row):
  return row.status if pd.isna(row.test_mean) else _plus_minus(row.test_mean, row.test_std)


def table1(frame):
  """Paper Table 1: test accuracy of each learning-rate policy on the uncompressed models."""
  rows = frame[frame.table.isin(['table1', 'both'])].copy()
  rows['policy'] = rows.method.replace({'uncompressed': 'calr'})
  table = aggregate(rows, ['model', 'policy'])
  table['order'] = table.policy.map(POLICY_ORDER.index)
  return table.sort_values(['model', 'order']).drop(columns='order').reset_index(drop=True)


def _method_order(method):
  """Where a method goes in Tables 2 and 3: the paper's in `METHOD_ORDER`, any other (beyond the paper) after."""
  return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def table2(frame):
  """Paper Table 2: size and test accuracy of each compression method and R; degradation against uncompressed."""
  rows = frame[frame.table.isin(['table2', 'both'])]
  table = aggregate(rows, ['model', 'method', 'R'])
  base = table[table.method == 'uncompressed'].set_index('model').test_mean
  table['relative_degradation_pct'] = [100 * (base.get(m, float('nan')) - t) / base.get(m, float('nan'))
                                       for m, t in zip(table.model, table.test_mean)]
  table['order'] = table.method.map(_method_order)
  return table.sort_values(['model', 'order', 'R']).drop(columns='order').reset_index(drop=True)


def table3(frame):
  """Table 3 (the paper's intent set, here CLINC150 and SNIPS): like Table 2, per data set."""
  rows = frame[frame.table == 'table3']
  table = aggregate(rows, ['dataset', 'model', 'method', 'R'])
  if table.empty:
    return table
  base = table[table.method == 'uncompressed'].set_index(['dataset', 'model']).test_mean
  table['relative_degradation_pct'] = [100 * (base.get((d, m), float('nan')) - t) / base.get((d, m), float('nan'))
                                       for d, m, t in zip(table.dataset, table.model, table.test_mean)]
  table['order'] = table.method.map(_method_order)
  return table.sort_values(['dataset', 'model', 'order', 'R']).drop(columns='order').reset_index(drop=True)


def table1_markdown(table):
  lines = ['| model | LR policy | test acc. (%) | dev acc. (%) | seeds |', '|---|---|---|---|---|']
  for row in table.itertuples():
    lines.append(f'| {row.model} | {row.policy} | {_accuracy(row)} | {cell(row.dev_mean, ".2f")} | {row.seeds} |')
  return '\n'.join(lines) + '\n'


def table2_markdown(table):
  """Markdown of `table2` or, with its `dataset` column first, `table3`."""
  with_dataset = 'dataset' in table.columns
  head = (['data set'] if with_dataset else []) + ['model', 'method', 'R (%)', 'rank k', 'checkpoint bytes',
                                                    'deployable bytes', 'test acc. (%)', 'rel. degradation (%)',
                                                    'seeds']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for row in table.itertuples():
    cells = ([row.dataset] if with_dataset else []) + [
        row.model, row.method, f'{row.R:g}', cell(row.rank, '.0f'), cell(row.bytes, ',.0f'),
        cell(row.deployable_bytes, ',.0f'), _accuracy(row), cell(row.relative_degradation_pct, '.2f'), row.seeds]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def write_paper_tables(results_dir, runs, extra=None):
  """Writes results/table{1,2,3}.{md,csv} from the planned runs' JSONs, and the rows of `extra` (a frame like
  `plan_frame`'s, e.g. the recovery recipes chosen on dev, listed after the paper's methods); returns the paths."""
  frame = plan_frame(results_dir, runs)
  if extra is not None and len(extra):
    frame = pd.concat([frame, extra], ignore_index=True)
  paths = []
  for name, table, markdown in (('table1', table1(frame), table1_markdown), ('table2', table2(frame), table2_markdown),
                                ('table3', table3(frame), table2_markdown)):
    for ext, text in (('md', markdown(table)), ('csv', table.to_csv(index=False, float_format='%.4f'))):
      path = os.path.join(results_dir, f'{name}.{ext}')
      io_utils.write_text_atomic(path, text)
      paths.append(path)
  return paths


def table4_markdown(table, batch_sizes=(1, 64)):
  """Markdown of `bench_inference.table4`: size, accuracy and time of each variant, relative to the first row."""
  head = ['model', 'variant', 'rank k', 'TFLite bytes (batch 1)', 'size vs float32', 'deployable bytes (+ vocabulary)',
          'test acc. (%)']
  head += [f'test set, batch {b} (s)' for b in batch_sizes] + [f'batch {batch_sizes[0]} time vs first row',
                                                                'p50 latency (ms)', 'p99 latency (ms)']
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for model, rows in table.items():
    base = rows[0]
    for row in rows:
      rank = '-' if row['embedding_rank'] is None else str(row['embedding_rank'])
      cells = [model, row['name'], rank, f'{row["tflite_bytes"]:,}',
               f'{100 * (row["tflite_bytes"] / base["tflite_bytes"] - 1):+.1f}%',
               f'{row["deployable_bytes"]:,}' if 'deployable_bytes' in row else '-',
               f'{100 * row["test_accuracy"]:.2f}']
      cells += [f'{row[f"seconds_batch{b}"]:.3f}' for b in batch_sizes]
      first = f'seconds_batch{batch_sizes[0]}'
      cells.append(f'{100 * (row[first] / base[first] - 1):+.0f}%')
      cells += [f'{row.get("latency_ms_p50", float("nan")):.3f}', f'{row.get("latency_ms_p99", float("nan")):.3f}']
      lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def variant_table(frame, settings):
  """Mean ± std over seeds of each variant (`recipe` column) of one model, the one with the best dev mean among
  those with every seed done marked `selected`; `settings` maps a variant to what it changes."""
  table = aggregate(frame, ['recipe'])
  table.insert(1, 'settings', [', '.join(f'{k}={v}' for k, v in settings.get(r, {}).items()) or 'default'
                               for r in table.recipe])
  complete = table[every_seed_done(table)]
  table['selected'] = table.index == (complete.dev_mean.idxmax() if len(complete) else -1)
  return table


def write_variant_table(results_dir, runs, name, settings):
  """Writes `<results_dir>/<name>.{csv,md}` (`variant_table`); returns the paths."""
  table = variant_table(plan_frame(results_dir, runs), settings)
  lines = ['| variant | settings | seeds | dev (%) | test (%) | chosen on dev |', '|---|---|---|---|---|---|']
  lines += [f'| {r.recipe} | {r.settings} | {r.seeds} | {plus_minus_cell(r.dev_mean, r.dev_std)} | {_accuracy(r)} | '
            f'{"**yes**" if r.selected else ""} |' for r in table.itertuples()]
  paths = [os.path.join(results_dir, f'{name}.csv'), os.path.join(results_dir, f'{name}.md')]
  io_utils.write_text_atomic(paths[0], table.drop(columns=['rank', 'bytes', 'data_bytes']).to_csv(
      index=False, float_format='%.4f'))
  io_utils.write_text_atomic(paths[1], '\n'.join(lines) + '\n')
  return paths
