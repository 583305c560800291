"""The absl flags of `scripts/train_lm.py` (`config.LmConfig`) and `scripts/compress_lm.py`
(`config.LmCompressionConfig`)."""

import dataclasses

from absl import flags

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


def define_lm_compression_flags():
  """Defines the flags of `scripts/compress_lm.py` (`lm_config.LmCompressionConfig`)."""
  preset = lm_config.LmCompressionConfig(baseline_dir='')
  flags.DEFINE_string('baseline_dir', 'checkpoints/ptb_small_seed1/final',
                      'The trained LM to compress (the `final` folder written by scripts/train_lm.py).')
  flags.DEFINE_enum('method', preset.method, list(lm_config.METHODS),
                    'lowrank: truncated SVD of the chosen matrices; prune: magnitude pruning to --sparsity; '
                    'quantize: post-training --bits fixed point; tt: tensor-train embedding/softmax of --tt_rank.')
  flags.DEFINE_list('matrices', list(preset.matrices), 'Matrices to compress: embedding, softmax, lstm (TT: the '
                    'first two only).')
  # lowrank
  flags.DEFINE_float('reduction', None, 'lowrank: cut each chosen matrix by R percent, k = floor((1 - R/100) m n / '
                     '(m + n)).')
  for name, shape in (('embedding', 'V x H'), ('softmax', 'H x V'), ('lstm_input', 'H x 4H, every layer'),
                      ('lstm_recurrent', 'H x 4H, every layer')):
    flags.DEFINE_integer(f'{name}_rank', None, f'lowrank: the rank of the {name} matrix ({shape}); wins over R.')
  # prune, quantize, tt
  flags.DEFINE_float('sparsity', None, 'prune: the share of each chosen matrix set to zero, in (0, 1).')
  flags.DEFINE_integer('bits', preset.bits, 'quantize: 8 or 16.')
  flags.DEFINE_integer('tt_rank', None, 'tt: the TT rank between cores.')
  flags.DEFINE_integer('tt_cores', preset.tt_cores, 'tt: cores per matrix (each side factored into this many).')
  # fine-tuning
  flags.DEFINE_integer('fine_tune_epochs', preset.fine_tune_epochs, 'Epochs of SGD after compressing (not for '
                       'quantize); the epoch with the best valid perplexity is kept, epoch 0 included.')
  flags.DEFINE_float('fine_tune_learning_rate', preset.fine_tune_learning_rate, 'SGD rate of the first epoch.')
  flags.DEFINE_float('fine_tune_lr_decay', preset.fine_tune_lr_decay, 'Rate multiplier per further epoch.')
  flags.DEFINE_integer('max_steps', None, 'Stop fine-tuning after this many steps in all (smoke runs).')
  flags.DEFINE_integer('seed', preset.seed, 'Seeds the fine-tuning.')
  flags.DEFINE_string('workdir', preset.workdir, 'Where run directories (checkpoint, vocabulary) go.')
  flags.DEFINE_string('results_dir', preset.results_dir, 'Where the results JSON goes.')


def lm_compression_config_from_flags(flag_values=flags.FLAGS):
  """An `lm_config.LmCompressionConfig` from the parsed flags of `define_lm_compression_flags` (scripts only)."""
  values = {f.name: flag_values[f.name].value for f in dataclasses.fields(lm_config.LmCompressionConfig)}
  values['matrices'] = tuple(values['matrices'])
  return lm_config.LmCompressionConfig(**values)
