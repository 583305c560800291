"""Train a text classifier, compress its embedding online, report dev/test accuracy and checkpoint size.

  python scripts/train.py --model=lstm --reduction=90 --compress_at_epoch=3 --seed=1
"""

import tensorflow as tf
from absl import app

from lmf_tf import cli
from lmf_tf.text import flags as lmf_flags
from lmf_tf.text import training

lmf_flags.define_train_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  tf.get_logger().setLevel('WARNING')
  cli.run_or_exit(lambda: training.train_and_evaluate(lmf_flags.config_from_flags()))


if __name__ == '__main__':
  app.run(main)
