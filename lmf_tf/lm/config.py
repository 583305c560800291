"""Settings of the language-model study, without TensorFlow: the LM configs by name (Zaremba et al. 2014), which
matrices are factorized (Grachev et al. 2017, §3.3-3.4), and one compression run's settings.

Experiment plans build these; `lm.training`, `lm.models` and `lm.compression` carry them out.
"""

import dataclasses
import os

from lmf_tf.compression.rank import rank_for_reduction
from lmf_tf.errors import ConfigError
from lmf_tf.settings import setting

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PTB_DIR = os.path.join(REPO_ROOT, 'data', 'ptb')
QUANTIZATION_BITS = (8, 16)  # the widths `compression.quantization` stores


@dataclasses.dataclass(frozen=True)
class LmConfig:
  """A language-model run: architecture, optimization (Zaremba et al. 2014, §4.1) and run settings."""
  name: str = 'small'

  # Model.
  hidden_size: int = 200  # embedding width = LSTM units = H
  num_layers: int = 2
  dropout: float = 0.0  # on the non-recurrent connections
  init_scale: float = 0.1  # every weight starts from U(-init_scale, init_scale)

  # Truncated BPTT.
  num_steps: int = 20  # T: the unrolled window length
  batch_size: int = 20  # B: parallel streams
  eval_batch_size: int = 1  # valid/test: one stream, so every token but the first is predicted, in one context

  # Optimizer: SGD on the loss summed over the T steps and averaged over the batch, gradients clipped to a global
  # norm, and `schedules.DelayedEpochDecay`.
  learning_rate: float = 1.0
  max_grad_norm: float = 5.0
  epochs: int = 13
  lr_decay: float = 0.5
  decay_after_epochs: int = 4  # the rate is constant for this many epochs, then multiplied by lr_decay per epoch

  # Run.
  max_steps: int | None = None  # stop after this many training steps in all (smoke runs)
  seed: int = 1
  data_dir: str = PTB_DIR
  workdir: str = 'checkpoints'
  results_dir: str = 'results'
  log_every_steps: int | None = None  # progress lines within an epoch; None: about 10 an epoch

  @property
  def run_name(self):
    """`ptb_<config>_seed<s>`, with `_epochs<n>` / `_steps<n>` when they differ from the named config."""
    name = f'ptb_{self.name}'
    preset = LM_CONFIGS.get(self.name)
    if preset is not None and self.epochs != preset.epochs:
      name += f'_epochs{self.epochs}'
    if self.max_steps:
      name += f'_steps{self.max_steps}'
    return f'{name}_seed{self.seed}'

  def validate(self):
    """Returns self, or raises ConfigError naming the setting (as its flag) that is out of range."""
    positive = ('hidden_size', 'num_layers', 'num_steps', 'batch_size', 'eval_batch_size', 'epochs')
    for field in positive:
      if getattr(self, field) < 1:
        raise ConfigError(f'--{field} must be at least 1, got {getattr(self, field)}')
    if self.max_steps is not None and self.max_steps < 1:
      raise ConfigError(f'--max_steps must be at least 1, got {self.max_steps}')
    if not 0 <= self.dropout < 1:
      raise ConfigError(f'--dropout must be in [0, 1), got {self.dropout}')
    if self.init_scale <= 0 or self.learning_rate <= 0 or self.max_grad_norm <= 0:
      raise ConfigError('init_scale, learning_rate and max_grad_norm must be positive')
    if not 0 < self.lr_decay <= 1 or self.decay_after_epochs < 0:
      raise ConfigError(f'need 0 < lr_decay <= 1 and decay_after_epochs >= 0, got {self.lr_decay} and '
                        f'{self.decay_after_epochs}')
    return self


# Zaremba et al. 2014, §4.1 (and the TensorFlow PTB tutorial's SmallConfig / MediumConfig / LargeConfig). Their test
# perplexities: small 114.5, medium 82.7, large 78.4.
LM_CONFIGS = {
    'small': LmConfig(name='small', hidden_size=200, num_steps=20, dropout=0.0, init_scale=0.1, max_grad_norm=5.0,
                      epochs=13, lr_decay=0.5, decay_after_epochs=4),
    'medium': LmConfig(name='medium', hidden_size=650, num_steps=35, dropout=0.5, init_scale=0.05,
                       max_grad_norm=5.0, epochs=39, lr_decay=0.8, decay_after_epochs=6),
    'large': LmConfig(name='large', hidden_size=1500, num_steps=35, dropout=0.65, init_scale=0.04,
                      max_grad_norm=10.0, epochs=55, lr_decay=1 / 1.15, decay_after_epochs=14),
}


@dataclasses.dataclass(frozen=True)
class LmFactorization:
  """Which weight matrices of the LM are stored factorized, and at what rank (Grachev et al. 2017, §3.3-3.4).

  Ranks of the truncated-SVD form (None: dense): `embedding_rank` (V x H), `softmax_rank` (H x V),
  `lstm_input_rank` and `lstm_recurrent_rank` (H x 4H, the same in every layer). TT ranks (None: not TT):
  `embedding_tt_rank` and `softmax_tt_rank`, each matrix cut into `tt_cores` cores over
  `tt_layers.balanced_factors` of its two sides. A matrix is either low-rank or TT, not both.
  """
  embedding_rank: int | None = None
  softmax_rank: int | None = None
  lstm_input_rank: int | None = None
  lstm_recurrent_rank: int | None = None
  embedding_tt_rank: int | None = None
  softmax_tt_rank: int | None = None
  tt_cores: int = 3

  def __post_init__(self):
    for name in ('embedding', 'softmax'):
      if getattr(self, f'{name}_rank') is not None and getattr(self, f'{name}_tt_rank') is not None:
        raise ConfigError(f'the {name} matrix can be low-rank (--{name}_rank) or TT (--{name}_tt_rank), not both')
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if value is not None and value < 1:
        raise ConfigError(f'--{field.name} must be at least 1, got {value}')

  @classmethod
  def from_reduction(cls, reduction, vocab_size, hidden_size, matrices=('embedding', 'softmax', 'lstm')):
    """Ranks that cut each named matrix by R percent: k = floor((1 - R/100) m n / (m + n)) for an m x n matrix
    (`rank_for_reduction`). Worked example, V = 10,000, H = 200, R = 60: embedding and softmax
    k = 78, LSTM input and recurrent (200 x 800) k = 64."""
    unknown = set(matrices) - {'embedding', 'softmax', 'lstm'}
    if unknown:
      raise ConfigError(f'--factorize: unknown matrices {sorted(unknown)}; choose from embedding, softmax, lstm')
    ranks = {}
    if 'embedding' in matrices:
      ranks['embedding_rank'] = rank_for_reduction(reduction, vocab_size, hidden_size)
    if 'softmax' in matrices:
      ranks['softmax_rank'] = rank_for_reduction(reduction, hidden_size, vocab_size)
    if 'lstm' in matrices:
      k = rank_for_reduction(reduction, hidden_size, 4 * hidden_size)
      ranks.update(lstm_input_rank=k, lstm_recurrent_rank=k)
    return cls(**ranks)

  @property
  def factorizes_lstm(self):
    return self.lstm_input_rank is not None or self.lstm_recurrent_rank is not None


def get_lm_config(name, **overrides):
  """The named config (`LM_CONFIGS`) with `overrides` (field=value; None values are ignored), validated."""
  if name not in LM_CONFIGS:
    raise ConfigError(f'--config={name!r} is not a language-model config; choose one of {", ".join(LM_CONFIGS)}')
  return dataclasses.replace(LM_CONFIGS[name], **{k: v for k, v in overrides.items() if v is not None}).validate()


METHODS = ('lowrank', 'prune', 'quantize', 'tt')
MATRICES = ('embedding', 'softmax', 'lstm')


@dataclasses.dataclass(frozen=True)
class LmCompressionConfig:
  """One compression run of a trained LM: the method and its level, and the fine-tuning. Each field is a flag of
  `scripts/compress_lm.py` (`settings.define_flags`)."""
  baseline_dir: str = setting('checkpoints/ptb_small_seed1/final', 'The trained LM to compress (the `final` folder '
                              'written by scripts/train_lm.py).')
  method: str = setting('lowrank', 'lowrank: truncated SVD of the chosen matrices; prune: magnitude pruning to '
                        '--sparsity; quantize: post-training --bits fixed point; tt: tensor-train embedding/softmax '
                        'of --tt_rank.', choices=METHODS)
  # 'lowrank': one reduction R (percent) for every matrix in `matrices`, or ranks per matrix (these win over R).
  reduction: float | None = setting(None, 'lowrank: cut each chosen matrix by R percent, k = floor((1 - R/100) m n '
                                    '/ (m + n)).')
  matrices: tuple = setting(MATRICES, 'Matrices to compress: embedding, softmax, lstm (TT: the first two only).')
  embedding_rank: int | None = setting(None, 'lowrank: the rank of the embedding (V x H); wins over R.')
  softmax_rank: int | None = setting(None, 'lowrank: the rank of the softmax (H x V); wins over R.')
  lstm_input_rank: int | None = setting(None, 'lowrank: the rank of every LSTM input matrix (H x 4H); wins over R.')
  lstm_recurrent_rank: int | None = setting(None, 'lowrank: the rank of every LSTM recurrent matrix (H x 4H); wins '
                                            'over R.')
  sparsity: float | None = setting(None, 'prune: the share of each chosen matrix set to zero, in (0, 1).')
  bits: int = setting(8, 'quantize: 8 or 16.')
  tt_rank: int | None = setting(None, 'tt: the TT rank between cores.')
  tt_cores: int = setting(3, 'tt: cores per matrix (each side factored into this many).')

  # Fine-tuning: SGD, clipped as in training, lr = fine_tune_learning_rate · fine_tune_lr_decay^epoch. The rate
  # was chosen on valid perplexity (docs/ptb.md): far below training's 1.0, because SGD on the factors of a
  # matrix with singular values up to ~80 takes steps up to σ² times larger on the matrix itself.
  fine_tune_epochs: int = setting(2, 'Epochs of SGD after compressing (not for quantize); the epoch with the best '
                                  'valid perplexity is kept, epoch 0 included. An epoch of `small` is 3-5 min here.')
  fine_tune_learning_rate: float = setting(0.003, 'SGD rate of the first fine-tuning epoch.')
  fine_tune_lr_decay: float = setting(0.25, 'Rate multiplier per further epoch.')
  max_steps: int | None = setting(None, 'Stop fine-tuning after this many steps in all (smoke runs).')

  seed: int = setting(1, 'Seeds the fine-tuning.')
  workdir: str = setting('checkpoints', 'Where run directories (checkpoint, vocabulary) go.', identity=False)
  results_dir: str = setting('results', 'Where the results JSON goes.', identity=False)

  def validate(self):
    """Returns self, or raises ConfigError naming the flag that is missing or out of range."""
    if self.method not in METHODS:
      raise ConfigError(f'--method={self.method!r}: choose one of {", ".join(METHODS)}')
    unknown = set(self.matrices) - set(MATRICES)
    if unknown or not self.matrices:
      raise ConfigError(f'--matrices={",".join(self.matrices)}: choose some of {", ".join(MATRICES)}')
    ranks = (self.embedding_rank, self.softmax_rank, self.lstm_input_rank, self.lstm_recurrent_rank)
    if self.method == 'lowrank' and self.reduction is None and all(r is None for r in ranks):
      raise ConfigError('--method=lowrank needs --reduction or at least one of --embedding_rank, --softmax_rank, '
                        '--lstm_input_rank, --lstm_recurrent_rank')
    if self.method == 'prune' and (self.sparsity is None or not 0 < self.sparsity < 1):
      raise ConfigError(f'--method=prune needs 0 < --sparsity < 1, got {self.sparsity}')
    if self.method == 'quantize' and self.bits not in QUANTIZATION_BITS:
      raise ConfigError(f'--bits must be one of {list(QUANTIZATION_BITS)}, got {self.bits}')
    if self.method == 'tt':
      if self.tt_rank is None or self.tt_rank < 1:
        raise ConfigError(f'--method=tt needs --tt_rank >= 1, got {self.tt_rank}')
      if 'lstm' in self.matrices and len(self.matrices) == 1:
        raise ConfigError('--method=tt applies to the embedding and softmax only; --matrices=lstm leaves nothing')
    if self.fine_tune_epochs < 0 or self.fine_tune_learning_rate <= 0 or not 0 < self.fine_tune_lr_decay <= 1:
      raise ConfigError('need --fine_tune_epochs >= 0, --fine_tune_learning_rate > 0 and 0 < --fine_tune_lr_decay '
                        '<= 1')
    if self.max_steps is not None and self.max_steps < 1:
      raise ConfigError(f'--max_steps must be at least 1, got {self.max_steps}')
    return self

  @property
  def tag(self):
    """What the run did, for its name: lowrank_R60, lowrank_e64_s64, prune_s80, quantize_q8, tt16, and the matrices
    when not all (TT: not both of embedding and softmax)."""
    if self.method == 'lowrank':
      per_matrix = [f'{p}{r}' for p, r in (('e', self.embedding_rank), ('s', self.softmax_rank),
                                           ('i', self.lstm_input_rank), ('r', self.lstm_recurrent_rank)) if r]
      tag = 'lowrank_' + ('_'.join(per_matrix) if per_matrix else f'R{self.reduction:g}')
    elif self.method == 'prune':
      tag = f'prune_s{round(100 * self.sparsity):d}'
    elif self.method == 'quantize':
      tag = f'quantize_q{self.bits}'
    else:
      tag = f'tt{self.tt_rank}'
    matrices = tuple(m for m in self.matrices if m != 'lstm') if self.method == 'tt' else tuple(self.matrices)
    default = ('embedding', 'softmax') if self.method == 'tt' else MATRICES
    if matrices != default and self.method != 'quantize':
      tag += '_' + '-'.join(matrices)
    if self.fine_tune_epochs != 2 and self.method != 'quantize':
      tag += f'_ft{self.fine_tune_epochs}'
    if self.max_steps:
      tag += f'_steps{self.max_steps}'
    return tag

  def run_name(self, baseline_run):
    return f'{baseline_run}_{self.tag}'
