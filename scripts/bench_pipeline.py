"""Seconds per training epoch: bucketed tf.data pipeline vs. model.fit on padded NumPy arrays (same model).

  python scripts/bench_pipeline.py --model=lstm --epochs=3 --output=results/bench_pipeline.json
"""

import dataclasses
import json

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from absl import flags

from lmf_tf import io_utils
from lmf_tf.text import flags as lmf_flags

lmf_flags.define_train_flags()
flags.DEFINE_string('output', 'results/bench_pipeline.json', 'Where to write the timings (JSON).')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  from lmf_tf.harness import bench_pipeline
  config = lmf_flags.config_from_flags().resolved()
  result = bench_pipeline.compare_input_pipelines(config, epochs=config.epochs)
  result['config'] = dataclasses.asdict(config)
  io_utils.write_json_atomic(FLAGS.output, result)
  print(json.dumps({k: v for k, v in result.items() if k != 'config'}, indent=2))


if __name__ == '__main__':
  cli.run(main)
