"""The absl flags of `scripts/train.py`, grouped as `config.TrainConfig`."""

import dataclasses

from absl import flags

from lmf_tf.text import catalog
from lmf_tf.text.config import LR_SCHEDULES, MODEL_DEFAULTS, OPTIMIZERS, TrainConfig

_D = TrainConfig()


def _per_model(name):
  return 'Default per model: ' + ', '.join(f'{m} {d[name]:g}' for m, d in MODEL_DEFAULTS.items()) + '.'


def define_train_flags():
  """Defines the flags of `scripts/train.py`; defaults come from `TrainConfig`."""
  # Data.
  flags.DEFINE_string('dataset', _D.dataset, f'Local data set ({", ".join(catalog.LOCAL_DATASETS)}) or a '
                      'tensorflow-datasets catalog name (needs a network the first time, e.g. glue/sst2).')
  flags.DEFINE_string('data_dir', _D.data_dir, 'Folder of the vendored data files.')
  flags.DEFINE_string('tfds_dir', _D.tfds_dir, 'Where tensorflow-datasets keeps prepared data.')
  flags.DEFINE_string('tfds_text_key', _D.tfds_text_key, 'Catalog data sets: the text feature.')
  flags.DEFINE_string('tfds_label_key', _D.tfds_label_key, 'Catalog data sets: the label feature.')
  flags.DEFINE_string('tfds_splits', _D.tfds_splits, 'Catalog data sets: train, dev and test splits, comma-'
                      'separated, in TFDS split syntax. GLUE hides its test labels: e.g. '
                      '"train[:95%],train[95%:],validation" for glue/sst2.')
  flags.DEFINE_string('train_level', _D.train_level, 'Which config of the local data set, default first: ' +
                      '; '.join(f'{name} {"|".join(spec.configs)}' for name, spec in catalog.LOCAL_DATASETS.items()) +
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
