"""Compress the embeddings of a user's own Keras model in place: inside a custom training loop (`swap_embeddings`)
or after training (`compress_model`); the pieces `OnlineCompression` (online.py) uses during `fit`. Acharya et al.
2019, §3.1.

Every `keras.layers.Embedding` of the model (at any depth: functional, Sequential, subclassed, or nested inside
another layer) with at least a tenth of the rows of the largest one, or those `layers` selects (`select_embeddings`),
becomes a `CompressibleEmbedding` holding U_k Σ_k (V x k) and V_kᵀ
(k x d) and nothing else of W (`embedding.py`). Every other weight stays as it was. An optimizer built for the old
V x d variable cannot update the new ones, so it is replaced by one of the same kind and config that carries the
step and every other variable's slots (moments); the factors start from zero state (`carry_optimizer`).

A tied embedding is refused when another layer holds its variable (a softmax sharing the V x d matrix would no
longer be the same matrix); one that reads the layer's `embeddings` property works, since that property is the
product U_k Σ_k V_kᵀ after the swap.
"""

import dataclasses

import keras
from absl import logging

from lmf_tf.compression import nested
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.factorization import compress_layer
from lmf_tf.compression import frequency as frequency_lib
from lmf_tf.compression.frequency import FrequencyRanks
from lmf_tf.compression.rank import target_rank, warn_if_fraction
from lmf_tf.errors import ConfigError


# The default leaves alone an embedding with fewer rows than this share of the largest embedding's rows.
MIN_ROW_SHARE = 0.1


@dataclasses.dataclass
class Selection:
  """The embeddings to compress (`chosen`) and those the default rule leaves alone (`left_alone`)."""
  chosen: list
  left_alone: list

  def left_alone_line(self):
    """One line naming the embeddings left alone and why, or '' if none."""
    if not self.left_alone:
      return ''
    largest = max(l.input_dim for l in self.chosen)
    tables = ', '.join(f'{l.name} ({l.input_dim} x {l.output_dim})' for l in self.left_alone)
    return (f'left alone: {tables}: fewer than {MIN_ROW_SHARE:.0%} of the rows of the largest embedding ({largest}), '
            'where factorizing saves little or nothing of the exported file; name them in layers= to compress them')


def select_embeddings(model, layers=None, caller='compress_model'):
  """The embeddings of `model` to compress, and those the default leaves alone (a `Selection`).

  Candidates: every `keras.layers.Embedding` or `CompressibleEmbedding` at any depth (other subclasses of
  `Embedding` have their own call path: skipped with a warning, or an error when named). `layers`:
    None (default): every candidate with at least MIN_ROW_SHARE (10%) of the rows of the largest one: the word
      embeddings; a small table beside them (a position embedding of a few hundred rows next to a vocabulary of
      thousands, a table of a few categories) is left alone, since its factors save few or no bytes (a 48 x 32
      position table factorized at R = 90 made a transformer's int8 TFLite file 392 bytes larger: docs/library.md);
    a name or attribute path, or a list of them: 'words', 'token_and_position_embedding.token_emb' (see
      `nested.attribute_paths`), or the end of one path: 'token_emb';
    a class: the embeddings of that class, or held at any depth by a layer of that class;
    a callable: the candidates for which `layers(layer)` is true.
  Raises ConfigError (naming `caller` and its `layers=` argument) for a model without a candidate, a name or path
  that is not one, or a class or predicate that selects none.
  """
  found, skipped = [], []
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access  (Keras's own walk)
    if isinstance(layer, keras.layers.Embedding) and layer not in found + skipped:
      (found if type(layer) in (keras.layers.Embedding, CompressibleEmbedding) else skipped).append(layer)
  if layers is None:
    for layer in skipped:
      logging.warning('%s: %s is a %s; only %s are compressed', caller, layer.name, type(layer).__name__,
                      EMBEDDING_CLASSES)
    if not found:
      raise ConfigError(f'{caller}: model {model.name!r} has no keras.layers.Embedding to compress')
    largest = max(l.input_dim for l in found)
    return Selection([l for l in found if l.input_dim >= MIN_ROW_SHARE * largest],
                     [l for l in found if l.input_dim < MIN_ROW_SHARE * largest])
  return select_named(model, layers, found, skipped, Family('embedding', EMBEDDING_CLASSES), caller)


@dataclasses.dataclass(frozen=True)
class Family:
  """The kind of layer a selection picks among: its `noun` and the `classes` lmf_tf factorizes, for messages."""
  noun: str
  classes: str


EMBEDDING_CLASSES = 'keras.layers.Embedding and lmf_tf.layers.CompressibleEmbedding'


def select_named(model, layers, found, skipped, family, caller):
  """The layers of `found` that `layers` selects, as a `Selection` with none left alone: a class (those of it, or
  held at any depth by a layer of it), a predicate, or names and attribute paths (a name may be the end of one
  path). `skipped` are layers of the family lmf_tf cannot factorize (subclasses with their own call path): named,
  they are refused. Raises ConfigError naming `caller` and its `layers=` argument."""
  if isinstance(layers, type) or (callable(layers) and not isinstance(layers, str)):
    chosen = [l for l in found if _selected(model, l, layers)]
    if not chosen:
      raise ConfigError(f'{caller}(layers={layers!r}): selects none of the {family.noun}s of model {model.name!r} '
                        f'({", ".join(repr(l.name) for l in found) or "none"})')
    return Selection(chosen, [])
  names = [layers] if isinstance(layers, str) else layers
  if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
    raise ConfigError(f'{caller}(layers={layers!r}): give layer names or attribute paths, a layer class or a '
                      'function of the layer')
  paths = nested.attribute_paths(model)
  by_name = {**{layer.name: layer for layer in found + skipped},
             **{paths[id(layer)]: layer for layer in found + skipped if id(layer) in paths}}
  for name in names:  # the end of a path, if it ends one path only: 'token_emb', 'encoder.words'
    ends = [l for l in found + skipped if paths.get(id(l), '').endswith('.' + name)]
    if name not in by_name and len(ends) == 1:
      by_name[name] = ends[0]
  unknown = [name for name in names if name not in by_name]
  if unknown:
    known = ', '.join(repr(paths.get(id(l), l.name)) for l in found + skipped) or 'none'
    raise ConfigError(f'{caller}(layers={list(names)!r}): model {model.name!r} has no {family.noun} named '
                      f'{", ".join(map(repr, unknown))}; its {family.noun}s are {known}')
  for name in names:
    if by_name[name] in skipped:
      raise ConfigError(f'{caller}(layers=...): {name!r} is a {type(by_name[name]).__name__}; only '
                        f'{family.classes} can be compressed')
  return Selection(list(dict.fromkeys(by_name[name] for name in names)), [])


def _selected(model, layer, layers):
  if not isinstance(layers, type):
    return bool(layers(layer))
  return isinstance(layer, layers) or any(isinstance(owner, layers) for owner in nested.owners(model, layer))


def find_embeddings(model, layers=None, caller='compress_model'):
  """`select_embeddings(...).chosen`: the embeddings to compress."""
  return select_embeddings(model, layers, caller).chosen


def check_not_tied(model, layer, caller='compress_model'):
  """Raises ConfigError if another layer of `model` holds `layer`'s embedding matrix as its own weight (a tied
  softmax): factorizing it would untie the two."""
  if getattr(layer, 'rank', None) is not None or not layer.built:
    return  # unbuilt: nothing to share yet
  matrix = layer._embeddings  # pylint: disable=protected-access
  for other in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if other is not layer and any(v is matrix for v in other._trainable_variables + other._non_trainable_variables):  # pylint: disable=protected-access
      raise ConfigError(
          f'{caller}: embedding {layer.name!r} is tied to layer {other.name!r}, which holds the same V x d variable; '
          'factorizing it would untie them. Read the matrix through the embedding layer\'s `embeddings` property in '
          f'{other.name!r} (it becomes U_k Σ_k V_kᵀ), or leave {layer.name!r} out with layers=[...]')


def final_ranks(embeddings, reduction=None, rank=None, caller='compress_model'):
  """{layer name: k} for each embedding, from R (`reduction`) or `rank`; errors name `caller`, its argument and
  the embedding."""
  ranks = {}
  for layer in embeddings:
    try:
      ranks[layer.name] = target_rank(layer.input_dim, layer.output_dim, reduction, rank)
    except ConfigError as e:
      raise ConfigError(f'{caller}: {e} (embedding {layer.name!r})') from None
  return ranks


def checked_ranks(model, embeddings, reduction=None, rank=None, caller='compress_model'):
  """`final_ranks` of `embeddings` once none of them is tied (`check_not_tied`): what every entry point checks
  before it factorizes."""
  for layer in embeddings:
    check_not_tied(model, layer, caller)
  return final_ranks(embeddings, reduction, rank, caller)


def carry_optimizer(optimizer, variables, learning_rate=None):
  """A new optimizer of `optimizer`'s class and config (or with `learning_rate`) built for `variables`.

  The step counter and the slots of every variable the old optimizer already had (matched by the slot's name,
  which Keras derives from the variable's path) are copied over; new variables (the factors) start from zero.
  """
  config = optimizer.get_config()
  if learning_rate is not None:
    config['learning_rate'] = learning_rate
  new = type(optimizer).from_config(config)
  new.build(variables)
  old = {v.name: v for v in optimizer.variables}
  carried = 0
  for v in new.variables:
    source = old.get(v.name)
    # The step is set below; the rate comes from the config (the current value, or the new `learning_rate`).
    if source is not None and tuple(source.shape) == tuple(v.shape) and v.name not in ('iteration', 'learning_rate'):
      v.assign(source)
      carried += 1
  new.iterations.assign(optimizer.iterations)
  logging.info('Optimizer rebuilt for %d variables: %d optimizer variables carried over, step %d.', len(variables),
               carried, int(new.iterations.numpy()))
  return new


def set_optimizer(model, optimizer):
  """Gives a compiled `model` its new optimizer: the one `fit` steps with, and the one its compile config records,
  so that a `.keras` file saved later rebuilds this optimizer and loads its variables (Keras keeps the object given
  to `compile` in `_compile_config`; there is no public setter)."""
  model.optimizer = optimizer
  compile_config = getattr(model, '_compile_config', None)
  if compile_config is not None and 'optimizer' in compile_config.config:
    compile_config.config['optimizer'] = optimizer


def retrace(model):
  """After a swap, every traced function captured the old variables: re-trace training, evaluation and prediction."""
  model.make_train_function(force=True)
  model.make_test_function(force=True)
  model.make_predict_function(force=True)


def factorize_embeddings(model, embeddings, ranks, svd_method='auto', caller='compress_model', frequency=None):
  """Factorizes each embedding of `model` in place at `ranks[name]` (a plain Embedding becomes a
  CompressibleEmbedding first; with `frequency`, a `FrequencyRanks`, a FrequencyBlockEmbedding holding the same
  numbers in frequency blocks); returns the [CompressionReport]. The user's layer holding a nested one becomes a
  `nested.FactorizedOwner`, so a `.keras` file brings it back factorized (`nested.carry`)."""
  reports, planned = [], {}
  if frequency is not None:  # every layer's blocks made before any layer changes: an error leaves the model as it was
    frequency_lib.check_fits(frequency, embeddings, caller)
    planned = {layer.name: frequency_lib.planned_blocks(layer, ranks[layer.name], frequency) for layer in embeddings}
  for layer in embeddings:
    if frequency is not None:
      reports.append(frequency_lib.compress_in_blocks(layer, planned[layer.name]))
      continue
    CompressibleEmbedding.from_embedding(layer)
    reports.append(compress_layer(layer, rank=ranks[layer.name], svd_method=svd_method))
  for layer in embeddings:
    nested.carry(model, layer, caller)
  return reports


def check_frequency(frequency, caller):
  """Raises ConfigError naming `caller` unless `frequency` is None or a `FrequencyRanks`."""
  if frequency is not None and not isinstance(frequency, FrequencyRanks):
    raise ConfigError(f'{caller}(frequency={frequency!r}): give a lmf_tf.FrequencyRanks(blocks=..., counts=...)')


def swap_embeddings(model, optimizer=None, reduction=None, rank=None, layers=None, svd_method='auto',
                    learning_rate=None, frequency=None):
  """The online swap for a custom training loop (`tf.GradientTape`): factorizes the model's embeddings in place
  and returns `(optimizer, reports)`, the optimizer carrying the old one's step and slots (`carry_optimizer`).

  After the call, train with the returned optimizer and re-create any `tf.function` that captured the model's
  variables: the old V x d matrix is emptied, so a step traced before the swap fails at its next call
  (InvalidArgumentError) rather than train a matrix the model no longer reads. Under `tf.distribute`, call it inside
  `strategy.scope()`.

  Args:
    model: a built Keras model.
    optimizer: the loop's (built) optimizer, or None to get None back.
    reduction: R in percent, k = floor((1 - R/100) V d / (V + d)) for each embedding; or
    rank: k for every embedding.
    layers: which embeddings (`select_embeddings`): names or attribute paths, a class, a predicate; default: the
      word embeddings (those with at least a tenth of the rows of the largest one).
    learning_rate: the new optimizer's rate or schedule (default: the old one's).
    frequency: a `FrequencyRanks`: the numbers of rank k spread over frequency blocks (frequency.py).
  Returns:
    (optimizer or None, [CompressionReport]).
  """
  warn_if_fraction(reduction)
  check_frequency(frequency, 'swap_embeddings')
  selection = select_embeddings(model, layers, 'swap_embeddings')
  ranks = checked_ranks(model, selection.chosen, reduction, rank, 'swap_embeddings')
  if selection.left_alone:
    logging.info('swap_embeddings: %s', selection.left_alone_line())
  reports = factorize_embeddings(model, selection.chosen, ranks, svd_method, 'swap_embeddings', frequency)
  if optimizer is not None:
    optimizer = carry_optimizer(optimizer, model.trainable_variables, learning_rate)
  return optimizer, reports


def compress_model(model, reduction=None, rank=None, layers=None, svd_method='auto', frequency=None):
  """Compresses the embeddings of a trained model in place (post-training LMF); returns [CompressionReport].

  The model can be used, saved (`.keras`, SavedModel, `save_inference_checkpoint`) and exported at once. If it is
  compiled with a built optimizer, that optimizer is replaced by one that carries the other variables' slots, so
  `fit` continues at once and a saved file holds no slots of the removed matrix. `frequency`: a `FrequencyRanks`
  spreads the numbers of rank k over frequency blocks (frequency.py).
  """
  warn_if_fraction(reduction)
  check_frequency(frequency, 'compress_model')
  selection = select_embeddings(model, layers)
  ranks = checked_ranks(model, selection.chosen, reduction, rank)
  if selection.left_alone:
    logging.info('compress_model: %s', selection.left_alone_line())
  with model.distribute_strategy.scope():
    reports = factorize_embeddings(model, selection.chosen, ranks, svd_method, frequency=frequency)
    optimizer = getattr(model, 'optimizer', None)
    if optimizer is not None and optimizer.built:
      set_optimizer(model, carry_optimizer(optimizer, model.trainable_variables))
  if getattr(model, 'compiled', False):
    retrace(model)
  return reports
