"""Build the accuracy/size table (Markdown + CSV) from the result JSONs.

  python scripts/summarize.py --results_dir=results --pattern='sst2_*.json' --output=results/sst2_summary
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf.harness import reporting

flags.DEFINE_string('results_dir', 'results', 'Folder of per-run result JSONs.')
flags.DEFINE_string('pattern', '*.json', 'Glob of the runs to include.')
flags.DEFINE_string('output', 'results/summary', 'Output prefix: writes <output>.md and <output>.csv.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  table = reporting.write_summary(FLAGS.results_dir, FLAGS.pattern, FLAGS.output)
  print(reporting.to_markdown(table))


if __name__ == '__main__':
  cli.run(main)
