"""The word-level LSTM language model of Zaremba, Sutskever and Vinyals (2014), and its configs by name.

This is the uncompressed model that Grachev, Ignatov and Savchenko (2017, §4-5) start from:

    ids int32[B, T] -> embedding (V x H) -> dropout -> LSTM_1 (H) -> dropout -> LSTM_2 (H) -> dropout
      -> Dense (H x V + V) -> logits float32[B, T, V]

Dropout acts on every non-recurrent connection only, with a fresh mask at each time step (Zaremba et al. 2014,
§3, Figure 2); the recurrent connections are never dropped. Every weight, biases included, starts from
U(-init_scale, init_scale) (§4.1), and the forget gate gets no extra bias. The embedding is a
`layers.CompressibleEmbedding` named `word_embedding` (no padding mask: LM windows are never padded), so it can
be factorized in place later. Parameters with V = 10,000: small 4,651,600, medium 19,775,200, large 66,022,000
(untied embedding and softmax).

Carrying the LSTM state across windows. The model takes the state explicitly: `model(ids, initial_state)`
returns `(logits, final_state)`, with `final_state` ready to be passed as `initial_state` for the next window
(`initial_state=None` is the zero state). The training loop (`lm_training`) holds the state as plain tensors,
starts each epoch (and each evaluation) from `zero_state(batch_size)`, and feeds each window's final state to the
next. This is simpler and safer in Keras 3 than `stateful=True`: a stateful LSTM needs its batch size fixed when
it is built (so training with batch 20 and evaluating with batch 1 needs two models), keeps the state in
variables that end up in `model.weights` (and so in the checkpoint and its size), and is reset through
layer-specific calls; with explicit state the model is a pure function of (weights, ids, state), any batch size
works, and "the output on window 2 after window 1 equals one run over both windows" is directly testable.
"""

import dataclasses

import keras
import numpy as np
from absl import logging
from keras import ops

from lmf_tf import compression, lm_data, tt_layers
from lmf_tf.errors import ConfigError
from lmf_tf.layers import CompressibleEmbedding, LowRankDense, LowRankLSTM


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
  data_dir: str = lm_data.PTB_DIR
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
    (`compression.rank_for_reduction`). Worked example, V = 10,000, H = 200, R = 60: embedding and softmax
    k = 78, LSTM input and recurrent (200 x 800) k = 64."""
    unknown = set(matrices) - {'embedding', 'softmax', 'lstm'}
    if unknown:
      raise ConfigError(f'--factorize: unknown matrices {sorted(unknown)}; choose from embedding, softmax, lstm')
    ranks = {}
    if 'embedding' in matrices:
      ranks['embedding_rank'] = compression.rank_for_reduction(reduction, vocab_size, hidden_size)
    if 'softmax' in matrices:
      ranks['softmax_rank'] = compression.rank_for_reduction(reduction, hidden_size, vocab_size)
    if 'lstm' in matrices:
      k = compression.rank_for_reduction(reduction, hidden_size, 4 * hidden_size)
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


@keras.saving.register_keras_serializable(package='lmf_tf')
class LstmLanguageModel(keras.Model):
  """Stacked-LSTM LM: `(int32[B, T] ids, state) -> (float32[B, T, V] logits, state)` (module docstring).

  A state is a tuple with one `(h, c)` pair per layer, each `float32[B, H]`; None means all zeros.
  """

  def __init__(self, vocab_size, hidden_size, num_layers=2, dropout=0.0, init_scale=0.1, embedding_rank=None,
               factorization=None, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size, self.hidden_size, self.num_layers = int(vocab_size), int(hidden_size), int(num_layers)
    self.dropout_rate, self.init_scale = float(dropout), float(init_scale)
    if isinstance(factorization, dict):
      factorization = LmFactorization(**factorization)
    factorization = factorization or LmFactorization()
    if embedding_rank is not None:  # the older argument, kept so that saved configs load
      factorization = dataclasses.replace(factorization, embedding_rank=embedding_rank)
    self.factorization = factorization

    def uniform():  # a fresh initializer per weight, each drawing its seed from the global one
      return keras.initializers.RandomUniform(-self.init_scale, self.init_scale)

    if factorization.embedding_tt_rank is not None:
      self.word_embedding = tt_layers.TTEmbedding(
          tt_layers.balanced_factors(vocab_size, factorization.tt_cores),
          tt_layers.balanced_factors(hidden_size, factorization.tt_cores), factorization.embedding_tt_rank,
          init_scale=init_scale, name='word_embedding')
    else:
      self.word_embedding = CompressibleEmbedding(vocab_size, hidden_size, rank=factorization.embedding_rank,
                                                  mask_zero=False, embeddings_initializer=uniform(),
                                                  name='word_embedding')
    self.dropouts = [keras.layers.Dropout(self.dropout_rate, name=f'dropout{i}') for i in range(num_layers + 1)]
    if factorization.factorizes_lstm:
      self.lstms = [LowRankLSTM(hidden_size, factorization.lstm_input_rank, factorization.lstm_recurrent_rank,
                                init_scale=init_scale, name=f'lstm{i}') for i in range(num_layers)]
    else:
      self.lstms = [
          keras.layers.LSTM(hidden_size, return_sequences=True, return_state=True, unit_forget_bias=False,
                            kernel_initializer=uniform(), recurrent_initializer=uniform(),
                            bias_initializer=uniform(), name=f'lstm{i}')
          for i in range(num_layers)]
    if factorization.softmax_tt_rank is not None:
      self.softmax = tt_layers.TTDense(
          tt_layers.balanced_factors(hidden_size, factorization.tt_cores),
          tt_layers.balanced_factors(vocab_size, factorization.tt_cores), factorization.softmax_tt_rank,
          init_scale=init_scale, name='softmax')
    elif factorization.softmax_rank is not None:
      self.softmax = LowRankDense(vocab_size, factorization.softmax_rank, init_scale=init_scale, name='softmax')
    else:
      self.softmax = keras.layers.Dense(vocab_size, kernel_initializer=uniform(), bias_initializer=uniform(),
                                        name='softmax')

  def call(self, ids, initial_state=None, training=None):
    """ids: int32[B, T]; initial_state: None or ((h, c),) * num_layers, float32[B, H] each.

    Returns:
      (logits float32[B, T, V], final_state): final_state as initial_state, after the last of the T steps.
    """
    x = self.word_embedding(ids)
    final_state = []
    for i, lstm in enumerate(self.lstms):
      x = self.dropouts[i](x, training=training)
      state = None if initial_state is None else list(initial_state[i])
      x, h, c = lstm(x, initial_state=state, training=training)
      final_state.append((h, c))
    logits = self.softmax(self.dropouts[-1](x, training=training))
    return logits, tuple(final_state)

  def zero_state(self, batch_size):
    """The state at the start of an epoch or evaluation: ((zeros[B, H], zeros[B, H]),) * num_layers."""
    zeros = ops.zeros((batch_size, self.hidden_size), 'float32')
    return tuple((zeros, zeros) for _ in range(self.num_layers))

  def get_config(self):
    return {'name': self.name, 'trainable': self.trainable, 'vocab_size': self.vocab_size,
            'hidden_size': self.hidden_size, 'num_layers': self.num_layers, 'dropout': self.dropout_rate,
            'init_scale': self.init_scale, 'factorization': dataclasses.asdict(self.factorization)}


def build_lm(config, vocab_size, factorization=None):
  """The `LstmLanguageModel` of `config` over a vocabulary of `vocab_size` (with the matrices of `factorization`
  in low-rank or TT form), built (weights created); logs its size."""
  model = LstmLanguageModel(vocab_size, config.hidden_size, config.num_layers, config.dropout, config.init_scale,
                            factorization=factorization, name=f'lstm_lm_{config.name}')
  model(np.zeros((1, 1), np.int32))
  logging.info('Model %s: %d parameters (%s).', model.name, count_params(model),
               ', '.join(f'{layer.name} {count_params(layer)}' for layer in model.layers if layer.weights))
  return model


def count_params(model_or_layer):
  return int(sum(np.prod(w.shape) for w in model_or_layer.weights))
