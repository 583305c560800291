"""Compress a trained PTB language model (low-rank, pruning, quantization or tensor train), fine-tune and measure it.

  python scripts/compress_lm.py --method=lowrank --reduction=60
  python scripts/compress_lm.py --method=prune --sparsity=0.8
  python scripts/compress_lm.py --method=quantize --bits=8
  python scripts/compress_lm.py --method=tt --tt_rank=32
"""

import sys

import quiet_tensorflow  # noqa: F401  (first: TensorFlow starts here, its start-up lines off the terminal)
from lmf_tf import cli

from lmf_tf.lm import flags as lmf_flags

lmf_flags.define_lm_compression_flags()


def main(argv):
  del argv
  from lmf_tf.lm import compression as lm_compression
  lm_compression.compress_lm(lmf_flags.lm_compression_config_from_flags(), show_progress=sys.stdout.isatty())


if __name__ == '__main__':
  cli.run(main)
