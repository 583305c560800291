"""Text classifiers of Acharya et al. 2019, §5.2, as functional Keras models, picked by name from `MODELS`.

Inputs are `int32[batch, T]` token ids (0 = padding, masked); outputs `float32[batch, num_classes]` softmax
probabilities. The word embedding is always a `CompressibleEmbedding` named `word_embedding`, so it can
be compressed online.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from lmf_tf.errors import ConfigError
from lmf_tf.compression.embedding import CompressibleEmbedding


@keras.saving.register_keras_serializable(package='lmf_tf')
class WordDropout(keras.layers.Layer):
  """Drops whole tokens during training (Iyyer et al. 2015, DAN §3): `int[batch, T]` ids -> ids with some set to 0.

  Each non-padding token is replaced by the padding id 0 (so the embedding masks it) with probability `rate`. A
  sequence that would lose every token keeps all of them. Identity at inference.
  """

  def __init__(self, rate, seed=None, **kwargs):
    super().__init__(**kwargs)
    self.rate = float(rate)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, ids, training=None):
    if not training or self.rate == 0:
      return ids
    keep = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) >= self.rate
    dropped = ops.where(keep, ids, ops.zeros_like(ids))
    any_left = ops.any(ops.not_equal(dropped, 0), axis=1, keepdims=True)
    return ops.where(any_left, dropped, ids)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'rate': self.rate, 'seed': self.seed}



@dataclasses.dataclass
class ModelConfig:
  """Architecture settings (paper §5.2 defaults)."""
  vocab_size: int
  num_classes: int = 2
  embedding_dim: int = 300  # DAN-RAND: 300; LSTM: follows the pre-trained vectors (50 for the vendored GloVe).
  lstm_units: int = 150
  dan_hidden: tuple = (1024, 512)
  dropout: float = 0.4
  word_dropout: float = 0.0  # DAN only: probability of dropping each token while training (Iyyer et al. 2015)
  l2: float = 1e-5
  embedding_rank: int | None = None  # build the embedding already factorized (offline LMF / restoring)


def model_config(config, vocab_size, num_classes, embedding_dim, rank=None):
  """The architecture (`ModelConfig`) a run's `TrainConfig` asks for, with a V x d (or rank-k) embedding."""
  return ModelConfig(vocab_size=vocab_size, num_classes=num_classes, embedding_dim=embedding_dim,
                            lstm_units=config.lstm_units, dropout=config.dropout, word_dropout=config.word_dropout,
                            l2=config.l2, embedding_rank=rank)


def _regularizer(l2):
  return keras.regularizers.L2(l2) if l2 > 0 else None


def _embedding(config, initial_matrix=None):
  if initial_matrix is not None:
    if initial_matrix.shape != (config.vocab_size, config.embedding_dim):
      raise ValueError(f'initial embedding {initial_matrix.shape} != ({config.vocab_size}, {config.embedding_dim})')
    initializer = keras.initializers.Constant(initial_matrix)
  else:
    initializer = keras.initializers.RandomUniform(-0.05, 0.05)
  return CompressibleEmbedding(config.vocab_size, config.embedding_dim, rank=config.embedding_rank,
                               mask_zero=True, embeddings_initializer=initializer, name='word_embedding')


def lstm_classifier(config, initial_embeddings=None):
  """LSTM: (GloVe-initialised) trainable embedding -> dropout -> LSTM(units), final state -> dropout -> softmax.

  The final time step's state is the last *unmasked* step (Keras LSTM with a mask), i.e. the sentence vector.
  """
  ids = keras.Input(shape=(None,), dtype='int32', name='token_ids')
  x = _embedding(config, initial_embeddings)(ids)
  x = keras.layers.Dropout(config.dropout, name='embedding_dropout')(x)
  x = keras.layers.LSTM(config.lstm_units, kernel_regularizer=_regularizer(config.l2),
                        recurrent_regularizer=_regularizer(config.l2), name='lstm')(x)
  x = keras.layers.Dropout(config.dropout, name='sentence_dropout')(x)
  probs = keras.layers.Dense(config.num_classes, activation='softmax', kernel_regularizer=_regularizer(config.l2),
                             name='classifier')(x)
  return keras.Model(ids, probs, name='lstm')


def dan_classifier(config, initial_embeddings=None):
  """DAN-RAND (Iyyer et al. 2015): random embedding -> masked average -> Dense 1024 ReLU -> Dense 512 ReLU -> softmax.

  Dropout follows each hidden layer; optional word dropout removes tokens from the average while training.
  """
  ids = keras.Input(shape=(None,), dtype='int32', name='token_ids')
  tokens = WordDropout(config.word_dropout, name='word_dropout')(ids) if config.word_dropout > 0 else ids
  x = _embedding(config, initial_embeddings)(tokens)
  x = keras.layers.GlobalAveragePooling1D(name='average')(x)  # Uses the padding mask.
  for i, units in enumerate(config.dan_hidden):
    x = keras.layers.Dense(units, activation='relu', kernel_regularizer=_regularizer(config.l2), name=f'hidden{i}')(x)
    x = keras.layers.Dropout(config.dropout, name=f'dropout{i}')(x)
  probs = keras.layers.Dense(config.num_classes, activation='softmax', kernel_regularizer=_regularizer(config.l2),
                             name='classifier')(x)
  return keras.Model(ids, probs, name='dan')


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  build: object
  uses_pretrained_embeddings: bool


MODELS = {
    'lstm': ModelSpec(lstm_classifier, uses_pretrained_embeddings=True),
    'dan': ModelSpec(dan_classifier, uses_pretrained_embeddings=False),
}


def get_model_spec(name):
  if name not in MODELS:
    raise ConfigError(f'--model={name!r} is not a model; choose one of {", ".join(sorted(MODELS))}')
  return MODELS[name]


def word_embedding(model):
  """The model's `CompressibleEmbedding`."""
  return model.get_layer('word_embedding')


def count_params(model_or_layer):
  """Numbers stored in every weight of a model or layer."""
  return int(sum(np.prod(w.shape) for w in model_or_layer.weights))
