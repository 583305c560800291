"""Train a text classifier, compress its embedding online, report dev/test accuracy and checkpoint size.

  python scripts/train.py --model=lstm --reduction=90 --seed=1
  python scripts/train.py --model=lstm --reduction=90 --recovery_lr=restart --distill_alpha=0.5
  python scripts/train.py --dataset=sst2 --budget_bytes=90KB     # the plan that ships within 90 KB (scripts/budget.py)
Writes runs/<run>.json (--results_dir) and checkpoints/<run>/ (--workdir); --helpfull lists every setting.
"""

import os
import sys

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from absl import flags

from lmf_tf import cli

from lmf_tf.text import flags as lmf_flags

lmf_flags.define_train_flags()
flags.DEFINE_string('budget_bytes', None, 'Instead of one model: the plan whose shipped files (TFLite + vocabulary) '
                    'fit this many bytes, or KB / MB (1 KB = 1,000 bytes), chosen on dev (sst2, clinc150; '
                    'scripts/budget.py). Takes --dataset, --seed, --results_dir and --workdir.')
FLAGS = flags.FLAGS
BUDGET_FLAGS = ('dataset', 'seed', 'results_dir', 'workdir', 'budget_bytes')


def budget_run(config):
  """--budget_bytes: the budget search of `lmf_tf.text.budget_search` for the run's data set and seed."""
  from lmf_tf.compression import sizes
  budget = sizes.parse_budget(FLAGS.budget_bytes, '--budget_bytes')
  others = [name for name in FLAGS if FLAGS[name].present and name not in BUDGET_FLAGS
            and name in lmf_flags.TrainConfig.__dataclass_fields__]
  if others or config.dataset not in ('sst2', 'clinc150'):
    raise cli.UsageError('--budget_bytes chooses the model, its compression and its training itself: it takes '
                         f'--dataset=sst2|clinc150, --seed, --results_dir and --workdir only (given: '
                         f'{", ".join("--" + o for o in others) or "--dataset=" + config.dataset})')
  from lmf_tf.text import budget_reporting, budget_search, budget_training
  outcome = budget_search.search(budget_training.load_data(config.dataset), budget, [config.seed],
                                 os.path.join(config.results_dir, 'budget'), os.path.join(config.workdir, 'budget'))
  print(budget_reporting.describe_outcome(outcome))


def main(argv):
  del argv
  config = lmf_flags.config_from_flags().validate()  # every setting that can be checked without the data
  if FLAGS.budget_bytes is not None:
    return budget_run(config)
  from lmf_tf.text import training
  training.train_and_evaluate(config, progress=sys.stdout.isatty())


if __name__ == '__main__':
  cli.run(main)
