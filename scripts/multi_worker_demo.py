"""Multi-worker training on this machine: two `scripts/train.py` workers under `--strategy=multi_worker`, talking
over the loopback interface, against one process, on the same run; prints each worker's output as it comes and
writes the speeds side by side (docs/distributed.md).

  python scripts/multi_worker_demo.py                       # = make multi-worker-demo
  python scripts/multi_worker_demo.py --workers=3 --epochs=2
"""

import datetime
import os

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf import io_utils

flags.DEFINE_integer('workers', 2, 'Worker processes of the multi-worker run.', lower_bound=2)
flags.DEFINE_integer('epochs', 3, 'Epochs of each run (SST-2 sentences, LSTM, compressed at R=90 after epoch 1).',
                     lower_bound=2)
flags.DEFINE_string('out_dir', 'runs/multi_worker_demo', 'Each demo writes its runs into a new '
                    'timestamped folder here.')
flags.DEFINE_string('output', 'results/multi_worker.json', 'Where to write the measurements.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.harness import multi_worker  # pylint: disable=g-import-not-at-top
  from lmf_tf.text.config import TrainConfig  # pylint: disable=g-import-not-at-top
  config = TrainConfig(train_level='sentence', model='lstm', reduction=90, epochs=FLAGS.epochs, compress_at_epoch=1,
                       seed=1)
  out_dir = os.path.join(FLAGS.out_dir, datetime.datetime.now().strftime('%Y%m%d-%H%M%S'))
  measured = multi_worker.demo(config, out_dir, workers=FLAGS.workers)
  cores = os.cpu_count()
  io_utils.write_json_atomic(FLAGS.output, {
      'command': f'make multi-worker-demo (scripts/multi_worker_demo.py --workers={FLAGS.workers} '
                 f'--epochs={FLAGS.epochs})', 'cpus': cores, 'runs': out_dir, 'measured': measured})
  print(f'\n{"way":<32} {"steps/s":>8} {"wall s":>7} {"test acc":>8}')
  for name, m in measured.items():
    print(f'{name:<32} {m["steps_per_second"]:>8} {m["wall_seconds"]:>7} {m["test_accuracy"]:>8.4f}')
  print(f'wrote {FLAGS.output} (runs in {out_dir})')


if __name__ == '__main__':
  cli.run(main)
