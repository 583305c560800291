"""`CompressibleLSTM`: a `keras.layers.LSTM` whose input and recurrent matrices can be factorized in place.

An LSTM step computes z = x W_x + h W_h + b (W_x: D x 4H, W_h: H x 4H) and its gates from z. Grachev et al. 2017,
§3.3 replace W_x and W_h by rank-k products; here, as the embedding swap of Acharya et al. 2019, §3.1, each
becomes its truncated SVD during training: `kernel_left` (D x k) and `kernel_right` (k x 4H), `recurrent_left`
(H x k) and `recurrent_right` (k x 4H), and training goes on. Either matrix may stay whole. The layer object stays
in the user's graph (it becomes this subclass in place, `from_lstm`), and its config records the ranks.

A factorized LSTM runs Keras's own loop over time (`keras.layers.RNN`): the cuDNN kernel, which takes whole
matrices, is not used for it.
"""

import keras
import numpy as np
from keras import ops

from lmf_tf.compression.dense import _build_as
from lmf_tf.compression.embedding import replacing_variables, retire_variable
from lmf_tf.compression.rank import check_rank_value
from lmf_tf.errors import ConfigError

MATRICES = ('kernel', 'recurrent_kernel')  # W_x, W_h
_FACTORS = {'kernel': ('kernel_left', 'kernel_right'), 'recurrent_kernel': ('recurrent_left', 'recurrent_right')}


@keras.saving.register_keras_serializable(package='lmf_tf')
class CompressibleLSTMCell(keras.layers.LSTMCell):
  """`keras.layers.LSTMCell` with W_x and W_h each whole or as rank-k factors (`ranks`: {matrix: k}).

  `(float32[B, D], [h, c]: float32[B, H]) -> (h, [h, c])`, the gates of `keras.layers.LSTMCell` (implementation 2:
  one fused product per step). Factorized: z = (x L_x) R_x + (h L_h) R_h + b.
  """

  def __init__(self, units, ranks=None, **kwargs):
    super().__init__(units, **kwargs)
    self.ranks = {name: check_rank_value(k, f'ranks[{name!r}]') for name, k in (ranks or {}).items()}

  def build(self, input_shape):
    if not self.ranks:
      return super().build(input_shape)
    self._add_variables(input_shape[-1], {})
    self.built = True

  def _variable_names(self):
    """W_x or its factors, W_h or its factors, then b: the order a cell built from its config has."""
    names = []
    for matrix in MATRICES:
      names += list(_FACTORS[matrix]) if matrix in self.ranks else [matrix]
    return names + (['bias'] if self.use_bias else [])

  @property
  def input_dim(self):
    """D: the rows of W_x, whole or its left factor (built cell)."""
    return int(getattr(self, self._variable_names()[0]).shape[0])

  def _add_variables(self, input_dim, values):
    """Adds the variables of `_variable_names` (shapes from `input_dim` D, `units` H and `ranks`); `values`
    {name: array} sets them (the others keep their initializers, as in a build from a config)."""
    rows = {'kernel': input_dim, 'recurrent_kernel': self.units}
    for matrix in MATRICES:
      regularizer = self.kernel_regularizer if matrix == 'kernel' else self.recurrent_regularizer
      if matrix in self.ranks:
        init = keras.initializers.RandomUniform(-0.05, 0.05)  # a weights file or `factorize` overwrites them
        left, right = _FACTORS[matrix]
        setattr(self, left, self.add_weight(shape=(rows[matrix], self.ranks[matrix]), name=left, initializer=init,
                                            regularizer=regularizer))
        setattr(self, right, self.add_weight(shape=(self.ranks[matrix], 4 * self.units), name=right,
                                             initializer=init, regularizer=regularizer))
      else:
        init = self.kernel_initializer if matrix == 'kernel' else self.recurrent_initializer
        setattr(self, matrix, self.add_weight(shape=(rows[matrix], 4 * self.units), name=matrix, initializer=init,
                                              regularizer=regularizer))
    if self.use_bias:
      forget = 1.0 if self.unit_forget_bias else 0.0  # as LSTMCell: the forget gate's bias starts at 1
      init = np.concatenate([np.zeros(self.units), np.full(self.units, forget), np.zeros(2 * self.units)])
      self.bias = self.add_weight(shape=(4 * self.units,), name='bias', regularizer=self.bias_regularizer,
                                  initializer=keras.initializers.Constant(init.astype(np.float32)))
    for name in self._variable_names():
      if name in values:
        getattr(self, name).assign(values[name])

  def _product(self, inputs, matrix):
    if matrix not in self.ranks:
      return ops.matmul(inputs, getattr(self, matrix))
    left, right = _FACTORS[matrix]
    return ops.matmul(ops.matmul(inputs, getattr(self, left)), getattr(self, right))

  def call(self, inputs, states, training=False):
    if not self.ranks:
      return super().call(inputs, states, training=training)
    h_tm1, c_tm1 = states[0], states[1]
    if training and 0.0 < self.dropout < 1.0:
      inputs = inputs * self.get_dropout_mask(inputs)
    if training and 0.0 < self.recurrent_dropout < 1.0:
      h_tm1 = h_tm1 * self.get_recurrent_dropout_mask(h_tm1)
    z = ops.add(self._product(inputs, 'kernel'), self._product(h_tm1, 'recurrent_kernel'))  # [B, 4H]
    if self.use_bias:
      z = ops.add(z, self.bias)
    c, o = self._compute_carry_and_output_fused(ops.split(z, 4, axis=1), c_tm1)
    h = o * self.activation(c)
    return h, [h, c]

  def full_matrix(self, matrix):
    """W_x (D x 4H) or W_h (H x 4H), whole or the product of its factors, as a NumPy array."""
    if matrix not in self.ranks:
      return np.asarray(ops.convert_to_tensor(getattr(self, matrix)).numpy())
    left, right = (getattr(self, name).numpy() for name in _FACTORS[matrix])
    return left @ right

  def factorize(self, matrix, left, right):
    """Replaces W_x (`matrix='kernel'`) or W_h (`'recurrent_kernel'`) by `left` [rows, k] and `right` [k, 4H], in
    place; every other weight keeps its value (re-made in build order). The old variables are emptied
    (`retire_variable`); an optimizer built for them must be rebuilt (`swap.carry_optimizer`)."""
    if not self.built:
      raise ConfigError(f'LSTM cell {self.name!r} is not built yet: build or call the model before compressing it')
    rank = int(left.shape[1])
    rows = self.units if matrix == 'recurrent_kernel' else self.input_dim
    if tuple(left.shape) != (rows, rank) or tuple(right.shape) != (rank, 4 * self.units):
      raise ValueError(f'{self.name}: factors {tuple(left.shape)} x {tuple(right.shape)} do not make its '
                       f'{rows} x {4 * self.units} {matrix}')
    names = self._variable_names()
    old = [getattr(self, name) for name in names]
    values = {name: variable.numpy() for name, variable in zip(names, old)}
    values.update(dict(zip(_FACTORS[matrix], (left, right))))
    input_dim = self.input_dim
    with replacing_variables(self, names):
      self.ranks = {**self.ranks, matrix: rank}
      self._add_variables(input_dim, values)
    for variable in old:
      retire_variable(variable)

  def get_config(self):
    return {**super().get_config(), 'ranks': dict(self.ranks)}


@keras.saving.register_keras_serializable(package='lmf_tf')
class CompressibleLSTM(keras.layers.LSTM):
  """`keras.layers.LSTM` whose cell is a `CompressibleLSTMCell`; `ranks` {'kernel': k, 'recurrent_kernel': k} (either
  may be left out: that matrix stays whole). Same inputs, outputs and options as `keras.layers.LSTM`.

  Worked example: H = 150 units on 50-d inputs, both matrices at k = 16: (50 + 600) x 16 + (150 + 600) x 16 = 22,400
  numbers instead of 50 x 600 + 150 x 600 = 120,000 (the bias, 600, stays).
  """

  def __init__(self, units, ranks=None, **kwargs):
    super().__init__(units, **kwargs)
    _as_compressible_cell(self.cell, ranks or {})

  @classmethod
  def from_lstm(cls, layer):
    """Makes a plain `keras.layers.LSTM` (built or not) a `CompressibleLSTM` in place; returns it."""
    if isinstance(layer, cls):
      return layer
    if type(layer) is not keras.layers.LSTM:
      raise ConfigError(f'layer {layer.name!r} is a {type(layer).__name__}, not a keras.layers.LSTM or '
                        'lmf_tf.layers.CompressibleLSTM; lmf_tf does not know how to factorize its matrices')
    if type(layer.cell) is not keras.layers.LSTMCell:
      raise ConfigError(f'LSTM {layer.name!r} has a {type(layer.cell).__name__} cell; lmf_tf factorizes the matrices '
                        'of keras.layers.LSTMCell only')
    layer.__class__ = cls
    _as_compressible_cell(layer.cell, {})
    return layer

  @classmethod
  def with_ranks(cls, layer, ranks):
    """Gives `layer` (an LSTM, built or not) the factorized form `ranks` records, for a model rebuilt from a saved
    config: an unbuilt cell builds its factors itself; a built one gets placeholder factors."""
    cls.from_lstm(layer)
    cell = layer.cell
    for matrix, rank in ranks.items():
      if cell.ranks.get(matrix) == rank:
        continue
      if not cell.built:
        cell.ranks = {**cell.ranks, matrix: check_rank_value(rank)}
        continue
      rows = cell.full_matrix(matrix).shape[0]
      random = np.random.default_rng(0)
      cell.factorize(matrix, random.uniform(-0.05, 0.05, (rows, rank)).astype(np.float32),
                     random.uniform(-0.05, 0.05, (rank, 4 * cell.units)).astype(np.float32))

  @property
  def ranks(self):
    return dict(self.cell.ranks)

  @property
  def is_compressed(self):
    return bool(self.cell.ranks)

  @property
  def rank(self):
    """{matrix: k} of the factorized matrices, or None: what a `.keras` file's owner records."""
    return self.ranks or None

  def inner_loop(self, sequences, initial_state, mask, training=False):
    if self.is_compressed:  # cuDNN takes whole matrices: Keras's loop over time, with the factors
      return keras.layers.RNN.inner_loop(self, sequences, initial_state, mask=mask, training=training)
    return super().inner_loop(sequences, initial_state, mask, training=training)

  def get_config(self):
    return {**super().get_config(), 'ranks': self.ranks}


def _as_compressible_cell(cell, ranks):
  """Makes an `LSTMCell` a `CompressibleLSTMCell` in place, with `ranks` (an unbuilt cell builds its factors)."""
  if not isinstance(cell, CompressibleLSTMCell):
    cell.__class__ = CompressibleLSTMCell
    cell.ranks = {}
    if not cell.built:
      _build_as(cell, CompressibleLSTMCell)
  if ranks:
    if cell.built:
      raise ConfigError(f'LSTM cell {cell.name!r} is built; factorize it with CompressibleLSTMCell.factorize')
    cell.ranks = {name: check_rank_value(k, f'ranks[{name!r}]') for name, k in ranks.items()}
  return cell

