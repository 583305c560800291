"""Run every missing experiment of Tables 1-3 and Figures 2-3, then rebuild tables and figures.

  python scripts/reproduce.py --jobs=2            # 3 seeds; SST-2 R in 10..99, CLINC150/SNIPS R in 50..90 (hours)
  python scripts/reproduce.py --quick --jobs=2    # 1 seed; SST-2 R in {50, 90} (no Table 3)
  python scripts/reproduce.py --tables=table3     # only Table 3's runs
  python scripts/reproduce.py --dry_run           # list the runs and which are done
Finished runs are skipped, so an interrupted reproduction continues where it stopped.
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf.harness import figures, plans, recovery_reporting, reporting, runner
from lmf_tf.harness import flags as lmf_flags

flags.DEFINE_bool('quick', False, 'One seed and R in {50, 90} on SST-2 (no Table 3), instead of 3 seeds, R in '
                  '10..99 on SST-2 and R in {50, 70, 90} on CLINC150 and SNIPS.')
flags.DEFINE_list('models', ['lstm', 'dan'], 'Models to run.')
flags.DEFINE_list('methods', None, 'Only these methods (uncompressed, online, offline, quant16, quant8, keras_int8, '
                  'online+quant8, adagrad, adam, clr); tables and figures still cover the whole plan.')
flags.DEFINE_list('tables', None, 'Only the runs of these tables (table1, table2, table3); tables and figures '
                  'still cover the whole plan.')
lmf_flags.define_runner_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  runs = plans.plan(FLAGS.quick, FLAGS.models, FLAGS.workdir, FLAGS.results_dir)
  for flag, values, known in (('--methods', FLAGS.methods, {r.method for r in runs}),
                              ('--tables', FLAGS.tables, {'table1', 'table2', 'table3'})):
    unknown = sorted(set(values or ()) - known)
    if unknown:
      raise cli.UsageError(f'{flag}: {", ".join(unknown)} not among {", ".join(sorted(known))}')
  chosen = [r for r in runs if (FLAGS.methods is None or r.method in FLAGS.methods)
            and (FLAGS.tables is None or r.table in FLAGS.tables or (r.table == 'both' and {'table1', 'table2'} &
                                                                      set(FLAGS.tables)))]
  runner.run_plan(chosen, FLAGS.jobs, FLAGS.results_dir, dry_run=FLAGS.dry_run, tables_only=FLAGS.tables_only)
  if FLAGS.dry_run:
    return
  # The recovery recipes chosen on dev (make recovery) join Tables 2 and 3 as rows beyond the paper.
  beyond = None if FLAGS.quick else recovery_reporting.chosen_recipe_frame(
      FLAGS.results_dir, plans.recovery_plan(workdir=FLAGS.workdir, results_dir=FLAGS.results_dir))
  for path in (reporting.write_paper_tables(FLAGS.results_dir, runs, extra=beyond)
               + figures.write_all(FLAGS.results_dir, runs)):
    print('wrote', path)


if __name__ == '__main__':
  cli.run(main)
