"""Paper §4 for the project's real models: space and FLOPs of the embedding and the first layer after it, for
float32, 16/8-bit quantization and LMF at each R, next to the measured Table 4 (if `make bench-inference` ran).

  python scripts/analyze.py --models=lstm,dan --table4=results/table4.json --output=results/analysis
"""

import os

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags
import pandas as pd

from lmf_tf import io_utils

flags.DEFINE_list('models', ['lstm', 'dan'], 'Models to analyse (their uncompressed checkpoint gives V, d, widths).')
flags.DEFINE_string('workdir', 'checkpoints', 'Where the training runs are.')
flags.DEFINE_integer('seed', 1, 'Which seed\'s uncompressed run to read the sizes from.')
flags.DEFINE_string('table4', 'results/table4.json', 'Measured Table 4 (optional).')
flags.DEFINE_string('output', 'results/analysis', 'Output path without extension (.csv and .md are written).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.compression import analysis
  from lmf_tf.text import trained_models
  measured = {}
  if os.path.exists(FLAGS.table4):
    measured = io_utils.read_json(FLAGS.table4, 'Table 4 file').get('table', {})
  tables = []
  for name in FLAGS.models:
    model, _, config = trained_models.load_trained_model(f'{FLAGS.workdir}/sst2_{name}_R0_seed{FLAGS.seed}/best')
    table = analysis.model_cost_table(model, config.model, measured.get(name, []))
    tables.append(table)
  io_utils.write_text_atomic(FLAGS.output + '.md', '\n'.join(analysis.to_markdown(t) for t in tables))
  io_utils.write_text_atomic(FLAGS.output + '.csv', pd.concat(tables, ignore_index=True).to_csv(index=False))
  print(open(FLAGS.output + '.md').read())


if __name__ == '__main__':
  cli.run(main)
