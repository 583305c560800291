"""Uncompressed DAN-RAND on SST-2 under the variants of `plans.DAN_VARIANTS` (the paper reports 84.61,
Iyyer et al. 83.2), 3 seeds each; results/dan_tuning.{csv,md} with the variant chosen on dev.

  python scripts/dan_tuning.py --jobs=2
  python scripts/dan_tuning.py --tables_only
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf.harness import flags as lmf_flags
from lmf_tf.harness import plans, reporting, runner

lmf_flags.define_int_list('seeds', '1,2,3', 'Seeds of every variant.', minimum=0)
flags.DEFINE_list('variants', list(plans.DAN_VARIANTS), 'Variants of plans.DAN_VARIANTS to run.')
lmf_flags.define_runner_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  unknown = sorted(set(FLAGS.variants) - set(plans.DAN_VARIANTS))
  if unknown:
    raise cli.UsageError(f'--variants: {", ".join(unknown)} not among {", ".join(plans.DAN_VARIANTS)}')
  runs = plans.dan_plan(tuple(FLAGS.seeds), {v: plans.DAN_VARIANTS[v] for v in FLAGS.variants},
                        FLAGS.workdir, FLAGS.results_dir)
  runner.run_plan(runs, FLAGS.jobs, FLAGS.results_dir, dry_run=FLAGS.dry_run, tables_only=FLAGS.tables_only)
  if not FLAGS.dry_run:
    for path in reporting.write_variant_table(FLAGS.results_dir, runs, 'dan_tuning', plans.DAN_VARIANTS):
      print('wrote', path)


if __name__ == '__main__':
  cli.run(main)
