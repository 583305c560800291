"""Frequency-aware ranks against one rank at R = 90 (`make frequency-ranks`): the LSTM on CLINC150 and SST-2,
3 seeds, each run's int8 TFLite file evaluated by LiteRT; then results/frequency_ranks.md. Resumable.

  python scripts/frequency_ranks.py --jobs=2 --results_dir=results/frequency_ranks \
      --workdir=checkpoints/frequency_ranks --output=results/frequency_ranks.md
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf.harness import flags as lmf_flags
from lmf_tf.harness import frequency_reporting, plans, runner

lmf_flags.define_int_list('seeds', '1,2,3', 'Seeds of every variant.', minimum=0)
lmf_flags.define_runner_flags()
flags.DEFINE_string('output', 'results/frequency_ranks.md', 'The Markdown table to write.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  runs = plans.frequency_plan(tuple(FLAGS.seeds), FLAGS.workdir, FLAGS.results_dir)
  runner.run_plan(runs, FLAGS.jobs, FLAGS.results_dir, dry_run=FLAGS.dry_run, tables_only=FLAGS.tables_only)
  if not FLAGS.dry_run:
    table = frequency_reporting.write_frequency_table(FLAGS.results_dir, FLAGS.output)
    print(frequency_reporting.to_markdown(table))


if __name__ == '__main__':
  cli.run(main)
