"""One flat run configuration for text classification, grouped as in the flags, validated before training."""

import dataclasses

from lmf_tf.errors import ConfigError
from lmf_tf.text import catalog
from lmf_tf.text.catalog import DATA_DIR, DEFAULT_TFDS_DIR

OPTIMIZERS = ('adam', 'sgd', 'adagrad')
LR_SCHEDULES = ('calr', 'clr', 'constant')

# Per-model defaults for the settings left as None in `TrainConfig`, chosen on SST-2 dev accuracy (README,
# "Defaults and why"). The paper's L2 of 0.005 underfits with Keras's L2 (0.005 * sum(w^2)) on LSTM kernels.
MODEL_DEFAULTS = {
    'lstm': dict(epochs=8, lr_upper=3e-3, l2=1e-5, word_dropout=0.0),
    'dan': dict(epochs=6, lr_upper=1e-3, l2=1e-4, word_dropout=0.3),
}


@dataclasses.dataclass
class TrainConfig:
  """Everything a run needs. Fields left None take the model's value from `MODEL_DEFAULTS` (`resolved()`)."""
  # Data.
  dataset: str = 'sst2'
  data_dir: str = DATA_DIR  # the vendored files
  tfds_dir: str = DEFAULT_TFDS_DIR  # where tensorflow-datasets keeps prepared data
  train_level: str | None = None  # a local data set's builder config; None: its default (sst2: phrase)
  tfds_text_key: str = 'sentence'  # for a TFDS catalog data set: its text feature,
  tfds_label_key: str = 'label'  # its label feature,
  tfds_splits: str = 'train,validation,test'  # and its train, dev and test splits (TFDS split syntax)
  max_train_examples: int | None = None  # a small slice, for tests and smoke runs
  max_length: int | None = None
  batch_size: int = 64
  bucket: bool = True

  # Model.
  model: str = 'lstm'
  embeddings_path: str | None = None  # LSTM: default is the data set's vendored GloVe file
  embedding_dim: int = 300  # DAN-RAND (random embedding); the LSTM takes d from the embeddings file
  lstm_units: int = 150
  dropout: float = 0.4
  word_dropout: float | None = None  # DAN: drop tokens in training (Iyyer et al. 2015)
  l2: float | None = None  # paper: 0.005

  # Optimizer and learning rate (paper §3.2).
  optimizer: str = 'adam'
  lr_schedule: str = 'calr'
  learning_rate: float = 1e-3  # for --lr_schedule=constant
  lr_lower: float = 1e-5
  lr_upper: float | None = None
  lr_step_size: int = 500
  lr_decay: float = 0.5

  # Online compression (paper §3.1): R in percent, or the rank directly; when.
  reduction: float | None = None
  rank: int | None = None
  offline: bool = False  # baseline (§3.3): a V x k embedding from the start (SVD of GloVe for the LSTM)
  compress_at_step: int | None = None
  compress_at_epoch: int | None = None

  # Run.
  epochs: int | None = None
  seed: int = 1
  workdir: str = 'checkpoints'
  results_dir: str = 'results'
  resume: bool = False
  tensorboard: bool = True
  eval_every_steps: int | None = None  # also record dev accuracy every N steps (paper Figure 3)
  checkpoint_every_steps: int | None = None  # also save the training state every N steps (mid-epoch resume)
  deterministic: bool = False  # TensorFlow op determinism: a resumed run ends bitwise like an uninterrupted one
  strategy: str = 'default'  # tf.distribute: default, mirrored or multi_worker (lmf_tf/distribution.py)
  cpu_devices: int | None = None  # split the CPU into N logical devices (mirrored training without GPUs)

  def resolved(self):
    """A copy with the model's defaults filled in, the local data set's default config (`--train_level`) if none
    is given, and online compression at the middle epoch if R or rank is given without a step."""
    defaults = MODEL_DEFAULTS.get(self.model, MODEL_DEFAULTS['lstm'])
    config = dataclasses.replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})
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
  def run_name(self):
    """`<dataset>_<model>_R<R>_seed<s>` (R0 = uncompressed; `_k<rank>` when the rank is given directly).

    A local data set's non-default config is part of the data set's name (`clinc150-with_oos_lstm_R90_seed1`),
    so runs on two configs never share a checkpoint or results file.
    """
    tag = f'k{self.rank}' if self.rank is not None else f'R{self.reduction or 0:g}'
    if self.offline:
      tag = 'offline_' + tag
    if (self.optimizer, self.lr_schedule) != ('adam', 'calr'):
      tag += f'_{self.optimizer}-{self.lr_schedule}'
    dataset = self.dataset.replace('/', '-')
    if (self.dataset in catalog.LOCAL_DATASETS and self.train_level is not None
        and self.train_level != catalog.local_config(self.dataset)):
      dataset += f'-{self.train_level}'
    return f'{dataset}_{self.model}_{tag}_seed{self.seed}'

  def validate(self):
    """Raises ConfigError naming the flag for any invalid or inconsistent setting (on a `resolved()` config)."""
    if any(getattr(self, k) is None for k in MODEL_DEFAULTS['lstm']):
      return self.resolved().validate()
    def need(ok, message):
      if not ok:
        raise ConfigError(message)
    if self.dataset in catalog.LOCAL_DATASETS:
      catalog.local_config(self.dataset, self.train_level)  # ConfigError naming the data set's valid configs
    need(len(self.tfds_splits.split(',')) == 3,
         f'--tfds_splits needs three comma-separated splits (train, dev, test), got {self.tfds_splits!r}')
    need(self.optimizer in OPTIMIZERS, f'--optimizer={self.optimizer!r}; choose one of {", ".join(OPTIMIZERS)}')
    need(self.lr_schedule in LR_SCHEDULES, f'--lr_schedule={self.lr_schedule!r}; choose one of {", ".join(LR_SCHEDULES)}')
    need(self.batch_size >= 1, f'--batch_size must be >= 1, got {self.batch_size}')
    need(self.epochs >= 1, f'--epochs must be >= 1, got {self.epochs}')
    need(0 <= self.dropout < 1, f'--dropout must be in [0, 1), got {self.dropout}')
    need(0 <= self.word_dropout < 1, f'--word_dropout must be in [0, 1), got {self.word_dropout}')
    need(self.l2 >= 0, f'--l2 must be >= 0, got {self.l2}')
    need(self.learning_rate > 0, f'--learning_rate must be > 0, got {self.learning_rate}')
    need(self.eval_every_steps is None or self.eval_every_steps >= 1,
         f'--eval_every_steps must be >= 1, got {self.eval_every_steps}')
    need(self.strategy in ('default', 'mirrored', 'multi_worker'),
         f'--strategy={self.strategy!r}; choose one of default, mirrored, multi_worker')
    need(self.cpu_devices is None or self.cpu_devices >= 1, f'--cpu_devices must be >= 1, got {self.cpu_devices}')
    need(self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1,
         f'--checkpoint_every_steps must be >= 1, got {self.checkpoint_every_steps}')
    need(self.max_train_examples is None or self.max_train_examples >= 1,
         f'--max_train_examples must be >= 1, got {self.max_train_examples}')
    need(not (self.reduction is not None and self.rank is not None), 'give only one of --reduction (R) and --rank')
    if self.reduction is not None:
      need(0 < self.reduction < 100, f'--reduction (R) must be a percentage in (0, 100), got {self.reduction:g}')
    if self.rank is not None:
      need(self.rank >= 1, f'--rank must be >= 1, got {self.rank}')
    when = [x for x in (self.compress_at_step, self.compress_at_epoch) if x is not None]
    if self.offline:
      need(self.reduction is not None or self.rank is not None, '--offline needs --reduction (R) or --rank')
      need(not when, '--offline compresses before training: drop --compress_at_step/--compress_at_epoch')
    elif self.compress:
      need(len(when) == 1, 'give only one of --compress_at_step and --compress_at_epoch')
      if self.compress_at_epoch is not None:
        need(0 <= self.compress_at_epoch < self.epochs,
             f'--compress_at_epoch={self.compress_at_epoch} must be in [0, --epochs={self.epochs}) so that '
             'the compressed model is trained and evaluated')
      else:
        need(self.compress_at_step >= 0, f'--compress_at_step must be >= 0, got {self.compress_at_step}')
    else:
      need(not when, '--compress_at_step/--compress_at_epoch given without --reduction (R) or --rank')
    return self


def derived_run_name(run_name, tag):
  """Name of a run derived from `run_name` (e.g. its 8-bit quantization): `<run without seed>_<tag>_seed<s>`.

  >>> derived_run_name('sst2_lstm_R0_seed1', 'q8')
  'sst2_lstm_R0_q8_seed1'
  """
  stem, seed = run_name.rsplit('_seed', 1)
  return f'{stem}_{tag}_seed{seed}'
