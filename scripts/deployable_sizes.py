"""The deployable size (TFLite file + vocabulary file) of every classifier run in a results folder, measured on
each run's architecture (no checkpoint needed); read by the tables beside the paper's checkpoint size.

  python scripts/deployable_sizes.py --results_dir=results --output=results/deployable_sizes.json
"""

import glob
import json
import os

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf import io_utils, results

flags.DEFINE_string('results_dir', 'results', 'Folder of per-run result JSONs.')
flags.DEFINE_string('output', 'results/deployable_sizes.json', 'Where to write {run: sizes}.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.text import deployable
  runs = {}
  for path in sorted(glob.glob(os.path.join(FLAGS.results_dir, '*.json'))):
    with open(path, encoding='utf-8') as f:
      value = json.load(f)
    if results.is_run_result(value) and 'test_accuracy' in value:
      runs[value['run']] = results.from_dict(value, path)
  sizes = deployable.deployable_sizes(runs)
  io_utils.write_json_atomic(FLAGS.output, sizes)
  print(f'wrote {FLAGS.output}: {len(sizes)} runs')


if __name__ == '__main__':
  cli.run(main)
