"""What `lmf_tf.OnlineCompression` costs inside `fit`: a plain Keras LSTM with and without the callback, trained
side by side in one process on the SST-2 sentences (docs/library.md).

  python scripts/bench_callback.py --rounds=5 --output=results/bench_callback.json   # = make bench-callback
"""

import json

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf import io_utils

flags.DEFINE_integer('rounds', 5, 'Timed epochs of each model (after one untimed, tracing epoch).', lower_bound=1)
flags.DEFINE_float('reduction', 90, 'R of the swap, percent.')
flags.register_validator('reduction', lambda r: 0 < r < 100, message='--reduction must be a percentage in (0, 100)')
flags.DEFINE_string('output', 'results/bench_callback.json', 'Where to write the timings (JSON).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.harness import bench_callback  # pylint: disable=g-import-not-at-top
  result = bench_callback.measure_callback_overhead(rounds=FLAGS.rounds, reduction=FLAGS.reduction)
  result['command'] = (f'make bench-callback (scripts/bench_callback.py --rounds={FLAGS.rounds} '
                       f'--reduction={FLAGS.reduction:g})')
  io_utils.write_json_atomic(FLAGS.output, result)
  print(json.dumps({k: v for k, v in result.items() if k != 'epoch_seconds'}, indent=2))
  print(f'wrote {FLAGS.output}')


if __name__ == '__main__':
  cli.run(main)
