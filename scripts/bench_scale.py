"""Time and peak memory of compressing a V x 300 embedding at R = 90 for V = 100k and 1M (the paper's sizes).

  python scripts/bench_scale.py --vocab_sizes=100000,1000000 --dim=300 --reduction=90 --output=results/bench_scale.json
"""

import json

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf import io_utils
from lmf_tf.harness import flags as lmf_flags

lmf_flags.define_int_list('vocab_sizes', '100000,1000000', 'Vocabulary sizes V.', minimum=1)
flags.DEFINE_integer('dim', 300, 'Embedding width d.')
flags.DEFINE_float('reduction', 90, 'R in percent.')
flags.DEFINE_integer('full_svd_up_to', 100_000, 'Also time the plain float64 SVD for V up to this (1M words '
                     'needs about 10 GB of memory).')
flags.DEFINE_string('output', 'results/bench_scale.json', 'Where to write the measurements (JSON).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.harness import bench_scale
  rows = bench_scale.compression_scale(tuple(FLAGS.vocab_sizes), FLAGS.dim, FLAGS.reduction,
                                      FLAGS.full_svd_up_to)
  io_utils.write_json_atomic(FLAGS.output, {'rows': rows})
  print(json.dumps(rows, indent=2))


if __name__ == '__main__':
  cli.run(main)
