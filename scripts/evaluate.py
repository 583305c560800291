"""Evaluate a saved model (e.g. a compressed one) on its dev and test sets and print its checkpoint size.

  python scripts/evaluate.py --checkpoint_dir=checkpoints/sst2_lstm_R90_seed1/best
"""

import json

import tensorflow as tf
from absl import app, flags

from lmf_tf import cli
from lmf_tf.text import trained_models

flags.DEFINE_string('checkpoint_dir', None, 'A `best/` directory written by scripts/train.py.', required=True)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  tf.get_logger().setLevel('WARNING')
  print(json.dumps(cli.run_or_exit(trained_models.evaluate_checkpoint, FLAGS.checkpoint_dir), indent=2))


if __name__ == '__main__':
  app.run(main)
