"""absl flags, defined once: the text-classification scripts (grouped as `config.TrainConfig`) and the language-
model script (`lm_models.LmConfig`)."""

import dataclasses

from absl import flags

from lmf_tf import datasets, lm_compression, lm_models
from lmf_tf.config import LR_SCHEDULES, MODEL_DEFAULTS, OPTIMIZERS, TrainConfig

_D = TrainConfig()


def _per_model(name):
  return 'Default per model: ' + ', '.join(f'{m} {d[name]:g}' for m, d in MODEL_DEFAULTS.items()) + '.'


def define_train_flags():
  """Defines the flags of `scripts/train.py`; defaults come from `TrainConfig`."""
  # Data.
  flags.DEFINE_string('dataset', _D.dataset, f'Local data set ({", ".join(datasets.LOCAL_DATASETS)}) or a '
                      'tensorflow-datasets catalog name (needs a network the first time, e.g. glue/sst2).')
  flags.DEFINE_string('data_dir', _D.data_dir, 'Folder of the vendored data files.')
  flags.DEFINE_string('tfds_dir', _D.tfds_dir, 'Where tensorflow-datasets keeps prepared data.')
  flags.DEFINE_string('tfds_text_key', _D.tfds_text_key, 'Catalog data sets: the text feature.')
  flags.DEFINE_string('tfds_label_key', _D.tfds_label_key, 'Catalog data sets: the label feature.')
  flags.DEFINE_string('tfds_splits', _D.tfds_splits, 'Catalog data sets: train, dev and test splits, comma-'
                      'separated, in TFDS split syntax. GLUE hides its test labels: e.g. '
                      '"train[:95%],train[95%:],validation" for glue/sst2.')
  flags.DEFINE_string('train_level', _D.train_level, 'Which config of the local data set, default first: ' +
                      '; '.join(f'{name} {"|".join(spec.configs)}' for name, spec in datasets.LOCAL_DATASETS.items()) +
                      '. sst2: GLUE phrases (as the authors) or the 6,920 sentences; clinc150: with out-of-scope '
                      'as a 151st class or not.')
  flags.DEFINE_integer('max_train_examples', None, 'Train on the first N training examples only (smoke tests).')
  flags.DEFINE_integer('max_length', None, 'Truncate token sequences to this length.')
  flags.DEFINE_integer('batch_size', _D.batch_size, 'Examples per mini-batch.')
  flags.DEFINE_bool('bucket', _D.bucket, 'Bucket batches by sequence length (else pad to the batch maximum).')

  # Model.
  flags.DEFINE_string('model', _D.model, 'lstm or dan (DAN-RAND).')
  flags.DEFINE_string('embeddings_path', None, 'GloVe/word2vec text file for the LSTM (d follows from it); '
                      'default: the vendored GloVe 6B 50d for the data set.')
  flags.DEFINE_integer('embedding_dim', _D.embedding_dim, 'DAN-RAND embedding width (random initialisation).')
  flags.DEFINE_integer('lstm_units', _D.lstm_units, 'LSTM hidden size.')
  flags.DEFINE_float('dropout', _D.dropout, 'Dropout rate (paper: 0.4).')
  flags.DEFINE_float('word_dropout', None, f'DAN: drop each token with this probability in training. {_per_model("word_dropout")}')
  flags.DEFINE_float('l2', None, f'L2 weight on dense and LSTM kernels (paper: 0.005). {_per_model("l2")}')

  # Optimizer and learning rate (paper §3.2).
  flags.DEFINE_enum('optimizer', _D.optimizer, list(OPTIMIZERS), 'Optimizer.')
  flags.DEFINE_enum('lr_schedule', _D.lr_schedule, list(LR_SCHEDULES),
                    'calr (cyclically annealed), clr (triangular) or constant (--learning_rate).')
  flags.DEFINE_float('learning_rate', _D.learning_rate, 'Learning rate for --lr_schedule=constant.')
  flags.DEFINE_float('lr_lower', _D.lr_lower, 'CLR/CALR lower bound.')
  flags.DEFINE_float('lr_upper', None, f'CLR/CALR (initial) upper bound. {_per_model("lr_upper")}')
  flags.DEFINE_integer('lr_step_size', _D.lr_step_size, 'CLR/CALR half-cycle, in steps.')
  flags.DEFINE_float('lr_decay', _D.lr_decay, 'CALR: factor by which the peak decays per cycle.')

  # Online compression (paper §3.1).
  flags.DEFINE_float('reduction', None, 'R: percent of the embedding parameters to remove, e.g. 90.')
  flags.DEFINE_integer('rank', None, 'The rank k of the factorization, instead of --reduction.')
  flags.DEFINE_bool('offline', False, 'Baseline: reduce the embedding to rank k before training (SVD of GloVe '
                    'for the LSTM, a random V x k embedding for DAN-RAND) instead of online.')
  flags.DEFINE_integer('compress_at_step', None, 'Global step at which to compress.')
  flags.DEFINE_integer('compress_at_epoch', None, 'Compress after this many epochs (default: half of --epochs).')

  # Run.
  flags.DEFINE_integer('epochs', None, f'Training epochs in all (before and after compression). {_per_model("epochs")}')
  flags.DEFINE_integer('seed', _D.seed, 'Seeds weights, dropout and shuffling.')
  flags.DEFINE_string('workdir', _D.workdir, 'Where run directories (checkpoints, TensorBoard) go.')
  flags.DEFINE_string('results_dir', _D.results_dir, 'Where the results JSON goes.')
  flags.DEFINE_bool('resume', _D.resume, 'Continue an interrupted run from its last checkpoint (end of an epoch, or '
                    'mid-epoch with --checkpoint_every_steps).')
  flags.DEFINE_bool('tensorboard', _D.tensorboard, 'Write TensorBoard logs.')
  flags.DEFINE_integer('eval_every_steps', None, 'Also record dev accuracy every N steps (for Figure 3).')
  flags.DEFINE_integer('checkpoint_every_steps', None, 'Also save the training state every N steps, so that a run '
                       'killed mid-epoch resumes from there.')
  flags.DEFINE_enum('strategy', _D.strategy, ['default', 'mirrored', 'multi_worker'],
                    'tf.distribute strategy: mirrored = all local GPUs (or --cpu_devices logical CPUs); multi_worker '
                    '= several machines, each configured by its TF_CONFIG.')
  flags.DEFINE_integer('cpu_devices', None, 'Split the CPU into N logical devices (to try --strategy=mirrored '
                       'without GPUs).')
  flags.DEFINE_bool('deterministic', _D.deterministic, 'TensorFlow op determinism (tf.config.experimental.'
                    'enable_op_determinism): with --resume, the run ends bitwise like an uninterrupted one.')


def config_from_flags(flag_values=flags.FLAGS):
  """A `TrainConfig` from the parsed flags (called by scripts only; library code never reads FLAGS)."""
  return TrainConfig(**{f.name: flag_values[f.name].value for f in dataclasses.fields(TrainConfig)})


def define_lm_flags():
  """Defines the flags of `scripts/train_lm.py`: a named config (`lm_models.LM_CONFIGS`) and run settings."""
  preset = lm_models.LmConfig()
  sizes = '; '.join(f'{n} {c.hidden_size} units, {c.num_steps} steps, dropout {c.dropout:g}, {c.epochs} epochs'
                    for n, c in lm_models.LM_CONFIGS.items())
  flags.DEFINE_enum('config', 'small', list(lm_models.LM_CONFIGS), f'Zaremba et al. (2014) LSTM LM size: {sizes}.')
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
  """An `lm_models.LmConfig` from the parsed flags of `define_lm_flags` (scripts only)."""
  names = ('epochs', 'max_steps', 'eval_batch_size', 'seed', 'data_dir', 'workdir', 'results_dir')
  return lm_models.get_lm_config(flag_values.config, **{n: flag_values[n].value for n in names})


def define_lm_compression_flags():
  """Defines the flags of `scripts/compress_lm.py` (`lm_compression.LmCompressionConfig`)."""
  preset = lm_compression.LmCompressionConfig(baseline_dir='')
  flags.DEFINE_string('baseline_dir', 'checkpoints/ptb_small_seed1/final',
                      'The trained LM to compress (the `final` folder written by scripts/train_lm.py).')
  flags.DEFINE_enum('method', preset.method, list(lm_compression.METHODS),
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
  """An `lm_compression.LmCompressionConfig` from the parsed flags of `define_lm_compression_flags` (scripts only)."""
  values = {f.name: flag_values[f.name].value for f in dataclasses.fields(lm_compression.LmCompressionConfig)}
  values['matrices'] = tuple(values['matrices'])
  return lm_compression.LmCompressionConfig(**values)


class _IntListParser(flags.ListParser):
  """'1,2' -> [1, 2]: a comma-separated list of integers >= `minimum`; anything else is a parse error that absl
  reports with the flag's name."""

  def __init__(self, minimum):
    super().__init__()
    self.minimum = minimum

  def parse(self, argument):
    items = super().parse(argument)
    if not items or not all(item.strip().lstrip('-').isdigit() and int(item) >= self.minimum for item in items):
      raise ValueError(f'must be a comma-separated list of integers >= {self.minimum}, e.g. '
                       f'{self.minimum},{self.minimum + 1}')
    return [int(item) for item in items]


def define_int_list(name, default, help_text, minimum=0, flag_values=flags.FLAGS):
  """Defines --name as a comma-separated list of integers >= `minimum` (the value is a list of ints)."""
  flags.DEFINE(_IntListParser(minimum), name, default, help_text, flag_values=flag_values,
               serializer=flags.CsvListSerializer(','))


def define_runner_flags():
  """Defines the flags shared by the scripts that run a plan of experiments (`scripts/reproduce.py`,
  `scripts/ptb_table.py`): --jobs, --dry_run, --tables_only, --results_dir, --workdir."""
  flags.DEFINE_integer('jobs', 1, 'Runs at a time (each is its own process).')
  flags.DEFINE_bool('dry_run', False, 'Only list the runs.')
  flags.DEFINE_bool('tables_only', False, 'Only rebuild the tables (and figures) from the results there are.')
  flags.DEFINE_string('results_dir', 'results', 'Where result JSONs and tables go.')
  flags.DEFINE_string('workdir', 'checkpoints', 'Where run directories go.')
