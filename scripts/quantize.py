"""Post-training quantization baseline of a trained model (paper §3.3): evaluate and measure the checkpoint.

  python scripts/quantize.py --checkpoint_dir=checkpoints/sst2_lstm_R0_seed1/best --bits=8
  python scripts/quantize.py --checkpoint_dir=checkpoints/sst2_lstm_R0_seed1/best --method=keras_int8
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from lmf_tf import settings
from lmf_tf.text.config import QuantizeConfig

settings.define_flags(QuantizeConfig)


def main(argv):
  del argv
  from lmf_tf.text import post_training
  config = settings.config_from_flags(QuantizeConfig)
  post_training.quantize_trained_model(config.checkpoint_dir, bits=config.bits, per_channel=config.per_channel,
                                       method=config.method, results_dir=config.results_dir)


if __name__ == '__main__':
  cli.run(main)
