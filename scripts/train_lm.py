"""Train the Zaremba et al. (2014) LSTM language model on Penn Treebank; report valid/test perplexity and size.

  python scripts/train_lm.py --config=small
  python scripts/train_lm.py --config=small --max_steps=200   # a smoke run
"""

import sys

from lmf_tf import cli

from lmf_tf.lm import flags as lmf_flags

lmf_flags.define_lm_flags()


def main(argv):
  del argv
  cli.load_tensorflow_quietly()  # after the flags are checked
  from lmf_tf.lm import training as lm_training
  lm_training.train_lm(lmf_flags.lm_config_from_flags(), show_progress=sys.stdout.isatty())


if __name__ == '__main__':
  cli.run(main)
