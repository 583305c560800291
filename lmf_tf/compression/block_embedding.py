"""`FrequencyBlockEmbedding`: an embedding whose blocks of rows each hold their own low-rank factors.

The layer `FrequencyRanks` (frequency.py) makes at the swap: ids [s_g, s_g + n_g) read row i - s_g of block g's
table T_g (n_g x k_g) times its projection P_g (k_g x d), the projections stacked in one (Σ k_g) x d matrix;
frequent words (low ids) sit in blocks of high rank, rare ones in blocks of low rank or none (rank 0: a zero
vector). Like `CompressibleEmbedding` it takes the place of a plain `keras.layers.Embedding` in place
(`from_embedding` changes the object's class to this subclass of it), so the user's graph, `mask_zero` and
`isinstance(layer, keras.layers.Embedding)` stay; its config records the blocks, so a `.keras` file reloads it
after `import lmf_tf`. In TFLite each block is a gather and a mask, then one matrix product for all (no custom
op). `fold_projection` leaves the projection as it is (folding it into the next layer would pay only where
Σ k_g < d; not built).
"""

import keras
import numpy as np
from keras import ops

from lmf_tf.compression.embedding import (CompressibleEmbedding, drop_constraint, load_variables,
                                          replacing_variables, retire_variable, save_variables)
from lmf_tf.errors import ConfigError


@keras.saving.register_keras_serializable(package='lmf_tf')
class FrequencyBlockEmbedding(keras.layers.Embedding):
  """`int[batch, ...]` ids -> `float[batch, ..., d]`, from per-block factors (GroupReduce, Chen et al. 2018).

  `block_rows` (n_g, summing to V) and `block_ranks` (k_g >= 0): weights `block{g}_table`: float32[n_g, k_g] for
  each block of rank > 0 and `projection`: float32[Σ_g k_g, d], the blocks' projections P_g stacked; Σ_g k_g (n_g +
  d) numbers. A token of block g reads its row of T_g into block g's k_g columns of a vector z (zero elsewhere), and
  z P is its vector: one matrix product for all blocks, and one stacked projection (int8 in TFLite, where each
  P_g alone would be too small for the converter to quantize). Without blocks, a plain `Embedding(V, d)` (the state
  between `from_embedding` and `factorize`). `embeddings` is the V x d matrix the blocks represent, computed when
  read.
  """

  def __init__(self, input_dim, output_dim, block_rows=None, block_ranks=None, weights=None, **kwargs):
    super().__init__(input_dim, output_dim, **kwargs)
    self.block_rows = self.block_ranks = None
    if block_rows is not None or block_ranks is not None:
      self._set_blocks(block_rows, block_ranks)
    if weights is not None:  # as keras.layers.Embedding(weights=...), once the blocks are known
      self.build()
      self.set_weights(weights if isinstance(weights, list) else [weights])

  def _set_blocks(self, rows, ranks):
    rows, ranks = tuple(int(n) for n in rows), tuple(int(k) for k in ranks)
    if len(rows) != len(ranks) or sum(rows) != self.input_dim or min(rows) < 1 or min(ranks) < 0 or max(ranks) < 1:
      raise ConfigError(f'embedding {self.name!r}: block_rows {rows} (summing to V = {self.input_dim}) and '
                        f'block_ranks {ranks} (>= 0, one > 0) do not describe its {self.input_dim} rows')
    self.block_rows, self.block_ranks = rows, ranks

  @classmethod
  def from_embedding(cls, layer):
    """Makes a plain `keras.layers.Embedding` (or an uncompressed `CompressibleEmbedding`) a
    `FrequencyBlockEmbedding` in place, not factorized yet; returns it."""
    if isinstance(layer, cls):
      return layer
    plain = type(layer) is keras.layers.Embedding or (
        type(layer) is CompressibleEmbedding and not layer.is_compressed)
    if not plain:
      raise ConfigError(f'layer {layer.name!r} is a {type(layer).__name__}'
                        f'{" already factorized" if isinstance(layer, CompressibleEmbedding) else ""}: frequency '
                        'blocks replace a plain keras.layers.Embedding only (an embedding is factorized once)')
    if layer.quantization_mode or layer.lora_enabled:
      raise ConfigError(f'embedding {layer.name!r} is quantized or LoRA-enabled; factorize it before, not after')
    layer.__dict__.pop('rank', None)  # a CompressibleEmbedding's
    layer.__class__ = cls
    layer.block_rows = layer.block_ranks = None
    return layer

  @property
  def is_compressed(self):
    return self.block_rows is not None

  @property
  def blocks(self):
    """{'block_rows': [...], 'block_ranks': [...]}: what the config records (None while uncompressed)."""
    return None if self.block_rows is None else {'block_rows': list(self.block_rows),
                                                  'block_ranks': list(self.block_ranks)}

  @property
  def starts(self):
    return tuple(int(s) for s in np.cumsum((0,) + self.block_rows[:-1]))

  def build(self, input_shape=None):
    if self.built:
      return
    if self.block_rows is None:
      super().build(input_shape)
      return
    self._add_blocks()
    self.built = True

  def _add_blocks(self):
    initializer = keras.initializers.RandomUniform(-0.05, 0.05)
    for g, (n, k) in enumerate(zip(self.block_rows, self.block_ranks)):
      if k:
        setattr(self, f'block{g}_table', self.add_weight(
            shape=(n, k), initializer=initializer, name=f'block{g}_table', regularizer=self.embeddings_regularizer))
    self.projection = self.add_weight(shape=(sum(self.block_ranks), self.output_dim), initializer=initializer,
                                      name='projection', regularizer=self.embeddings_regularizer)

  def _variable_names(self):
    """The attributes holding the layer's variables, in the order they are saved: the tables, then the projection."""
    return [f'block{g}_table' for g, k in enumerate(self.block_ranks) if k] + ['projection']

  def _block_variables(self):
    return [getattr(self, name) for name in self._variable_names()]

  def _blocks(self):
    """[(start, rows, table, first row of its projection, rank)] of the blocks of rank > 0."""
    offsets = np.cumsum((0,) + self.block_ranks[:-1])
    return [(s, n, getattr(self, f'block{g}_table'), int(o), k)
            for g, (s, n, k, o) in enumerate(zip(self.starts, self.block_rows, self.block_ranks, offsets)) if k]

  @property
  def embeddings(self):
    if self.block_rows is None:
      return super().embeddings
    pieces, end = [], 0
    for start, n, table, offset, k in self._blocks():
      if start > end:
        pieces.append(ops.zeros((start - end, self.output_dim)))
      pieces.append(ops.matmul(table, self.projection[offset:offset + k]))
      end = start + n
    if end < self.input_dim:
      pieces.append(ops.zeros((self.input_dim - end, self.output_dim)))
    return ops.concatenate(pieces, axis=0)

  def call(self, inputs):
    if self.block_rows is None:
      return super().call(inputs)
    if inputs.dtype not in ('int32', 'int64'):
      inputs = ops.cast(inputs, 'int32')
    ids = ops.reshape(inputs, (-1,))  # [n]
    # Each token's row of its block, zero in the other blocks' columns: z [n, Σ k_g]; then z P, one product.
    columns = []
    for start, n, table, _, _ in self._blocks():
      local = ids - start if start else ids
      row = ops.clip(local, 0, n - 1) if start else ops.minimum(local, n - 1)  # ids are >= 0
      rows = ops.take(table, row, axis=0)  # [n, k_g]
      if start or start + n < self.input_dim:  # zero where the id is not in this block (clipped onto its edge)
        rows = rows * ops.cast(ops.expand_dims(ops.equal(row, local), -1), rows.dtype)
      columns.append(rows)
    wide = columns[0] if len(columns) == 1 else ops.concatenate(columns, axis=-1)
    vectors = ops.matmul(wide, self.projection)  # [n, d]
    return ops.cast(ops.reshape(vectors, (*ops.shape(inputs), self.output_dim)), self.compute_dtype)

  def full_matrix(self):
    """The V x d matrix the layer represents, as a NumPy array."""
    return np.asarray(ops.convert_to_tensor(self.embeddings).numpy())

  def factorize(self, factors):
    """Replaces the layer's matrix (or its blocks) by `factors` (a `frequency.BlockFactors`), in place; the old
    variables are untracked and emptied, as `CompressibleEmbedding.factorize` does."""
    if not self.built:
      raise ConfigError(f'embedding {self.name!r} is not built yet: build or call the model before compressing it')
    names = ['_embeddings'] if self.block_rows is None else self._variable_names()
    drop_constraint(self, 'embeddings_constraint', 'blocks')
    with replacing_variables(self, names) as old:
      self._set_blocks(factors.rows, factors.ranks)
      self._add_blocks()
    for (_, _, table, _, _), left in zip(self._blocks(), [l for l in factors.lefts if l.shape[1]]):
      table.assign(left)
    self.projection.assign(np.concatenate([r for r in factors.rights if r.shape[0]], axis=0))
    for variable in old:
      retire_variable(variable)

  def quantize(self, mode=None, *args, **kwargs):  # pylint: disable=keyword-arg-before-vararg  (Keras's signature)
    if self.block_rows is not None:
      raise NotImplementedError(f'embedding {self.name!r} is factorized in frequency blocks: Keras does not quantize '
                                'its factors; a TFLite int8 export (lmf_tf.to_tflite) does')
    return super().quantize(mode, *args, **kwargs)

  def enable_lora(self, *args, **kwargs):
    if self.block_rows is not None:
      raise ConfigError(f'embedding {self.name!r} is already low-rank (frequency blocks); LoRA would add a pair of '
                        'factors its blocks do not read')
    return super().enable_lora(*args, **kwargs)

  def save_own_variables(self, store):
    if self.block_rows is None:
      return super().save_own_variables(store)
    save_variables(store, self._block_variables())

  def load_own_variables(self, store):
    if self.block_rows is None:
      return super().load_own_variables(store)
    load_variables(store, self._block_variables(),
                   f'embedding {self.name!r} in blocks {self.block_rows} of ranks {self.block_ranks}')

  def get_config(self):
    return {**super().get_config(), 'block_rows': list(self.block_rows) if self.block_rows else None,
            'block_ranks': list(self.block_ranks) if self.block_ranks else None}
