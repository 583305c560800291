"""The budget front: SST-2 and CLINC150 at budgets of 20, 45, 90, 180 and 300 KB and 1 MB, 3 seeds each, the plan
chosen on dev; then results/budget_front.{csv,md,png}. Finished runs are skipped (resumable).

  python scripts/budget_front.py --jobs=2          # every missing run, two at a time
  python scripts/budget_front.py --dry_run         # list the runs and which are done
  python scripts/budget_front.py --tables_only     # rebuild the table and figure from the runs there are
  python scripts/budget_front.py --datasets=sst2 --budgets=90KB,1MB
  python scripts/budget_front.py --vocabulary=hashed --budgets=20KB,45KB,90KB   # -> budget_front_hashed.{csv,md}
"""

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from absl import flags

from lmf_tf import cli
from lmf_tf.harness import flags as lmf_flags

lmf_flags.define_int_list('seeds', '1,2,3', 'Seeds of each budget\'s chosen plan (candidates run on seed 1).')
flags.DEFINE_list('datasets', ['sst2', 'clinc150'], 'Data sets: sst2, clinc150.')
flags.DEFINE_list('budgets', ['20KB', '45KB', '90KB', '180KB', '300KB', '1MB'], 'Budgets in bytes or KB / MB '
                  '(1 KB = 1,000 bytes).')
flags.DEFINE_enum('vocabulary', 'file', ('file', 'hashed'), 'What the plans ship to read words: a vocabulary file of '
                  'the words kept, or none, the words hashed into buckets (results/budget_front_hashed.*).')
flags.DEFINE_string('runs_dir', 'results/budget_runs', 'Where the runs\' JSON files go.')
lmf_flags.define_runner_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.compression import sizes
  unknown = [d for d in FLAGS.datasets if d not in ('sst2', 'clinc150')]
  if unknown:
    raise cli.UsageError(f'--datasets: {", ".join(unknown)} is not sst2 or clinc150')
  budgets = [sizes.parse_budget(b, '--budgets') for b in FLAGS.budgets]
  hashed = FLAGS.vocabulary == 'hashed'
  from lmf_tf.harness import budget_front, runner
  from lmf_tf.text import budget_search, budget_training
  candidates, data = {}, {}
  for dataset in FLAGS.datasets:
    data[dataset] = budget_training.load_data(dataset)
    for budget in budgets:
      candidates[(dataset, budget)] = budget_search.search_candidates(data[dataset], budget, '--budgets', hashed)
  workdir = f'{FLAGS.workdir}/budget'

  def run(runs):
    runner.run_plan(runs, FLAGS.jobs, FLAGS.runs_dir, dry_run=FLAGS.dry_run, tables_only=FLAGS.tables_only)

  run(budget_front.candidate_runs(candidates, FLAGS.runs_dir, workdir))
  if not (FLAGS.dry_run or FLAGS.tables_only):  # the teachers' files, once, before two distilled runs could both
    budget_front.ensure_teachers(candidates, data, FLAGS.runs_dir, workdir)  # train one (a fresh clone)
  run(budget_front.derived_runs(candidates, FLAGS.runs_dir, workdir))
  run(budget_front.seed_runs(candidates, FLAGS.seeds, FLAGS.runs_dir, workdir))
  if not FLAGS.dry_run:
    frame = budget_front.front_rows(candidates, FLAGS.seeds, FLAGS.runs_dir)
    reference = budget_front.existing_rows(FLAGS.results_dir)
    for path in budget_front.write_front(frame, FLAGS.results_dir, reference, hashed):
      print('wrote', path)


if __name__ == '__main__':
  cli.run(main)
