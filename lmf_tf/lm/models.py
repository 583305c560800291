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

from lmf_tf.compression import tensor_train as tt_layers
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.lowrank import LowRankDense, LowRankLSTM
from lmf_tf.errors import ConfigError
from lmf_tf.lm.config import LmFactorization


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
