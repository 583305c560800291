"""The paper's figures as PNG files: Figure 2 (CLR and CALR against the step), Figure 3 (dev accuracy after the
online swap), and accuracy against checkpoint size for every method."""

import os

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import pandas as pd  # pylint: disable=g-import-not-at-top

from lmf_tf import io_utils  # pylint: disable=g-import-not-at-top
from lmf_tf.harness import plans, reporting  # pylint: disable=g-import-not-at-top
from lmf_tf.text.config import MODEL_DEFAULTS, TrainConfig  # pylint: disable=g-import-not-at-top


def _save(fig, path):
  with io_utils.atomic_path(path) as tmp:
    fig.savefig(tmp, format='png', dpi=120, bbox_inches='tight')
  plt.close(fig)
  return path


def figure2(path, steps=12_000):
  """CLR and CALR with the LSTM's default bounds (paper Figure 2)."""
  from lmf_tf.compression import schedules  # pylint: disable=g-import-not-at-top  (the only figure that needs TF)

  d = TrainConfig()
  upper = MODEL_DEFAULTS['lstm']['lr_upper']
  x = np.arange(0, steps, 10)
  clr = schedules.CyclicalLearningRate(d.lr_lower, upper, d.lr_step_size)
  calr = schedules.CyclicallyAnnealedLearningRate(d.lr_lower, upper, d.lr_step_size, d.lr_decay)
  fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
  for ax, scale in zip(axes, ('linear', 'log')):
    ax.plot(x, [float(clr(s)) for s in x], label='CLR (triangular)', lw=1)
    ax.plot(x, [float(calr(s)) for s in x], label=f'CALR (peak x{d.lr_decay} per cycle, reset at the lower bound)',
            lw=1)
    ax.set_yscale(scale)
    ax.set_ylabel(f'learning rate ({scale})')
  axes[1].set_xlabel('step')
  axes[0].set_title(f'Figure 2: learning-rate policies (lower {d.lr_lower:g}, upper {upper:g}, half-cycle '
                    f'{d.lr_step_size} steps)')
  axes[0].legend(fontsize=8)
  return _save(fig, path)


def _after_swap(dev_curve, swap_step):
  """[(steps after the (first) swap, dev accuracy in %)] of the points of a run's dev curve ([step, accuracy,
  rank]) recorded on the compressed model (a rank)."""
  return [(s - swap_step, 100 * a) for s, a, rank in dev_curve if rank is not None]


def figure3(frame, model, path):
  """Dev accuracy against mini-batches after the online swap, one curve per R (first seed with a curve)."""
  fig, ax = plt.subplots(figsize=(8, 4.5))
  online = frame[(frame.model == model) & (frame.method == 'online') & (frame.status == 'done')]
  drawn = False
  for r in sorted(online.R.unique()):
    runs = online[(online.R == r) & online.dev_curve.notna()]
    if runs.empty:
      continue
    run = runs.sort_values('seed').iloc[0]
    points = _after_swap(run.dev_curve, run.swap_step)
    if points:
      ax.plot(*zip(*points), label=f'online R={r:g} (k={int(run["rank"])})', lw=1)
      drawn = True
  for method, style in (('uncompressed', '-'), ('quant16', '--'), ('quant8', ':')):
    done = frame[(frame.model == model) & (frame.method == method) & (frame.status == 'done')]
    if len(done):
      ax.axhline(done.dev.mean(), color='k', ls=style, lw=0.8, label=f'{method} (dev, mean of {len(done)})')
  ax.set_xlabel('mini-batches after the swap')
  ax.set_ylabel('dev accuracy (%)')
  ax.set_title(f'Figure 3: recovery after online compression, SST-2 {model}')
  if drawn:
    ax.legend(fontsize=8)
  return _save(fig, path)


def recovery_curve_data(frame, dataset='sst2', model='lstm', reduction=90, every=200):
  """{recipe: (steps after the swap, mean dev accuracy in %, seeds)} of the online runs of `frame`: each run's dev
  curve from its (first) swap on, interpolated onto the steps 0, `every`, 2 `every`, ... after it that every seed of
  the recipe covers (curves are recorded at multiples of the evaluation interval, the swap need not be one)."""
  runs = frame[(frame.dataset == dataset) & (frame.model == model) & (frame.R == reduction) &
               (frame.method == 'online') & (frame.status == 'done')]
  data = {}
  for recipe, group in runs.groupby('recipe', sort=False):
    curves = []
    for run in group.itertuples():
      if isinstance(run.dev_curve, list) and run.swap_step is not None and not pd.isna(run.swap_step):
        points = _after_swap(run.dev_curve, run.swap_step)
        if len(points) >= 2:
          curves.append(np.array(points))
    if not curves:
      continue
    first, last = max(c[0, 0] for c in curves), min(c[-1, 0] for c in curves)
    steps = np.arange(np.ceil(first / every) * every, last + 1, every)
    if len(steps):
      data[recipe] = (steps, np.mean([np.interp(steps, c[:, 0], c[:, 1]) for c in curves], axis=0), len(curves))
  return data


def recovery_curves(frame, path, dataset='sst2', model='lstm', reduction=90, every=200):
  """Dev accuracy after the (first) swap for each recovery recipe, mean over the seeds done
  (`recovery_curve_data`), like Figure 3, with the uncompressed model's dev accuracy as a line."""
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for recipe, (steps, mean, seeds) in recovery_curve_data(frame, dataset, model, reduction, every).items():
    ax.plot(steps, mean, lw=1.6 if recipe == 'paper' else 1, ls='--' if recipe == 'paper' else '-',
            color='k' if recipe == 'paper' else None, label=f'{recipe} ({seeds} seeds)')
  base = frame[(frame.dataset == dataset) & (frame.model == model) & (frame.method == 'uncompressed') &
               (frame.status == 'done')]
  if len(base):
    ax.axhline(base.dev.mean(), color='k', lw=0.8, ls=':',  # the frame's accuracies are in %
               label=f'uncompressed (best-epoch dev, mean of {len(base)})')
  ax.set_xlabel('mini-batches after the swap (the first, for gradual)')
  ax.set_ylabel('dev accuracy (%)')
  ax.set_title(f'Recovery after online compression: {dataset} {model}, R = {reduction:g}, mean over seeds')
  ax.legend(fontsize=7, ncol=2)
  return _save(fig, path)


def size_accuracy(frame, model, path):
  """Test accuracy (mean ± std over seeds) against checkpoint bytes, a curve per method."""
  table = reporting.table2(frame)
  table = table[(table.model == model) & table.test_mean.notna()]
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for method in reporting.METHOD_ORDER:
    rows = table[table.method == method].sort_values('bytes')
    if len(rows):
      ax.errorbar(rows.bytes, rows.test_mean, yerr=rows.test_std.fillna(0), marker='o', ms=4, capsize=2,
                  label=method, lw=1)
  ax.set_xscale('log')
  ax.set_xlabel('checkpoint bytes (.data + .index + .meta)')
  ax.set_ylabel('test accuracy (%)')
  ax.set_title(f'SST-2 {model}: accuracy against size')
  ax.legend(fontsize=8)
  return _save(fig, path)


def write_all(results_dir, runs):
  """Figures 2-3 and the size-accuracy plots of SST-2 (Tables 1-2) from the planned runs' JSONs."""
  runs = [r for r in runs if r.table != 'table3']
  frame = reporting.plan_frame(results_dir, runs)
  # Figure 3 takes the recovery curve of any seed that has one, even outside a quick plan's single seed.
  models = tuple(sorted(frame.model.unique()))
  every_seed = reporting.plan_frame(results_dir, [r for r in plans.plan(False, models, results_dir=results_dir)
                                                  if r.method == 'online' and r.table != 'table3'])
  curves = pd.concat([frame[frame.method != 'online'], every_seed], ignore_index=True)
  paths = [figure2(os.path.join(results_dir, 'figure2_learning_rates.png'))]
  for model in models:
    paths.append(figure3(curves, model, os.path.join(results_dir, f'figure3_{model}.png')))
    paths.append(size_accuracy(frame, model, os.path.join(results_dir, f'size_accuracy_{model}.png')))
  return paths
