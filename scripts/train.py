"""Train a text classifier, compress its embedding online, report dev/test accuracy and checkpoint size.

  python scripts/train.py --model=lstm --reduction=90 --seed=1
  python scripts/train.py --model=lstm --reduction=90 --recovery_lr=restart --distill_alpha=0.5
Writes runs/<run>.json (--results_dir) and checkpoints/<run>/ (--workdir); --helpfull lists every setting.
"""

import sys

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from lmf_tf.text import flags as lmf_flags

lmf_flags.define_train_flags()


def main(argv):
  del argv
  config = lmf_flags.config_from_flags().validate()  # every setting that can be checked without the data
  from lmf_tf.text import training
  training.train_and_evaluate(config, progress=sys.stdout.isatty())


if __name__ == '__main__':
  cli.run(main)
