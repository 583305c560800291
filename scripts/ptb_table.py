"""The PTB language-model compression table: train the baseline, compress it every way, measure, tabulate.

  python scripts/ptb_table.py --jobs=2 --seeds=1,2   # per seed: the `small` baseline (~1 h here), then 10 compressed
                                                     # runs (~50 min at --jobs=2); all models timed at the end
  python scripts/ptb_table.py --dry_run               # list the runs and which are done
  python scripts/ptb_table.py --tables_only           # rebuild results/ptb_table_small.{md,csv} from what there is
Finished runs are skipped, so an interrupted table continues with the runs it had not finished. Writes
`<prefix>.csv` (one row per run), `<prefix>_summary.csv` and `<prefix>.md` (mean ± std over seeds).
"""

import os

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf import io_utils, results
from lmf_tf.harness import plans, ptb_reporting, runner
from lmf_tf.harness import flags as lmf_flags
from lmf_tf.lm.config import LM_CONFIGS

flags.DEFINE_enum('config', 'small', list(LM_CONFIGS), 'The baseline LM (lm.config.LM_CONFIGS).')
lmf_flags.define_int_list('seeds', '1,2', 'Seeds: each trains its own baseline and fine-tunes its own compressed '
                           'models.')
flags.DEFINE_integer('max_steps', None, 'Smoke plan: every run stops after this many (fine-tuning) steps.')
flags.DEFINE_integer('bench_words', 10_000, 'Test words per timing pass for the words/s column.')
flags.DEFINE_integer('bench_repeats', 5, 'Timing passes per model (the fastest counts).')
lmf_flags.define_runner_flags()
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.harness import bench_lm_speed
  extra = {'max_steps': FLAGS.max_steps} if FLAGS.max_steps else {}
  runs = plans.ptb_plan(FLAGS.config, FLAGS.seeds, FLAGS.workdir,
                              FLAGS.results_dir, **extra)
  runner.run_plan(runs, FLAGS.jobs, FLAGS.results_dir, dry_run=FLAGS.dry_run, tables_only=FLAGS.tables_only)
  if FLAGS.dry_run:
    return
  prefix = os.path.join(FLAGS.results_dir, f'ptb_table_{FLAGS.config}' + (f'_steps{FLAGS.max_steps}' if extra else ''))
  speeds_path = prefix + '_speed.json'
  if not FLAGS.tables_only:
    done = [results.load(os.path.join(FLAGS.results_dir, r.name + '.json')).checkpoint_dir
            for r in runs if r.done(FLAGS.results_dir)]
    print(f'timing {len(done)} models at inference ({FLAGS.bench_words} test words, batch 1)')
    io_utils.write_json_atomic(speeds_path, bench_lm_speed.lm_inference_speed(done, FLAGS.bench_words,
                                                                          FLAGS.bench_repeats))
  speeds = io_utils.read_json(speeds_path, 'timings') if os.path.exists(speeds_path) else {}
  table = ptb_reporting.ptb_table(runs, FLAGS.results_dir, speeds)
  summary = ptb_reporting.ptb_summary(table, runs)
  for path, text in ((f'{prefix}.md', ptb_reporting.ptb_table_markdown(summary) if not summary.empty else ''),
                     (f'{prefix}.csv', table.to_csv(index=False, float_format='%.4f')),
                     (f'{prefix}_summary.csv', summary.to_csv(index=False, float_format='%.4f'))):
    io_utils.write_text_atomic(path, text)
    print('wrote', path)


if __name__ == '__main__':
  cli.run(main)
