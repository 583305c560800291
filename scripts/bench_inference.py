"""Table 4: size, test accuracy and inference time of TFLite exports on the SST-2 test set, side by side.

  python scripts/bench_inference.py --models=lstm,dan --repeats=5 --output=results/table4
needs the seed's checkpoints of the uncompressed model and of online R = 50, 75 and 90 (`make bench-inference`
trains the missing ones first). Writes <output>.json and <output>.md.
"""

import os

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf import io_utils
from lmf_tf.harness import plans, reporting, runner
from lmf_tf.harness import flags as lmf_flags

flags.DEFINE_list('models', ['lstm', 'dan'], 'Models to time.')
flags.DEFINE_string('workdir', 'checkpoints', 'Where the training runs are.')
flags.DEFINE_integer('seed', 1, 'Which seed\'s runs to time.')
flags.DEFINE_integer('repeats', 5, 'Timed passes over the test set (after one warm-up pass); the median is reported.')
lmf_flags.define_int_list('batch_sizes', '1,64', 'Batch sizes to time.', minimum=1)
flags.DEFINE_integer('jobs', 1, 'Training runs at a time, for the checkpoints that are missing.')
flags.DEFINE_string('train_results_dir', 'runs/table4', 'Where the results of those training runs go.')
flags.DEFINE_string('output', 'results/table4', 'Output path without extension (.json and .md are written).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.harness import bench_inference
  # A fresh clone has no checkpoints: train the missing ones first (apart from the committed results).
  runner.run_plan(plans.table4_plan(FLAGS.workdir, FLAGS.train_results_dir, FLAGS.seed, tuple(FLAGS.models)),
                  FLAGS.jobs, FLAGS.train_results_dir)
  batch_sizes = tuple(FLAGS.batch_sizes)
  table = bench_inference.table4(FLAGS.models, FLAGS.workdir, FLAGS.seed, FLAGS.repeats,
                               batch_sizes)
  io_utils.write_json_atomic(FLAGS.output + '.json', {'cpu_count': os.cpu_count(), 'repeats': FLAGS.repeats,
                                                       'batch_sizes': batch_sizes, 'table': table})
  markdown = reporting.table4_markdown(table, batch_sizes)
  io_utils.write_text_atomic(FLAGS.output + '.md', markdown)
  print(markdown)


if __name__ == '__main__':
  cli.run(main)
