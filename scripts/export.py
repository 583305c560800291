"""Export a trained checkpoint (uncompressed, online-compressed or quantized) as TensorFlow Lite models.

  python scripts/export.py --checkpoint_dir=checkpoints/sst2_lstm_R90_seed1/best --output_dir=exports/sst2_lstm_R90
writes model_float32.tflite, model_float16.tflite, model_int8.tflite, vocabulary.txt and export.json.
"""

import json

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags


flags.DEFINE_string('checkpoint_dir', None, 'A `best/` directory written by scripts/train.py or quantize.py.',
                    required=True)
flags.DEFINE_string('output_dir', None, 'Where the .tflite files go.', required=True)
flags.DEFINE_list('kinds', ['float32', 'float16', 'int8'], 'Which exports: float32, float16 (weights), int8 (dynamic range).')
flags.DEFINE_integer('batch_size', 1, 'Batch size the model is converted for (fixed: the LSTM needs it static).')
flags.DEFINE_bool('fold_projection', False, 'For a compressed model: multiply the k x d projection into the next '
                  'layer\'s input kernel (smaller and faster, same predictions up to rounding).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.text import export
  sizes = export.export_checkpoint(FLAGS.checkpoint_dir, FLAGS.output_dir, FLAGS.kinds,
                               FLAGS.batch_size, FLAGS.fold_projection)
  print(json.dumps(sizes, indent=2))


if __name__ == '__main__':
  cli.run(main)
