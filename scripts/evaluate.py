"""Evaluate a saved model (e.g. a compressed one) on its dev and test sets and print its checkpoint size.

  python scripts/evaluate.py --checkpoint_dir=checkpoints/sst2_lstm_R90_seed1/best
  python scripts/evaluate.py --checkpoint_dir=checkpoints/sst2_lstm_R90_seed1/best --tflite=int8   # the shipped file
"""

import json

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags


flags.DEFINE_string('checkpoint_dir', None, 'A `best/` directory written by scripts/train.py.', required=True)
flags.DEFINE_enum('tflite', None, ['float32', 'float16', 'int8'], 'Evaluate the TFLite file of this kind that a user '
                  'ships (batch size 1, projection folded) with LiteRT instead, with its deployable bytes.')
flags.DEFINE_string('output', None, 'Also write the JSON to this file (atomically).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.text import trained_models
  from lmf_tf import io_utils
  if FLAGS.tflite:
    value = {'checkpoint_dir': FLAGS.checkpoint_dir,
             **trained_models.evaluate_shipped(FLAGS.checkpoint_dir, FLAGS.tflite)}
  else:
    value = trained_models.evaluate_checkpoint(FLAGS.checkpoint_dir)
  if FLAGS.output:
    io_utils.write_json_atomic(FLAGS.output, value)
  print(json.dumps(value, indent=2))


if __name__ == '__main__':
  cli.run(main)
