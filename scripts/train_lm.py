"""Train the Zaremba et al. (2014) LSTM language model on Penn Treebank; report valid/test perplexity and size.

  python scripts/train_lm.py --config=small
  python scripts/train_lm.py --config=small --max_steps=200   # a smoke run
"""

import sys

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from lmf_tf.lm import flags as lmf_flags

lmf_flags.define_lm_flags()


def main(argv):
  del argv
  from lmf_tf.lm import training as lm_training
  lm_training.train_lm(lmf_flags.lm_config_from_flags(), show_progress=sys.stdout.isatty())


if __name__ == '__main__':
  cli.run(main)
