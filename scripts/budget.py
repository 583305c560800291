"""Ship a classifier within a byte budget: the plan chosen on dev among those predicted to fit, trained, exported
to TFLite and run with LiteRT; prints the plan and its predicted and measured bytes by part.

  python scripts/budget.py --dataset=sst2 --budget=90KB            # the search, then the chosen plan's seeds
  python scripts/budget.py --dataset=clinc150 --budget=20000 --seeds=1,2,3
  python scripts/budget.py --dataset=sst2 --plan=bag-w4000-k16-u64-int8 --seed=2    # one plan and seed
  python scripts/budget.py --dataset=sst2 --budget=45KB --vocabulary=hashed  # words hashed: no vocabulary file
Writes <results_dir>/<data set>_<plan>_seed<s>.json (default runs/budget/) and the shipped files (model.tflite,
vocabulary.xz) under <workdir>/<run>/ (default checkpoints/budget/). 1 KB = 1,000 bytes.
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from absl import flags

from lmf_tf import cli
from lmf_tf.errors import BudgetExceededError
from lmf_tf.harness import flags as lmf_flags

BUDGET_DATASETS = ('sst2', 'clinc150')
flags.DEFINE_enum('dataset', 'sst2', BUDGET_DATASETS, 'Data set (its default config: SST-2 phrases, CLINC150 '
                  'in-scope).')
flags.DEFINE_string('budget', None, 'Deployable bytes (TFLite file + vocabulary file) to fit: bytes, or KB / MB '
                    '(1 KB = 1,000 bytes), e.g. 90KB.')
flags.DEFINE_enum('vocabulary', 'file', ('file', 'hashed'), 'What the search\'s plans ship to read words: file, the '
                  'most frequent training words in a vocabulary file (the rest are <unk>); hashed, no file: every word '
                  'is hashed (FarmHash, tf.strings.to_hash_bucket_fast) into the buckets the plan chooses.')
flags.DEFINE_string('plan', None, 'Train this plan only (e.g. bag-w4000-k16-u64-int8) instead of searching.')
flags.DEFINE_integer('seed', 1, 'The seed of --plan.', lower_bound=0)
flags.DEFINE_integer('epochs', None, 'A trial of --plan with this many epochs (default: the data set\'s).', lower_bound=2)
flags.DEFINE_float('dropout', None, 'A trial of --plan with this dropout (default: the data set\'s).', lower_bound=0,
                   upper_bound=0.9)
flags.DEFINE_float('distill_alpha', None, 'A trial of --plan distilling the recovery after the swap from the model '
                   'before it: loss = alpha CE + (1 - alpha) KD (default: no distillation).', lower_bound=0,
                   upper_bound=1)
flags.DEFINE_string('teacher', None, 'With --distill_alpha: distil from the shipped files of this plan\'s seed-1 run '
                    '(trained before, e.g. a larger budget\'s plan) instead of the model before the swap.')
lmf_flags.define_int_list('seeds', '1', 'Seeds of the chosen plan (the search itself uses seed 1).', minimum=0)
flags.DEFINE_string('results_dir', 'runs/budget', 'Where the runs\' JSON files go.')
flags.DEFINE_string('workdir', 'checkpoints/budget', 'Where the shipped files go, a folder per run.')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.compression import sizes as budget  # no TensorFlow
  from lmf_tf.text import budget_search
  if (FLAGS.budget is None) == (FLAGS.plan is None):
    raise cli.UsageError('give exactly one of --budget (search a plan) and --plan (train one plan)')
  if FLAGS.plan is not None and FLAGS['vocabulary'].present:
    raise cli.UsageError('--vocabulary chooses the plans of a --budget search; a --plan names its own (w<words>: a '
                         'vocabulary file, h<buckets>: hashed)')
  if FLAGS.teacher is not None and FLAGS.distill_alpha is None:
    raise cli.UsageError('--teacher needs --distill_alpha (the weight of the labels, e.g. 0.5)')
  trial = budget_search.Trial(FLAGS.epochs, FLAGS.dropout, FLAGS.distill_alpha, FLAGS.teacher)
  if FLAGS.plan is None and trial != budget_search.Trial():
    raise cli.UsageError('--epochs, --dropout and --distill_alpha set a trial of one --plan; the search uses the '
                         'data set\'s')
  budget_bytes = budget.parse_budget(FLAGS.budget, '--budget') if FLAGS.budget is not None else None
  plan = budget_search.plan_from_name(FLAGS.plan) if FLAGS.plan is not None else None
  from lmf_tf.text import budget_reporting, budget_training
  data = budget_training.load_data(FLAGS.dataset)
  if plan is not None:
    run = budget_search.train_and_record(plan, data, FLAGS.seed, FLAGS.results_dir, FLAGS.workdir, trial)
    print(budget_reporting.describe_run(run))
    return
  outcome = budget_search.search(data, budget_bytes, FLAGS.seeds, FLAGS.results_dir, FLAGS.workdir,
                                 hashed=FLAGS.vocabulary == 'hashed')
  print(budget_reporting.describe_outcome(outcome))
  if not all(run['deployable_bytes'] <= budget_bytes for run in outcome.runs):
    raise BudgetExceededError(f'the shipped files of {outcome.plan.name} exceed --budget={budget_bytes:,}')


if __name__ == '__main__':
  cli.run(main)
