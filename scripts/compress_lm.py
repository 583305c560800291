"""Compress a trained PTB language model (low-rank, pruning, quantization or tensor train), fine-tune and measure it.

  python scripts/compress_lm.py --method=lowrank --reduction=60
  python scripts/compress_lm.py --method=prune --sparsity=0.8
  python scripts/compress_lm.py --method=quantize --bits=8
  python scripts/compress_lm.py --method=tt --tt_rank=32
"""

import tensorflow as tf
from absl import app

from lmf_tf import cli
from lmf_tf.lm import compression as lm_compression
from lmf_tf.lm import flags as lmf_flags

lmf_flags.define_lm_compression_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  tf.get_logger().setLevel('WARNING')
  cli.run_or_exit(lambda: lm_compression.compress_lm(lmf_flags.lm_compression_config_from_flags()))


if __name__ == '__main__':
  app.run(main)
