"""Online low-rank compression (Acharya et al. 2019, §3.1): swap a model's embedding for its factors mid-training."""

import keras
from absl import logging

from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.factorization import compress_layer
from lmf_tf.errors import ConfigError


def _to_compressible(layer):
  """clone_model hook: a plain `keras.layers.Embedding` becomes an equivalent `CompressibleEmbedding`."""
  if type(layer) is keras.layers.Embedding:
    return CompressibleEmbedding(layer.input_dim, layer.output_dim, mask_zero=layer.mask_zero,
                                 embeddings_regularizer=layer.embeddings_regularizer, name=layer.name)
  return layer.__class__.from_config(layer.get_config())


def compress_model(model, reduction=None, rank=None):
  """Compresses every word embedding of a built Keras model to low rank; usable without training.

  Models made of `CompressibleEmbedding`s (at any depth, any kind of model) are changed in place. A functional or
  Sequential model with plain top-level `keras.layers.Embedding`s is cloned with `CompressibleEmbedding`s that take
  over the trained weights, and the clone is compressed (the original is left as it was). A plain `Embedding`
  nested in another layer, or in a subclassed model, cannot be reached that way: a ConfigError says so.

  Args:
    model: a built `keras.Model`.
    reduction: R in percent (90 removes 90% of each embedding's parameters), or
    rank: k directly.
  Returns:
    (model, [CompressionReport]): the compressed model (the same object when changed in place).
  """
  inner = {id(l) for c in model._flatten_layers() if isinstance(c, CompressibleEmbedding)
           for l in c._flatten_layers(include_self=False)}
  plain = [l for l in model._flatten_layers() if type(l) is keras.layers.Embedding and id(l) not in inner]
  if any(l not in model.layers for l in plain):
    raise ConfigError(f'{model.name}: embedding {next(l for l in plain if l not in model.layers).name!r} is nested '
                      'inside another layer; build it as lmf_tf.CompressibleEmbedding to compress it')
  if plain:
    if not isinstance(model, keras.Sequential) and not hasattr(model, '_operations'):
      raise ConfigError(f'{model.name}: a subclassed model cannot be cloned; build its embedding as '
                        'lmf_tf.CompressibleEmbedding to compress it in place')
    clone = keras.models.clone_model(model, clone_function=_to_compressible)
    clone.build(model.inputs[0].shape if model.inputs else None)
    for source, target in zip(model.layers, clone.layers):
      if isinstance(target, CompressibleEmbedding):
        target.embedding.set_weights(source.get_weights())
      else:
        target.set_weights(source.get_weights())
    model = clone
  layers = [l for l in model._flatten_layers() if isinstance(l, CompressibleEmbedding) and not l.is_compressed]
  if not layers:
    raise ConfigError(f'model {model.name!r} has no uncompressed embedding layer to compress')
  reports = [compress_layer(layer, reduction=reduction, rank=rank) for layer in layers]
  return model, reports


def rebuild_optimizer(model):
  """A fresh optimizer of the same kind and schedule for the model's current trainable variables.

  The step counter carries over (a learning-rate schedule is a function of it), as do the slot variables
  (moments) of every variable that existed before; new variables (the factors) start from zero state.
  """
  old = model.optimizer
  new = old.__class__.from_config(old.get_config())
  new.build(model.trainable_variables)
  old_slots = {v.path: v for v in old.variables}
  carried = 0
  for v in new.variables:
    source = old_slots.get(v.path)
    if source is not None and tuple(source.shape) == tuple(v.shape):
      v.assign(source)
      carried += 1
  new.iterations.assign(old.iterations)
  model.optimizer = new
  # Every traced function captured the old V x d variable: re-trace training, evaluation and prediction, or
  # `evaluate`/`predict` would go on reading the stale embedding.
  model.make_train_function(force=True)
  model.make_test_function(force=True)
  model.make_predict_function(force=True)
  logging.info('Optimizer rebuilt for %d trainable variables: %d optimizer variables carried over, step %d.',
               len(model.trainable_variables), carried, int(new.iterations.numpy()))
  return new


class OnlineCompression(keras.callbacks.Callback):
  """Swaps the model's embedding for its low-rank factors at a chosen step of `fit` (paper §3.1, online LMF).

  Exactly one of `at_step` (global optimizer step, counted from the start of training) and `at_epoch` (swap
  before this 0-based epoch begins). Training continues with every other trained weight kept; the new factors get
  a fresh optimizer state.
  `reports` holds the `CompressionReport`s; `swap_step` the global step of the swap.
  """

  def __init__(self, reduction=None, rank=None, at_step=None, at_epoch=None):
    super().__init__()
    if (at_step is None) == (at_epoch is None):
      raise ConfigError('give exactly one of --compress_at_step and --compress_at_epoch')
    if (reduction is None) == (rank is None):
      raise ConfigError('give exactly one of R (--reduction) and --rank')
    self.reduction, self.rank = reduction, rank
    self.at_step, self.at_epoch = at_step, at_epoch
    self.reports = []
    self.swap_step = None

  @property
  def done(self):
    return any(l.is_compressed for l in self.model._flatten_layers() if isinstance(l, CompressibleEmbedding))

  def _swap(self):
    with self.model.distribute_strategy.scope():  # new variables are mirrored like the others
      _, self.reports = compress_model(self.model, reduction=self.reduction, rank=self.rank)
      rebuild_optimizer(self.model)
    self.swap_step = int(self.model.optimizer.iterations.numpy())

  def on_train_begin(self, logs=None):
    if self.at_step is not None and not self.done and int(self.model.optimizer.iterations.numpy()) >= self.at_step:
      self._swap()  # --compress_at_step=0: compress before the first step

  def on_epoch_begin(self, epoch, logs=None):
    if self.at_epoch is not None and epoch >= self.at_epoch and not self.done:
      self._swap()

  def on_train_batch_end(self, batch, logs=None):
    if self.at_step is not None and not self.done and int(self.model.optimizer.iterations.numpy()) >= self.at_step:
      self._swap()
