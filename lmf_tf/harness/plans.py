"""The experiments behind the paper's Tables 1-2 and Figures 2-3 (Acharya et al. 2019, §5), as a plan of runs.

Each `Run` is one independent process (`scripts/train.py` or `scripts/quantize.py`) that writes
`results/<name>.json`. `plan()` lists them; `runner.run_all` runs the missing ones, several at a time. Plans
import no TensorFlow.
"""

import dataclasses
import os
import sys

from lmf_tf.harness.runner import Run
from lmf_tf.lm.config import LmCompressionConfig, get_lm_config
from lmf_tf.text.config import RECOVERY_OPTIONS, QuantizeConfig, TrainConfig, derived_run_name

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE2_REDUCTIONS = (10, 30, 50, 70, 90, 95, 99)  # the paper's R, and beyond it, 95 and 99
QUICK_REDUCTIONS = (50, 90)
# Table 3: the paper's intent set is proprietary; CLINC150 and SNIPS stand in for it.
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


def _train_run(table, model, method, seed, reduction=0, workdir='checkpoints', results_dir='results', dataset='sst2',
               **settings):
  """A run of `scripts/train.py` with the `TrainConfig` of these settings."""
  config = TrainConfig(dataset=dataset, model=model, seed=seed, reduction=reduction or None,
                       offline=method == 'offline', workdir=workdir, results_dir=results_dir, **settings)
  return Run(config.run_name, table, model, method, float(reduction), seed, dataset=dataset, config=config,
             script='train.py', resume_state=os.path.join(workdir, config.run_name, 'train', 'state.json'),
             recipe=config.recipe or 'paper')


STACKED_REDUCTION = 90  # online LMF, then 8-bit quantization of its checkpoint (beyond the paper)


def _quantize_run(source, bits=None, keras_int8=False, results_dir='results', workdir='checkpoints'):
  """A run of `scripts/quantize.py` on the best checkpoint of the training run `source`."""
  tag = 'kerasint8' if keras_int8 else f'q{bits}'
  config = QuantizeConfig(checkpoint_dir=os.path.join(workdir, source.name, 'best'), results_dir=results_dir,
                          method='keras_int8' if keras_int8 else 'fixed_point', bits=bits or 8)
  method = 'keras_int8' if keras_int8 else f'quant{bits}'
  if source.method == 'online':
    method = f'online+{method}'
  table = source.table if source.table in ('table3', 'recovery') else 'table2'
  return Run(derived_run_name(source.name, tag), table, source.model, method, source.reduction, source.seed,
             requires=source.name, dataset=source.dataset, config=config, script='quantize.py', recipe=source.recipe)


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
      for policy, settings in LR_POLICIES.items():
        if policy != 'calr':  # CALR is the default: the uncompressed run above
          runs.append(dataclasses.replace(_train_run('table1', model, policy, seed, **where, **settings),
                                          method=policy))
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


TABLE4_REDUCTIONS = (0, 50, 75, 90)


def table4_plan(workdir='checkpoints', results_dir='runs/table4', seed=1, models=('lstm', 'dan')):
  """The training runs whose checkpoints Table 4 times (`bench_inference.table4_variants`): SST-2, seed 1, R in
  `TABLE4_REDUCTIONS`. They are done only when their checkpoint is on disk: a fresh clone has the results of
  Tables 1-3 but no checkpoints, so it trains them again, into `results_dir`, apart from the committed results."""
  where = dict(workdir=os.path.abspath(workdir), results_dir=os.path.abspath(results_dir))
  return [dataclasses.replace(_train_run('table4', model, 'online' if r else 'uncompressed', seed, r, **where),
                              needs_checkpoint=True) for model in models for r in TABLE4_REDUCTIONS]


# The recovery ablation (beyond the paper): where online compression loses most, the paper's recipe
# against each recovery option and the combinations that make sense, 3 seeds. The recipe is chosen on dev.
RECOVERY_SETTINGS = (  # (dataset, model, R)
    ('sst2', 'lstm', 90), ('sst2', 'lstm', 95), ('clinc150', 'lstm', 90), ('sst2', 'dan', 99))
RECOVERY_RECIPES = ('paper', 'restart', 'lrconst', 'kd', 'gradual', 'devpeak', 'restart-kd', 'restart-gradual',
                    'restart-devpeak', 'lrconst-gradual', 'restart-kd-gradual-devpeak')
RECOVERY_EVAL_EVERY = 200  # steps between dev evaluations for the recovery figure (SST-2 LSTM R = 90 only)
# DAN-RAND at R = 99 loses 0.16% with the paper's recipe (Table 2): there is little to recover, so only the single
# options are measured there, not their combinations.
SINGLE_OPTIONS_ONLY = {('sst2', 'dan', 99)}
# A gradual stage lasts about half an epoch: 500 steps on SST-2 (1,056 an epoch, `RECOVERY_OPTIONS`), 120 on
# CLINC150 (238 an epoch: 500 would put the last swap after the end of training).
GRADUAL_EVERY_STEPS = {'clinc150': 120}


def recipe_settings(recipe, dataset='sst2'):
  """The `TrainConfig` settings of a recipe named by its options joined with '-' ('paper': none) on `dataset`."""
  settings = {}
  for option in ([] if recipe == 'paper' else recipe.split('-')):
    settings.update(RECOVERY_OPTIONS[option])
  if 'gradual_every_steps' in settings and dataset in GRADUAL_EVERY_STEPS:
    settings['gradual_every_steps'] = GRADUAL_EVERY_STEPS[dataset]
  return settings


def recovery_setting_name(dataset, model, reduction):
  """'clinc150_lstm_R90': how `scripts/recovery.py --settings` names an entry of `RECOVERY_SETTINGS`."""
  return f'{dataset}_{model}_R{reduction:g}'


def recovery_plan(seeds=(1, 2, 3), recipes=RECOVERY_RECIPES, settings=RECOVERY_SETTINGS, workdir='checkpoints',
                  results_dir='results'):
  """The ablation's runs: each (data set, model, R) of `settings` with each recipe and seed (the single options only
  where `SINGLE_OPTIONS_ONLY` says), the uncompressed models they are measured against, and online R = 90 then
  8-bit for every SST-2 LSTM recipe. The paper-recipe runs are those of Tables 2 and 3 (same names, same files)."""
  where = dict(workdir=os.path.abspath(workdir), results_dir=os.path.abspath(results_dir))
  runs, bases = [], set()
  for dataset, model, reduction in settings:
    for seed in seeds:
      if (dataset, model, seed) not in bases:
        bases.add((dataset, model, seed))
        runs.append(_train_run('recovery', model, 'uncompressed', seed, dataset=dataset, **where))
      for recipe in recipes:
        if (dataset, model, reduction) in SINGLE_OPTIONS_ONLY and '-' in recipe:
          continue
        figure = (dataset, model, reduction) == ('sst2', 'lstm', 90)
        curve = dict(eval_every_steps=RECOVERY_EVAL_EVERY) if figure else {}
        if recipe == 'paper' and dataset == 'sst2':
          curve = dict(eval_every_steps=FIGURE3_EVAL_EVERY)  # as in Table 2's plan: the same run
        run = _train_run('recovery', model, 'online', seed, reduction, dataset=dataset, **where,
                         **recipe_settings(recipe, dataset), **curve)
        runs.append(run)
        if (dataset, model, reduction) == ('sst2', 'lstm', STACKED_REDUCTION):
          runs.append(_quantize_run(run, bits=8, **where))
  return runs


# DAN-RAND's uncompressed accuracy: Iyyer et al. (2015) train DAN with AdaGrad, word dropout 0.3 and
# mini-batches of 32... Each variant is chosen on dev over 3 seeds.
DAN_VARIANTS = {
    'default': {},
    'batch32': dict(batch_size=32),
    'adagrad': dict(optimizer='adagrad', lr_schedule='constant', learning_rate=0.005),
    'adagrad-batch32': dict(optimizer='adagrad', lr_schedule='constant', learning_rate=0.005, batch_size=32),
    'sentences': dict(train_level='sentence', epochs=20),
    'epochs3': dict(epochs=3),
    'l2_1e-5': dict(l2=1e-5),
    'wd0.5': dict(word_dropout=0.5),
    'batch32-l2_1e-5': dict(batch_size=32, l2=1e-5),  # the two best on dev of the seed-1 screening, together
}


def dan_plan(seeds=(1, 2, 3), variants=DAN_VARIANTS, workdir='checkpoints', results_dir='results'):
  """Uncompressed DAN-RAND on SST-2 under each of `variants` (settings that differ from the default)."""
  where = dict(workdir=os.path.abspath(workdir), results_dir=os.path.abspath(results_dir))
  return [dataclasses.replace(_train_run('dan', 'dan', 'uncompressed', seed, **where, **settings), recipe=name)
          for name, settings in variants.items() for seed in seeds]


# The PTB table (Grachev et al. 2017, Table 1): the `small` baseline, then each method at two or three
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
  workdir, results_dir = os.path.abspath(workdir), os.path.abspath(results_dir)
  runs = []
  for seed in seeds:
    lm_config = get_lm_config(config, seed=seed, max_steps=lm_flags.get('max_steps'))
    baseline = Run(lm_config.run_name, 'ptb', config, 'baseline', 0.0, seed,
                   (sys.executable, os.path.join(REPO_ROOT, 'scripts', 'train_lm.py'), f'--config={config}',
                    f'--seed={seed}', f'--workdir={workdir}', f'--results_dir={results_dir}',
                    *[f'--{k}={v}' for k, v in lm_flags.items()]), dataset='ptb')
    runs.append(baseline)
    baseline_dir = os.path.join(workdir, baseline.name, 'final')
    for method, settings in levels:
      compress = LmCompressionConfig(baseline_dir=baseline_dir, method=method, seed=seed, **settings,
                                                    **lm_flags).validate()
      argv = [sys.executable, os.path.join(REPO_ROOT, 'scripts', 'compress_lm.py'), f'--baseline_dir={baseline_dir}',
              f'--method={method}', f'--seed={seed}', f'--workdir={workdir}', f'--results_dir={results_dir}']
      argv += [f'--{k}={",".join(v) if isinstance(v, tuple) else v}' for k, v in {**settings, **lm_flags}.items()]
      level = settings.get('reduction') or settings.get('sparsity') or settings.get('bits') or settings['tt_rank']
      runs.append(Run(compress.run_name(baseline.name), 'ptb', config, method, float(level), seed, tuple(argv),
                      requires=baseline.name, dataset='ptb'))
  return runs


# Frequency-aware ranks against one rank (`make frequency-ranks`, results/frequency_ranks.md): the LSTM at R = 90,
# each (data set, settings) with 3 seeds; with one rank, CLINC150's recovery recipe chosen on dev (`lrconst`) too.
FREQUENCY_VARIANTS = (
    ('clinc150', {'frequency_blocks': 4}), ('clinc150', {}),
    ('clinc150', {'frequency_blocks': 4, **RECOVERY_OPTIONS['lrconst']}),
    ('sst2', {'frequency_blocks': 4}), ('sst2', {}),
)


def frequency_plan(seeds=(1, 2, 3), workdir='checkpoints/frequency_ranks', results_dir='results/frequency_ranks'):
  """Each variant's training runs, and after each the evaluation of its int8 TFLite file by LiteRT
  (`scripts/evaluate.py --tflite=int8`, written as `<run>_int8.json`)."""
  workdir, results_dir = os.path.abspath(workdir), os.path.abspath(results_dir)
  runs = []
  for dataset, settings in FREQUENCY_VARIANTS:
    for seed in seeds:
      run = _train_run('frequency', 'lstm', 'online', seed, 90, workdir=workdir, results_dir=results_dir,
                       dataset=dataset, **settings)
      shipped = f'{run.name}_int8'
      argv = (sys.executable, os.path.join(REPO_ROOT, 'scripts', 'evaluate.py'), '--tflite=int8',
              f'--checkpoint_dir={os.path.join(workdir, run.name, "best")}',
              f'--output={os.path.join(results_dir, shipped + ".json")}')
      runs += [run, Run(shipped, 'frequency', 'lstm', 'shipped_int8', 90.0, seed, argv=argv, requires=run.name,
                        dataset=dataset, recipe=run.recipe)]
  return runs
