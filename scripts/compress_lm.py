"""Compress a trained PTB language model (low-rank, pruning, quantization or tensor train), fine-tune and measure it.

  python scripts/compress_lm.py --method=lowrank --reduction=60
  python scripts/compress_lm.py --method=prune --sparsity=0.8
  python scripts/compress_lm.py --method=quantize --bits=8
  python scripts/compress_lm.py --method=tt --tt_rank=32
"""

from lmf_tf import cli

cli.load_tensorflow_quietly()  # before the imports below load it: no C++ start-up noise

from absl import app

from lmf_tf.lm import compression as lm_compression
from lmf_tf.lm import flags as lmf_flags

lmf_flags.define_lm_compression_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  lm_compression.compress_lm(lmf_flags.lm_compression_config_from_flags())


if __name__ == '__main__':
  cli.run(main)
