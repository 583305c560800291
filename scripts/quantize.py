"""Post-training quantization baseline of a trained model (paper §3.3): evaluate and measure the checkpoint.

  python scripts/quantize.py --checkpoint_dir=checkpoints/sst2_lstm_R0_seed1/best --bits=8
  python scripts/quantize.py --checkpoint_dir=checkpoints/sst2_lstm_R0_seed1/best --method=keras_int8
"""

import tensorflow as tf
from absl import app, flags

from lmf_tf import cli
from lmf_tf.text import post_training

flags.DEFINE_string('checkpoint_dir', None, 'A `best/` directory written by scripts/train.py.', required=True)
flags.DEFINE_enum('method', 'fixed_point', list(post_training.METHODS), 'Our fixed-point quantizer or Keras int8.')
flags.DEFINE_integer('bits', 8, 'Fixed-point width: 8 or 16.')
flags.DEFINE_bool('per_channel', False, 'One scale per output column instead of one per tensor.')
flags.DEFINE_string('results_dir', 'results', 'Where the results JSON goes.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  tf.get_logger().setLevel('WARNING')
  cli.run_or_exit(post_training.quantize_trained_model, FLAGS.checkpoint_dir, bits=FLAGS.bits,
                       per_channel=FLAGS.per_channel, method=FLAGS.method, results_dir=FLAGS.results_dir)


if __name__ == '__main__':
  app.run(main)
