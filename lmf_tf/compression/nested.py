"""Embeddings inside a user's own layers: their attribute paths, and how a factorized one reloads from a `.keras` file.

A user's layer that creates `keras.layers.Embedding` in its `__init__` (the Keras example's
`TokenAndPositionEmbedding`) is rebuilt from its own config when a `.keras` file loads, so the embedding would come
back as a plain V x d `Embedding`, while the file holds the V x k and k x d factors of the compressed one. Keras
reads a nested layer's state with no config of its own, and it builds the optimizer (`compile_from_config`) before
it reads any variable, so the layer must have its factorized form before the variables are read.

lmf_tf changes no Keras class or function for that. When an embedding below such a layer (its `carrier`: the layer
whose config the file stores, or the subclassed model) is factorized, `carry` changes THAT object's class in place
to a subclass of (`FactorizedOwner`, the user's class), made once per class, as `CompressibleEmbedding.from_embedding`
does for the embedding itself. Keras saves it under the one registered name `lmf_tf>FactorizedOwner`, with the
user's own serialized config nested in it and `factorized` = {attribute path below the layer: k}. Loading calls
`FactorizedOwner.from_config`, which deserializes the user's layer (its class must be registered, as any custom
layer in a `.keras` file), makes it a `FactorizedOwner` again and gives each recorded embedding its rank-k form;
then Keras builds it, compiles the optimizer for the factors and loads the weights. The user's layer is unchanged,
and its own `get_build_config` / `build_from_config`, whatever they do, still run. `model.get_config()` with
`from_config`, and `keras.models.clone_model`, give a model with the same factorized shapes and fresh weights (but
an embedding the user's layer creates in its `build` comes back plain from `clone_model`, which rebuilds a layer
without its build config: only `build_from_config` restores such an embedding).
Without `import lmf_tf`, such a file does not load ("Could not locate class 'Factorized...'"), as for any lmf_tf layer.

Attribute paths name layers the way the user's code does: `token_and_position_embedding.token_emb` is the
attribute `token_emb` of the model's layer named `token_and_position_embedding` (a functional or Sequential model's
layers by name, any other layer's sublayers by attribute, list items by index: `blocks.0.words`).
"""

import keras
import numpy as np

from lmf_tf.compression.block_embedding import FrequencyBlockEmbedding
from lmf_tf.compression.dense import CompressibleDense
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.frequency import BlockFactors
from lmf_tf.compression.recurrent import CompressibleLSTM
from lmf_tf.errors import ConfigError


def _children(layer):
  """(name, sublayer) pairs: a functional or Sequential model's layers by name, other layers' by attribute (public
  attributes, with the items of lists and dicts, then private attributes that are layers)."""
  if isinstance(layer, keras.Sequential) or hasattr(layer, '_nodes_by_depth'):
    return [(l.name, l) for l in layer.layers]
  pairs = []
  attributes = sorted(vars(layer).items(), key=lambda item: item[0].startswith('_'))  # stable: public first
  for name, value in attributes:
    if name.startswith('_') and not isinstance(value, keras.layers.Layer):
      continue  # Keras's and TensorFlow's own lists and dicts of sublayers
    if isinstance(value, keras.layers.Layer):
      pairs.append((name, value))
    elif isinstance(value, (list, tuple)):
      pairs += [(f'{name}.{i}', v) for i, v in enumerate(value) if isinstance(v, keras.layers.Layer)]
    elif isinstance(value, dict):
      pairs += [(f'{name}.{k}', v) for k, v in value.items() if isinstance(v, keras.layers.Layer)]
  return pairs


def _walk(root):
  """[(attribute path, layer, chain of the layers holding it below `root`)] for every layer below `root`, each once
  (its first path), depth first."""
  found, seen = [], {id(root)}

  def visit(layer, prefix, chain):
    for name, child in _children(layer):
      if id(child) not in seen:
        seen.add(id(child))
        path = f'{prefix}.{name}' if prefix else name
        found.append((path, child, chain))
        visit(child, path, chain + [child])

  visit(root, '', [])
  return found


def attribute_paths(root):
  """{id(layer): attribute path} for every layer below `root` reachable by name or attribute (first path wins)."""
  return {id(layer): path for path, layer, _ in _walk(root)}


def owners(root, layer):
  """The chain of layers from `root`'s child down to `layer`'s parent that hold `layer` ([] for a direct child or a
  layer not below `root`)."""
  return next((chain for _, found, chain in _walk(root) if found is layer), [])


def carrier(model, layer):
  """The layer whose config and build config a `.keras` file stores and that holds `layer` without a config of
  its own, or None if `layer` is rebuilt from its own config (a top-level layer of a functional/Sequential model).
  For a subclassed model, the model itself."""
  chain = owners(model, layer)
  is_graph = isinstance(model, keras.Sequential) or hasattr(model, '_nodes_by_depth')
  if not is_graph:
    return model
  if not chain:
    return None
  # Inside a nested functional model, a layer is rebuilt from that model's config.
  for i in range(len(chain) - 1, -1, -1):
    if isinstance(chain[i], keras.Sequential) or hasattr(chain[i], '_nodes_by_depth'):
      return chain[i + 1] if i + 1 < len(chain) else None
  return chain[0]


def _factorized_below(layer):
  """{attribute path below `layer`: k} of its factorized embeddings, Dense and LSTM layers."""
  return {path: _saved_form(found) for path, found, _ in _walk(layer) if getattr(found, 'is_compressed', False)}


def _saved_form(layer):
  """What a `.keras` file records of a factorized layer: k; an LSTM's {matrix: k}; an embedding in frequency
  blocks, its {'block_rows': [...], 'block_ranks': [...]}."""
  if isinstance(layer, FrequencyBlockEmbedding):
    return layer.blocks
  return layer.rank if isinstance(layer.rank, dict) else int(layer.rank)


def restore_factorized(layer, factorized, missing_ok=False):
  """Gives each layer below `layer` named in `factorized` ({path: k}) its rank-k form: an embedding becomes a
  `CompressibleEmbedding` with placeholder factors (random, as a layer built from a config; a weights file then
  overwrites them), a Dense a `CompressibleDense` (`CompressibleDense.with_rank`). Returns {path: k} of those not
  there yet if `missing_ok` (created in `build`), else raises ValueError for them."""
  by_path = {path: found for path, found, _ in _walk(layer)}
  pending = {}
  for path, rank in factorized.items():
    found = by_path.get(path)
    if found is None and missing_ok:
      pending[path] = rank
      continue
    if isinstance(found, (keras.layers.Dense, keras.layers.LSTM)):
      restore_kernel_ranks(found, rank)
      continue
    if not isinstance(found, keras.layers.Embedding):
      raise ValueError(f'{layer.name}: the saved model has a factorized layer at {path!r} (rank {rank}), but the '
                       f'rebuilt layer has {type(found).__name__ if found is not None else "nothing"} there')
    if isinstance(rank, dict) and 'block_rows' in rank:
      restore_blocks(found, rank)
      continue
    if getattr(found, 'rank', None) == rank:
      continue
    CompressibleEmbedding.from_embedding(found)
    if not found.built:
      found.build()  # the instance's `build` is Embedding's (Keras wraps it per object)
    random = np.random.default_rng(0)
    found.factorize(random.uniform(-0.05, 0.05, (found.input_dim, rank)).astype(np.float32),
                    random.uniform(-0.05, 0.05, (rank, found.output_dim)).astype(np.float32))
  return pending


def restore_blocks(layer, blocks):
  """Gives an embedding its frequency-block form `blocks` ({'block_rows': [...], 'block_ranks': [...]}) with
  placeholder factors (a weights file or a checkpoint then overwrites them)."""
  if getattr(layer, 'blocks', None) == blocks:
    return
  FrequencyBlockEmbedding.from_embedding(layer)
  if not layer.built:
    layer.build()
  random = np.random.default_rng(0)
  rows, ranks = blocks['block_rows'], blocks['block_ranks']
  layer.factorize(BlockFactors(tuple(rows), [random.uniform(-0.05, 0.05, (n, k)).astype(np.float32)
                                             for n, k in zip(rows, ranks)],
                               [random.uniform(-0.05, 0.05, (k, layer.output_dim)).astype(np.float32) for k in ranks],
                               0.0))


def restore_kernel_ranks(layer, ranks):
  """Gives a Dense (`ranks`: k or {'kernel': k}) or an LSTM ({matrix: k}) its factorized form: placeholder factors
  if built (a weights file then overwrites them), else it builds its factors itself."""
  if isinstance(layer, keras.layers.Dense):
    CompressibleDense.with_rank(layer, ranks['kernel'] if isinstance(ranks, dict) else ranks)
  else:
    CompressibleLSTM.with_ranks(layer, ranks)


def carry(model, layer, caller='compress_model'):
  """After `layer` (an embedding, Dense or LSTM below `model`) is factorized: makes its carrier, if any, a
  `FactorizedOwner` (in place, as `CompressibleEmbedding.from_embedding` does), so that its config records the
  factorization.
  Raises ConfigError (naming `caller`) if Python refuses the carrier's new class."""
  owner = carrier(model, layer)
  if owner is None or not getattr(layer, 'is_compressed', False) or isinstance(owner, FactorizedOwner):
    return
  try:
    owner.__class__ = _owner_class(type(owner))
  except TypeError as e:  # e.g. a class with __slots__ and no __dict__
    raise ConfigError(f'{caller}: layer {layer.name!r} lives inside {owner.name!r} ({type(owner).__name__}), '
                      f'whose class lmf_tf cannot extend ({e}), so a .keras file would reload it uncompressed; '
                      'compress only other layers with layers=') from e


_OWNER_CLASSES = {}  # the user's class -> its FactorizedOwner subclass, one per class


def _owner_class(user_class):
  """The subclass (FactorizedOwner, user_class), made once; Keras serializes it as 'lmf_tf>FactorizedOwner'."""
  if user_class not in _OWNER_CLASSES:
    made = type(f'Factorized{user_class.__name__}', (FactorizedOwner, user_class),
                {'__module__': __name__, '__doc__': f'{user_class.__name__} holding factorized embeddings '
                                                    '(lmf_tf.compression.nested.FactorizedOwner).'})
    keras.saving.register_keras_serializable('lmf_tf', 'FactorizedOwner')(made)  # its name in a .keras file
    keras.saving.register_keras_serializable('lmf_tf', 'FactorizedOwner')(FactorizedOwner)  # and what the name loads
    _OWNER_CLASSES[user_class] = made
  return _OWNER_CLASSES[user_class]


@keras.saving.register_keras_serializable('lmf_tf', 'FactorizedOwner')
class FactorizedOwner:
  """Mixin of the user's layer (or subclassed model) that holds factorized embeddings Keras would rebuild plain.

  Its config nests the user's own serialized config, `{'layer': {class, module, registered name, config},
  'factorized': {attribute path: k}}`; `from_config` deserializes the user's layer from it (its class must be
  registered, as any custom layer in a .keras file), makes it a FactorizedOwner again and gives each recorded
  embedding its rank-k form (placeholder factors, which a weights file then overwrites) before Keras builds the
  optimizer and reads the variables. An embedding the user's layer creates only in `build` gets it after
  `build_from_config`.
  """

  def get_config(self):
    owner_class = type(self)
    user_class = owner_class.__mro__[owner_class.__mro__.index(FactorizedOwner) + 1]
    self.__class__ = user_class  # the user's config exactly as Keras makes it (auto-config included)
    try:
      config = self.get_config()
    finally:
      self.__class__ = owner_class
    layer = {'module': user_class.__module__, 'class_name': user_class.__name__, 'config': config,
             'registered_name': keras.saving.get_registered_name(user_class)}
    return {'layer': layer, 'factorized': _factorized_below(self) if self.built else {}}

  @classmethod
  def from_config(cls, config):
    del cls  # the user's class is in the config
    layer = keras.saving.deserialize_keras_object(config['layer'])
    layer.__class__ = _owner_class(type(layer))
    layer.__dict__['_lmf_tf_pending'] = restore_factorized(layer, config['factorized'], missing_ok=True)  # untracked
    return layer

  def build_from_config(self, config):
    super().build_from_config(config)
    pending = self.__dict__.pop('_lmf_tf_pending', None)
    if pending:
      restore_factorized(self, pending)
