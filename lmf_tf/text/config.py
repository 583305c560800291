"""One flat run configuration for text classification: every setting once, with its help text, its per-model
default and whether it changes the run's identity. `scripts/train.py`'s flags are generated from it
(`lmf_tf.settings.define_flags`), and experiment plans are lists of these configs. No TensorFlow here.

Settings left None take a default from `MODEL_DEFAULTS` (per model) or `OPTIMIZER_RATES` (per optimizer), chosen on
SST-2 dev accuracy (docs/design.md, "Defaults and why"). The paper's L2 of 0.005 underfits with Keras's L2
(0.005 * sum(w^2)) on LSTM kernels.
"""

import dataclasses
import hashlib
import json
import os

from lmf_tf.compression.rank import warn_if_fraction
from lmf_tf.errors import ConfigError
from lmf_tf.settings import setting
from lmf_tf.text import catalog
from lmf_tf.text.catalog import DATA_DIR, DEFAULT_TFDS_DIR

MODELS = ('lstm', 'dan')
OPTIMIZERS = ('adam', 'sgd', 'adagrad')
LR_SCHEDULES = ('calr', 'clr', 'constant')
RECOVERY_LR = ('continue', 'restart', 'constant')
STRATEGIES = ('default', 'mirrored', 'multi_worker')

MODEL_DEFAULTS = {
    'lstm': dict(epochs=8, lr_upper=3e-3, l2=1e-5, word_dropout=0.0, embedding_dim=None),
    'dan': dict(epochs=6, lr_upper=1e-3, l2=1e-4, word_dropout=0.3, embedding_dim=300),
}
OPTIMIZER_RATES = {'adam': 1e-3, 'sgd': 0.01, 'adagrad': 0.05}  # --learning_rate of a constant schedule
# The recovery options by the name they take in a run's name, with their standard settings: a run
# that uses an option with other settings gets a hash in its name as well.
RECOVERY_OPTIONS = {
    'restart': dict(recovery_lr='restart'),
    'lrconst': dict(recovery_lr='constant', recovery_learning_rate=3e-3),
    'kd': dict(distill_alpha=0.5, distill_temperature=2.0),
    'gradual': dict(gradual_factors='4,2', gradual_every_steps=500),
    'devpeak': dict(compress_at_dev_peak=True, dev_peak_patience=1),
}


@dataclasses.dataclass
class TrainConfig:
  """Everything a run needs. Fields left None take the model's or optimizer's value (`resolved()`)."""
  # Data.
  dataset: str = setting('sst2', f'Local data set ({", ".join(catalog.LOCAL_DATASETS)}) or a tensorflow-datasets '
                         'catalog name (needs a network the first time, e.g. glue/sst2).')
  data_dir: str = setting(DATA_DIR, 'Folder of the vendored data files.', identity=False)
  tfds_dir: str = setting(DEFAULT_TFDS_DIR, 'Where tensorflow-datasets keeps prepared data.', identity=False)
  train_level: str | None = setting(None, 'Which config of the local data set, default first: ' + '; '.join(
      f'{name} {"|".join(spec.configs)}' for name, spec in catalog.LOCAL_DATASETS.items()) + '.')
  tfds_text_key: str = setting('sentence', 'Catalog data sets: the text feature.')
  tfds_label_key: str = setting('label', 'Catalog data sets: the label feature.')
  tfds_splits: str = setting('train,validation,test', 'Catalog data sets: train, dev and test splits in TFDS split '
                             'syntax; GLUE hides its test labels: e.g. "train[:95%],train[95%:],validation".')
  max_train_examples: int | None = setting(None, 'Train on the first N training examples only (smoke runs).')
  max_length: int | None = setting(None, 'Truncate token sequences to this length.')
  batch_size: int = setting(64, 'Examples per mini-batch.')
  bucket: bool = setting(True, 'Bucket batches by sequence length (else pad to the batch maximum).')

  # Model.
  model: str = setting('lstm', 'lstm (GloVe-initialised) or dan (DAN-RAND, random embedding).', choices=MODELS)
  embeddings_path: str | None = setting(None, 'GloVe/word2vec text file for the LSTM (d follows from it); default: '
                                        'the vendored GloVe 6B 50d of the data set.')
  embedding_dim: int | None = setting(None, 'DAN-RAND embedding width (the LSTM takes d from its vectors).')
  lstm_units: int = setting(150, 'LSTM hidden size.')
  dropout: float = setting(0.4, 'Dropout rate (paper: 0.4).')
  word_dropout: float | None = setting(None, 'DAN: drop each token with this probability in training.')
  l2: float | None = setting(None, 'L2 weight on dense and LSTM kernels (paper: 0.005).')

  # Optimizer and learning rate (paper §3.2).
  optimizer: str = setting('adam', 'Optimizer.', choices=OPTIMIZERS)
  lr_schedule: str = setting('calr', 'calr (cyclically annealed), clr (triangular) or constant (--learning_rate).',
                             choices=LR_SCHEDULES)
  learning_rate: float | None = setting(None, 'Rate of --lr_schedule=constant. Default per optimizer: ' + ', '.join(
      f'{k} {v:g}' for k, v in OPTIMIZER_RATES.items()) + '.')
  lr_lower: float = setting(1e-5, 'CLR/CALR lower bound.')
  lr_upper: float | None = setting(None, 'CLR/CALR (initial) upper bound.')
  lr_step_size: int = setting(500, 'CLR/CALR half-cycle, in steps.')
  lr_decay: float = setting(0.5, 'CALR: factor by which the peak decays per cycle.')

  # Online compression (paper §3.1): how much, and when.
  reduction: float | None = setting(None, 'R: percent of the embedding parameters to remove, e.g. 90.')
  rank: int | None = setting(None, 'The rank k of the factorization, instead of --reduction.')
  offline: bool = setting(False, 'Baseline: a rank-k embedding from the start (SVD of GloVe for the LSTM, a random '
                          'V x k embedding for DAN-RAND) instead of online.')
  compress_at_step: int | None = setting(None, 'Compress after this many optimizer steps.')
  compress_at_epoch: int | None = setting(None, 'Compress after this many epochs (default: half of --epochs); with '
                                          '--compress_at_dev_peak, the latest epoch to compress after.')
  compress_at_dev_peak: bool = setting(False, 'Compress when dev accuracy stops improving (--dev_peak_patience '
                                       'epochs), from the weights of the best dev epoch so far.')
  dev_peak_patience: int = setting(1, 'Epochs without a new best dev accuracy before --compress_at_dev_peak swaps.')
  frequency_blocks: int | None = setting(None, 'Spread the embedding\'s k (V + d) numbers over N blocks of word ids '
                                         '(most frequent first), frequent words at higher rank (GroupReduce; '
                                         'lmf_tf.FrequencyRanks with Zipf weights). Off when unset.')

  # Recovery after the swap (beyond the paper).
  recovery_lr: str = setting('continue', 'Learning rate after the swap: continue the schedule, restart it from the '
                             'swap (a fresh CALR/CLR cycle), or constant (--recovery_learning_rate).',
                             choices=RECOVERY_LR)
  recovery_learning_rate: float = setting(3e-3, 'The rate of --recovery_lr=constant.')
  distill_alpha: float | None = setting(None, 'Distil from the model before the swap: loss = alpha CE + (1 - alpha) '
                                        'T^2 KL(teacher_T || student_T). Off when unset.')
  distill_temperature: float = setting(2.0, 'Temperature T of --distill_alpha.')
  gradual_factors: str = setting('', 'Gradual rank reduction: comma-separated factors, e.g. "4,2" swaps to 4k, then '
                                 '2k, then k, every --gradual_every_steps steps.')
  gradual_every_steps: int = setting(500, 'Steps between the swaps of --gradual_factors.')

  # Run.
  epochs: int | None = setting(None, 'Training epochs in all (before and after compression).')
  seed: int = setting(1, 'Seeds weights, dropout and shuffling.')
  workdir: str = setting('checkpoints', 'Where run directories (checkpoints, logs, TensorBoard) go.', identity=False)
  results_dir: str = setting('runs', 'Where the results JSON goes (the reproduction writes results/; your runs go to '
                             'runs/, which git ignores).', identity=False)
  resume: bool = setting(False, 'Continue an interrupted run from its last checkpoint (end of an epoch, or mid-epoch '
                         'with --checkpoint_every_steps).', identity=False)
  stop_after_epoch: int | None = setting(None, 'Stop after this many epochs, the run left resumable (--resume '
                                         'continues it): for time-boxed or preemptible jobs.', identity=False)
  overwrite: bool = setting(False, 'Start afresh over a finished or interrupted run of the same settings, deleting '
                            'its checkpoints (otherwise such a run is refused).', identity=False)
  tensorboard: bool = setting(False, 'Write TensorBoard logs to the run directory.', identity=False)
  eval_every_steps: int | None = setting(None, 'Also record dev accuracy every N steps (Figure 3).', identity=False)
  checkpoint_every_steps: int | None = setting(None, 'Also save the training state every N steps, so that a run '
                                               'killed mid-epoch resumes from there.', identity=False)
  deterministic: bool = setting(False, 'TensorFlow op determinism: with --resume, the run ends bitwise like an '
                                'uninterrupted one.', identity=False)
  strategy: str = setting('default', 'tf.distribute strategy: mirrored = all local GPUs (or --cpu_devices logical '
                          'CPUs); multi_worker = several processes or machines, each with its TF_CONFIG.',
                          choices=STRATEGIES, identity=False)
  cpu_devices: int | None = setting(None, 'Split the CPU into N logical devices (--strategy=mirrored without GPUs).',
                                    identity=False)
  threads: int | None = setting(None, 'Cap TensorFlow\'s thread pools at N threads (e.g. 1 per worker when several '
                                'workers share a machine).', identity=False)
  collective_timeout: float = setting(60.0, '--strategy=multi_worker: seconds a collective may wait for the other '
                                      'workers before the run stops with an error (a worker was lost).',
                                      identity=False)

  def resolved(self):
    """A copy with the model's and optimizer's defaults filled in, the local data set's default config
    (`--train_level`), and online compression after half the epochs if R or rank is given without a time."""
    defaults = MODEL_DEFAULTS.get(self.model, MODEL_DEFAULTS['lstm'])
    config = dataclasses.replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})
    if config.learning_rate is None:
      config.learning_rate = OPTIMIZER_RATES.get(config.optimizer, 1e-3)
    if config.train_level is None and config.dataset in catalog.LOCAL_DATASETS:
      config.train_level = catalog.local_config(config.dataset)
    if config.compress and config.compress_at_step is None and config.compress_at_epoch is None:
      config.compress_at_epoch = config.epochs // 2
    return config

  @property
  def compress(self):
    """True for online compression during training (R or rank given, not --offline)."""
    return (self.reduction is not None or self.rank is not None) and not self.offline

  @property
  def method(self):
    if self.offline:
      return 'offline'
    return 'online' if self.compress else 'uncompressed'

  @property
  def recipe(self):
    """The recovery options in use (`RECOVERY_OPTIONS`), for the run's name: e.g. 'restart-kd-gradual-devpeak',
    '' for the paper's."""
    parts = []
    if self.recovery_lr != 'continue':
      parts.append('restart' if self.recovery_lr == 'restart' else 'lrconst')
    if self.distill_alpha is not None:
      parts.append('kd')
    if self.gradual_factors:
      parts.append('gradual')
    if self.compress_at_dev_peak:
      parts.append('devpeak')
    return '-'.join(parts)

  def non_default_settings(self):
    """{setting: value} of the identity settings that differ from the defaults of a run with the same name parts
    (data set, model, R or rank, method, optimizer, schedule, recipe and seed)."""
    config = self.resolved()
    named = ('dataset', 'train_level', 'model', 'reduction', 'rank', 'offline', 'optimizer', 'lr_schedule', 'seed',
             'frequency_blocks')
    standard = {k: v for option in config.recipe.split('-') if option for k, v in RECOVERY_OPTIONS[option].items()}
    reference = TrainConfig(**{name: getattr(config, name) for name in named}, **standard).resolved()
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(self)
            if f.metadata['identity'] and f.name not in named and getattr(config, f.name) != getattr(reference, f.name)
            and not (f.name == 'embedding_dim' and config.model == 'lstm')}  # the LSTM's d comes from its vectors

  @property
  def run_name(self):
    """`<dataset>_<model>_R<R>[_<optimizer>-<schedule>][_fb<blocks>][_<recipe>][_h<hash>]_seed<s>`.

    R0 is uncompressed; `_k<rank>` when the rank is given directly; `offline_` before R for the baseline. A local
    data set's non-default config joins its name (`clinc150-with_oos`). Any other setting that differs from its
    default adds `_h` and 6 hex digits of the sha256 of those settings, so two runs that differ in any setting
    never share a run directory or results file (`non_default_settings` lists them; the results JSON has all).
    """
    config = self.resolved()
    tag = f'k{config.rank}' if config.rank is not None else f'R{config.reduction or 0:g}'
    if config.offline:
      tag = 'offline_' + tag
    if (config.optimizer, config.lr_schedule) != ('adam', 'calr'):
      tag += f'_{config.optimizer}-{config.lr_schedule}'
    if config.frequency_blocks:
      tag += f'_fb{config.frequency_blocks}'
    if config.recipe:
      tag += f'_{config.recipe}'
    others = self.non_default_settings()
    if others:
      tag += '_h' + hashlib.sha256(json.dumps(others, sort_keys=True).encode()).hexdigest()[:6]
    dataset = config.dataset.replace('/', '-')
    if (config.dataset in catalog.LOCAL_DATASETS and config.train_level is not None
        and config.train_level != catalog.local_config(config.dataset)):
      dataset += f'-{config.train_level}'
    return f'{dataset}_{config.model}_{tag}_seed{config.seed}'

  def validate(self):
    """Raises ConfigError naming the flag for any invalid or inconsistent setting; checks what it can without
    loading data (files exist, names are known, numbers are in range). Returns the resolved config."""
    if any(getattr(self, k) is None for k in ('epochs', 'l2', 'word_dropout', 'lr_upper', 'learning_rate')):
      return self.resolved().validate()

    def need(ok, message):
      if not ok:
        raise ConfigError(message)
    if self.dataset in catalog.LOCAL_DATASETS:
      catalog.local_config(self.dataset, self.train_level)  # ConfigError naming the data set's valid configs
      need(os.path.isdir(self.data_dir), f'--data_dir={self.data_dir} is not a folder')
    need(len(self.tfds_splits.split(',')) == 3,
         f'--tfds_splits needs three comma-separated splits (train, dev, test), got {self.tfds_splits!r}')
    for field in dataclasses.fields(self):
      choices = field.metadata['choices']
      need(choices is None or getattr(self, field.name) in choices,
           f'--{field.name}={getattr(self, field.name)!r}; choose one of {", ".join(choices or ())}')
    if self.embeddings_path is not None:
      need(self.model == 'lstm', '--embeddings_path is for --model=lstm (DAN-RAND starts from random vectors)')
      need(os.path.isfile(self.embeddings_path), f'--embeddings_path={self.embeddings_path}: no such file')
    if self.embedding_dim is not None:
      need(self.model == 'dan', '--embedding_dim is for --model=dan (the LSTM takes d from its vectors)')
      need(self.embedding_dim >= 1, f'--embedding_dim must be >= 1, got {self.embedding_dim}')
    for name in ('batch_size', 'epochs', 'lstm_units', 'lr_step_size', 'dev_peak_patience'):
      need(getattr(self, name) >= 1, f'--{name} must be >= 1, got {getattr(self, name)}')
    for name in ('max_train_examples', 'max_length', 'eval_every_steps', 'checkpoint_every_steps', 'cpu_devices',
                 'stop_after_epoch', 'threads'):
      need(getattr(self, name) is None or getattr(self, name) >= 1, f'--{name} must be >= 1, got {getattr(self, name)}')
    need(0 <= self.dropout < 1, f'--dropout must be in [0, 1), got {self.dropout}')
    need(0 <= self.word_dropout < 1, f'--word_dropout must be in [0, 1), got {self.word_dropout}')
    need(self.l2 >= 0, f'--l2 must be >= 0, got {self.l2}')
    need(self.learning_rate > 0, f'--learning_rate must be > 0, got {self.learning_rate}')
    need(0 <= self.lr_lower < self.lr_upper,
         f'need 0 <= --lr_lower < --lr_upper, got {self.lr_lower:g} and {self.lr_upper:g}')
    need(0 < self.lr_decay < 1, f'--lr_decay must be in (0, 1), got {self.lr_decay}')
    need(self.collective_timeout > 0, f'--collective_timeout must be > 0 seconds, got {self.collective_timeout}')
    need(not (self.reduction is not None and self.rank is not None), 'give only one of --reduction (R) and --rank')
    if self.reduction is not None:
      need(0 < self.reduction < 100, f'--reduction (R) must be a percentage in (0, 100), got {self.reduction:g}')
      warn_if_fraction(self.reduction, '--reduction')
    if self.rank is not None:
      need(self.rank >= 1, f'--rank must be >= 1, got {self.rank}')
    self._validate_when()
    self._validate_recovery()
    return self

  def _validate_when(self):
    when = [name for name in ('compress_at_step', 'compress_at_epoch') if getattr(self, name) is not None]
    if self.offline:
      if self.reduction is None and self.rank is None:
        raise ConfigError('--offline needs --reduction (R) or --rank')
      if when or self.compress_at_dev_peak:
        raise ConfigError('--offline compresses before training: drop --compress_at_step/--compress_at_epoch/'
                          '--compress_at_dev_peak')
    elif not self.compress:
      if when or self.compress_at_dev_peak:
        raise ConfigError(f'--{when[0] if when else "compress_at_dev_peak"} given without --reduction (R) or --rank')
    else:
      if len(when) != 1 or (self.compress_at_dev_peak and when != ['compress_at_epoch']):
        raise ConfigError('give only one of --compress_at_step and --compress_at_epoch (with --compress_at_dev_peak, '
                          '--compress_at_epoch is the latest epoch)')
      if self.compress_at_epoch is not None and not 0 <= self.compress_at_epoch < self.epochs:
        raise ConfigError(f'--compress_at_epoch={self.compress_at_epoch} must be in [0, --epochs={self.epochs}) so '
                          'that the compressed model is trained and evaluated')
      if self.compress_at_step is not None and self.compress_at_step < 0:
        raise ConfigError(f'--compress_at_step must be >= 0, got {self.compress_at_step}')

  def _validate_recovery(self):
    recovery = self.recipe
    if recovery and not self.compress:
      raise ConfigError(f'the recovery options ({recovery}) act after an online swap: give --reduction or --rank')
    if self.recovery_learning_rate <= 0:
      raise ConfigError(f'--recovery_learning_rate must be > 0, got {self.recovery_learning_rate}')
    if self.distill_alpha is not None and not 0 <= self.distill_alpha <= 1:
      raise ConfigError(f'--distill_alpha must be in [0, 1], got {self.distill_alpha}')
    if self.distill_temperature <= 0:
      raise ConfigError(f'--distill_temperature must be > 0, got {self.distill_temperature}')
    if self.frequency_blocks is not None:
      if not self.compress:
        raise ConfigError('--frequency_blocks spreads the ranks of an online swap: give --reduction or --rank, '
                          'without --offline')
      if self.frequency_blocks < 2:
        raise ConfigError(f'--frequency_blocks={self.frequency_blocks}: give 2 or more blocks')
      if self.gradual_factors:
        raise ConfigError('--frequency_blocks and --gradual_factors do not go together (the blocks are made once)')
    if self.gradual_every_steps < 1:
      raise ConfigError(f'--gradual_every_steps must be >= 1, got {self.gradual_every_steps}')
    if self.gradual_factors:
      factors = self.gradual_factor_list
      if not factors or any(f <= 1 for f in factors) or factors != sorted(set(factors), reverse=True):
        raise ConfigError(f'--gradual_factors={self.gradual_factors!r}: give decreasing numbers > 1, e.g. 4,2')

  @property
  def gradual_factor_list(self):
    try:
      return [int(f) for f in self.gradual_factors.split(",")] if self.gradual_factors else []
    except ValueError:
      raise ConfigError(f'--gradual_factors={self.gradual_factors!r}: give comma-separated numbers, e.g. 4,2') from None


def derived_run_name(run_name, tag):
  """Name of a run derived from `run_name` (e.g. its 8-bit quantization): `<run without seed>_<tag>_seed<s>`.

  >>> derived_run_name('sst2_lstm_R0_seed1', 'q8')
  'sst2_lstm_R0_q8_seed1'
  """
  stem, seed = run_name.rsplit('_seed', 1)
  return f'{stem}_{tag}_seed{seed}'


@dataclasses.dataclass(frozen=True)
class QuantizeConfig:
  """Post-training quantization of a trained classifier (`scripts/quantize.py`, `post_training`)."""
  checkpoint_dir: str = setting('', 'A `best/` directory written by scripts/train.py.')
  method: str = setting('fixed_point', 'Our fixed-point quantizer or Keras int8.', choices=('fixed_point',
                                                                                         'keras_int8'))
  bits: int = setting(8, 'Fixed-point width: 8 or 16.')
  per_channel: bool = setting(False, 'One scale per output column (per word of an embedding) instead of one per '
                              'tensor.')
  results_dir: str = setting('runs', 'Where the results JSON goes.', identity=False)
