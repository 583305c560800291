"""Embeddings inside a user's own layers: their attribute paths, and how a factorized one reloads from a `.keras` file.

A user's layer that creates `keras.layers.Embedding` in its `__init__` (the Keras example's
`TokenAndPositionEmbedding`) is rebuilt from its own config when a `.keras` file loads, so the embedding comes back
as a plain V x d `Embedding`, while the file holds the V x k and k x d factors of the compressed one. Keras reads a
nested layer's state with no config of its own, and it builds the optimizer (`compile_from_config`) before it
reads any variable, so the layer must have its factorized form before the variables are read. Keras's hook for that
is the build config of the layer it deserializes (`get_build_config` / `build_from_config`, the place for "state
created in an unusual way"): lmf_tf adds one key to it, `lmf_tf_factorized` = {attribute path below the layer: k},
and after the layer is built from it, turns each recorded embedding into a `CompressibleEmbedding` of rank k. The
user's layer stays unchanged. `install` wraps `keras.layers.Layer.get_build_config` and the `build_from_config` of
`keras.layers.Layer` and `keras.Model` for that (once, when `embedding.py` is imported, with the registration of
lmf_tf's Keras classes); a layer class that overrides them without calling `super()` is refused at the swap
(`check_reloadable`), with the one change it needs.

Attribute paths name layers the way the user's code does: `token_and_position_embedding.token_emb` is the
attribute `token_emb` of the model's layer named `token_and_position_embedding` (a functional or Sequential model's
layers by name, any other layer's sublayers by attribute, list items by index: `blocks.0.words`).
"""

import keras
import numpy as np

from lmf_tf.errors import ConfigError

KEY = 'lmf_tf_factorized'


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
  """{attribute path below `layer`: k} of its factorized embeddings."""
  return {path: int(found.rank) for path, found, _ in _walk(layer) if getattr(found, 'is_compressed', False)}


def restore_factorized(layer, factorized):
  """Turns each embedding below `layer` named in `factorized` ({path: k}) into a `CompressibleEmbedding` of rank k
  (placeholder factors, which the weights file then overwrites)."""
  from lmf_tf.compression.embedding import CompressibleEmbedding  # pylint: disable=g-import-not-at-top  (it imports this)
  by_path = {path: found for path, found, _ in _walk(layer)}
  for path, rank in factorized.items():
    embedding = by_path.get(path)
    if not isinstance(embedding, keras.layers.Embedding):
      raise ValueError(f'{layer.name}: the saved model has a factorized embedding at {path!r} (rank {rank}), but the '
                       f'rebuilt layer has {type(embedding).__name__ if embedding is not None else "nothing"} there')
    if getattr(embedding, 'rank', None) == rank:
      continue
    CompressibleEmbedding.from_embedding(embedding)
    if not embedding.built:
      embedding.build()
    embedding.factorize(np.zeros((embedding.input_dim, rank), np.float32),
                        np.zeros((rank, embedding.output_dim), np.float32))


def check_reloadable(model, layer, caller='compress_model'):
  """Raises ConfigError where a `.keras` file of `model` would not bring `layer` back factorized: its carrier's class
  overrides `get_build_config` and leaves out what lmf_tf records there."""
  owner = carrier(model, layer)
  if owner is None or not getattr(layer, 'is_compressed', False):
    return
  if (owner.get_build_config() or {}).get(KEY, {}).get(attribute_paths(owner).get(id(layer))) != layer.rank:
    cls = type(owner).__name__
    raise ConfigError(
        f'{caller}: embedding {layer.name!r} lives inside {owner.name!r} ({cls}), whose get_build_config() does not '
        f'keep what lmf_tf adds to it, so a .keras file would reload it as a plain V x d embedding. The one change: '
        f'in {cls}, return {{**super().get_build_config(), ...}} from get_build_config and call '
        'super().build_from_config(config) in build_from_config; or compress only other embeddings with layers=')


_ORIGINAL = {}


def install():
  """Wraps Keras's `get_build_config` / `build_from_config` (once) so that factorized nested embeddings reload."""
  if _ORIGINAL:
    return
  _ORIGINAL['get'] = keras.layers.Layer.get_build_config
  for cls in (keras.layers.Layer, keras.Model):
    _ORIGINAL[cls] = cls.build_from_config

  def get_build_config(self):
    config = _ORIGINAL['get'](self)
    factorized = _factorized_below(self) if self.built else {}
    return {**(config or {}), KEY: factorized} if factorized else config

  def wrap(original):
    def build_from_config(self, config):
      factorized = (config or {}).get(KEY)
      original(self, {k: v for k, v in config.items() if k != KEY} if factorized else config)
      if factorized:
        restore_factorized(self, factorized)
    build_from_config.__doc__ = original.__doc__
    return build_from_config

  get_build_config.__doc__ = _ORIGINAL['get'].__doc__
  keras.layers.Layer.get_build_config = get_build_config
  for cls in (keras.layers.Layer, keras.Model):
    cls.build_from_config = wrap(_ORIGINAL[cls])
