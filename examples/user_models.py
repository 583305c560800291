"""Text classifiers in the shapes of the Keras examples, written the way a user writes them (no lmf_tf inside):

  - 'transformer': `text_classification_with_transformer`: a `TokenAndPositionEmbedding` layer that creates a
    token and a position `keras.layers.Embedding` in its `__init__`, a `TransformerBlock`, average pooling;
  - 'conv1d': `text_classification_from_scratch`: Embedding, Dropout, two strided Conv1D, max pooling, Dense;
  - 'bilstm': `bidirectional_lstm_imdb`: Embedding, two Bidirectional LSTMs;
  - 'strings': the end-to-end model of `text_classification_from_scratch`: strings in, `TextVectorization` inside;
  - 'subclassed': a subclassed `keras.Model` holding an Embedding.

Each builder takes the vocabulary size, the embedding width and the sequence length, and returns an uncompiled
model with a 2-way softmax. The custom classes are registered with `keras.saving`, as the user's own code would do,
so a `.keras` file of them loads in any process that imports this module (and lmf_tf).
"""

import keras
from keras import layers


@keras.saving.register_keras_serializable(package='user_models')
class TokenAndPositionEmbedding(layers.Layer):
  """As in the Keras example: the two embeddings are created in `__init__`; `get_config` has only the sizes."""

  def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
    super().__init__(**kwargs)
    self.maxlen, self.vocab_size, self.embed_dim = maxlen, vocab_size, embed_dim
    self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
    self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

  def call(self, x):
    positions = keras.ops.arange(start=0, stop=keras.ops.shape(x)[-1], step=1)
    return self.token_emb(x) + self.pos_emb(positions)

  def get_config(self):
    return {**super().get_config(), 'maxlen': self.maxlen, 'vocab_size': self.vocab_size, 'embed_dim': self.embed_dim}


@keras.saving.register_keras_serializable(package='user_models')
class TransformerBlock(layers.Layer):
  def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
    super().__init__(**kwargs)
    self.embed_dim, self.num_heads, self.ff_dim, self.rate = embed_dim, num_heads, ff_dim, rate
    self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
    self.ffn = keras.Sequential([layers.Dense(ff_dim, activation='relu'), layers.Dense(embed_dim)])
    self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
    self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
    self.dropout1 = layers.Dropout(rate)
    self.dropout2 = layers.Dropout(rate)

  def call(self, inputs, training=False):
    out1 = self.layernorm1(inputs + self.dropout1(self.att(inputs, inputs), training=training))
    return self.layernorm2(out1 + self.dropout2(self.ffn(out1), training=training))

  def get_config(self):
    return {**super().get_config(), 'embed_dim': self.embed_dim, 'num_heads': self.num_heads,
            'ff_dim': self.ff_dim, 'rate': self.rate}


def transformer(vocab_size, dim, maxlen):
  inputs = keras.Input(shape=(maxlen,), dtype='int32')
  x = TokenAndPositionEmbedding(maxlen, vocab_size, dim)(inputs)
  x = TransformerBlock(dim, 2, dim)(x)
  x = layers.GlobalAveragePooling1D()(x)
  x = layers.Dropout(0.1)(x)
  x = layers.Dense(20, activation='relu')(x)
  x = layers.Dropout(0.1)(x)
  return keras.Model(inputs=inputs, outputs=layers.Dense(2, activation='softmax')(x))


def conv1d(vocab_size, dim, maxlen):
  inputs = keras.Input(shape=(maxlen,), dtype='int64')
  x = layers.Embedding(vocab_size, dim)(inputs)
  x = layers.Dropout(0.5)(x)
  x = layers.Conv1D(32, 5, padding='valid', activation='relu', strides=2)(x)
  x = layers.Conv1D(32, 5, padding='valid', activation='relu', strides=2)(x)
  x = layers.GlobalMaxPooling1D()(x)
  x = layers.Dense(32, activation='relu')(x)
  x = layers.Dropout(0.5)(x)
  return keras.Model(inputs, layers.Dense(2, activation='softmax', name='predictions')(x))


def bilstm(vocab_size, dim, maxlen):
  inputs = keras.Input(shape=(maxlen,), dtype='int32')
  x = layers.Embedding(vocab_size, dim)(inputs)
  x = layers.Bidirectional(layers.LSTM(16, return_sequences=True))(x)
  x = layers.Bidirectional(layers.LSTM(16))(x)
  return keras.Model(inputs, layers.Dense(2, activation='softmax')(x))


def strings(vocab_size, dim, maxlen, texts):
  """Strings in: a `TextVectorization` adapted on `texts` (at most `vocab_size` tokens, `maxlen` ids a text)."""
  vectorize = layers.TextVectorization(max_tokens=vocab_size, output_mode='int', output_sequence_length=maxlen)
  vectorize.adapt(texts)
  inputs = keras.Input(shape=(1,), dtype='string')
  x = layers.Embedding(vectorize.vocabulary_size(), dim)(vectorize(inputs))
  x = layers.GlobalAveragePooling1D()(x)
  x = layers.Dense(16, activation='relu')(x)
  return keras.Model(inputs, layers.Dense(2, activation='softmax')(x))


@keras.saving.register_keras_serializable(package='user_models')
class BagOfWords(keras.Model):
  """A subclassed model: an embedding, average pooling, a hidden layer."""

  def __init__(self, vocab_size, dim, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size, self.dim = vocab_size, dim
    self.words = layers.Embedding(vocab_size, dim)
    self.hidden = layers.Dense(16, activation='relu')
    self.out = layers.Dense(2, activation='softmax')

  def call(self, ids):
    return self.out(self.hidden(keras.ops.mean(self.words(ids), axis=1)))

  def get_config(self):
    return {**super().get_config(), 'vocab_size': self.vocab_size, 'dim': self.dim}


def subclassed(vocab_size, dim, maxlen):
  del maxlen
  return BagOfWords(vocab_size, dim)


BUILDERS = {'transformer': transformer, 'conv1d': conv1d, 'bilstm': bilstm, 'strings': strings,
            'subclassed': subclassed}
