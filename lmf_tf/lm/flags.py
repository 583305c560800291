"""The absl flags of `scripts/train_lm.py` (`config.LmConfig`) and `scripts/compress_lm.py`
(`config.LmCompressionConfig`)."""

import dataclasses

from absl import flags

from lmf_tf import settings
from lmf_tf.lm import config as lm_config


def define_lm_flags():
  """Defines the flags of `scripts/train_lm.py`: a named config (`lm_config.LM_CONFIGS`) and run settings."""
  preset = lm_config.LmConfig()
  sizes = '; '.join(f'{n} {c.hidden_size} units, {c.num_steps} steps, dropout {c.dropout:g}, {c.epochs} epochs'
                    for n, c in lm_config.LM_CONFIGS.items())
  flags.DEFINE_enum('config', 'small', list(lm_config.LM_CONFIGS), f'Zaremba et al. (2014) LSTM LM size: {sizes}.')
  flags.DEFINE_integer('epochs', None, 'Override the config\'s number of epochs.')
  flags.DEFINE_integer('max_steps', None, 'Stop after this many training steps in all (smoke runs); valid and test '
                       'perplexity are still measured and the checkpoint written.')
  flags.DEFINE_integer('eval_batch_size', preset.eval_batch_size, 'Streams for valid/test perplexity (1: every '
                       'token but the first is predicted).')
  flags.DEFINE_integer('seed', preset.seed, 'Seeds the weights and dropout.')
  flags.DEFINE_string('data_dir', preset.data_dir, 'Folder with ptb.{train,valid,test}.txt.')
  flags.DEFINE_string('workdir', preset.workdir, 'Where run directories (checkpoint, vocabulary) go.')
  flags.DEFINE_string('results_dir', preset.results_dir, 'Where the results JSON goes.')


def lm_config_from_flags(flag_values=flags.FLAGS):
  """An `lm_config.LmConfig` from the parsed flags of `define_lm_flags` (scripts only)."""
  names = ('epochs', 'max_steps', 'eval_batch_size', 'seed', 'data_dir', 'workdir', 'results_dir')
  return lm_config.get_lm_config(flag_values.config, **{n: flag_values[n].value for n in names})


def define_lm_compression_flags(flag_values=flags.FLAGS):
  """Defines the flags of `scripts/compress_lm.py`, one per field of `lm_config.LmCompressionConfig`."""
  settings.define_flags(lm_config.LmCompressionConfig, flag_values)


def lm_compression_config_from_flags(flag_values=flags.FLAGS):
  """An `lm_config.LmCompressionConfig` from the parsed flags of `define_lm_compression_flags` (scripts only)."""
  return settings.config_from_flags(lm_config.LmCompressionConfig, flag_values)
