"""Evaluate a saved model (e.g. a compressed one) on its dev and test sets and print its checkpoint size.

  python scripts/evaluate.py --checkpoint_dir=checkpoints/sst2_lstm_R90_seed1/best
"""

import json

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags


flags.DEFINE_string('checkpoint_dir', None, 'A `best/` directory written by scripts/train.py.', required=True)
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.text import trained_models
  print(json.dumps(trained_models.evaluate_checkpoint(FLAGS.checkpoint_dir), indent=2))


if __name__ == '__main__':
  cli.run(main)
