"""The recovery ablation (beyond the paper): each recovery recipe where online compression loses most,
3 seeds; then results/recovery.{csv,md} and the recovery figure. Finished runs are skipped.

  python scripts/recovery.py --jobs=2        # every missing run, two at a time (about 3 hours here)
  python scripts/recovery.py --dry_run       # list the runs and which are done
  python scripts/recovery.py --settings=clinc150_lstm_R90 --recipes=paper,gradual   # a part of it
  python scripts/recovery.py --tables_only   # rebuild the table and figure from the results there are
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf.harness import flags as lmf_flags
from lmf_tf.harness import plans, recovery_reporting, runner

lmf_flags.define_int_list('seeds', '1,2,3', 'Seeds of every setting and recipe.', minimum=0)
flags.DEFINE_list('recipes', list(plans.RECOVERY_RECIPES), 'Recipes: paper, or recovery options joined by "-" ('
                  + ', '.join(plans.RECOVERY_OPTIONS) + ').')
flags.DEFINE_list('settings', [plans.recovery_setting_name(*s) for s in plans.RECOVERY_SETTINGS],
                  'Settings (data set, model, R) to run, named as data set_model_R.')
lmf_flags.define_runner_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  unknown = [r for r in FLAGS.recipes if r != 'paper' and set(r.split('-')) - set(plans.RECOVERY_OPTIONS)]
  if unknown:
    raise cli.UsageError(f'--recipes: {", ".join(unknown)} is not paper or a "-"-joined list of '
                         f'{", ".join(plans.RECOVERY_OPTIONS)}')
  settings = {plans.recovery_setting_name(*s): s for s in plans.RECOVERY_SETTINGS}
  unknown = [s for s in FLAGS.settings if s not in settings]
  if unknown:
    raise cli.UsageError(f'--settings: {", ".join(unknown)} not among {", ".join(settings)}')
  runs = plans.recovery_plan(tuple(FLAGS.seeds), tuple(FLAGS.recipes), tuple(settings[s] for s in FLAGS.settings),
                             workdir=FLAGS.workdir, results_dir=FLAGS.results_dir)
  runner.run_plan(runs, FLAGS.jobs, FLAGS.results_dir, dry_run=FLAGS.dry_run, tables_only=FLAGS.tables_only)
  if not FLAGS.dry_run:
    for path in recovery_reporting.write_recovery(FLAGS.results_dir, runs):
      print('wrote', path)


if __name__ == '__main__':
  cli.run(main)
