"""Train the Zaremba et al. (2014) LSTM language model on Penn Treebank; report valid/test perplexity and size.

  python scripts/train_lm.py --config=small
  python scripts/train_lm.py --config=small --max_steps=200   # a smoke run
"""

from lmf_tf import cli

cli.load_tensorflow_quietly()  # before the imports below load it: no C++ start-up noise

from absl import app

from lmf_tf.lm import flags as lmf_flags
from lmf_tf.lm import training as lm_training

lmf_flags.define_lm_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  lm_training.train_lm(lmf_flags.lm_config_from_flags())


if __name__ == '__main__':
  cli.run(main)
