"""Magnitude pruning with retraining under a fixed mask, and sparse checkpoints (Grachev et al. 2017, §3.1).

Keras 3 has no pruning API (tensorflow-model-optimization needs Keras 2), so this is the small mechanism written
here:
  - `magnitude_masks(model, sparsity)`: for each weight matrix (2-D or more; biases are kept), the mask that zeroes
    the `sparsity` share of its entries with the smallest |w| (per tensor, as in Han et al. 2015);
  - `ApplyMasks`: a `keras.callbacks.Callback` that multiplies every masked variable by its mask after each
    training batch, so pruned weights stay exactly zero while the others are fine-tuned (`apply_masks` does the
    same for custom training loops);
  - `sparse_checkpoint(model, masks)`: a `tf.train.Checkpoint` that stores each masked tensor as its mask, packed
    8 entries to a byte (`np.packbits`), and its non-zero values only, so `.data` takes n/8 + 4·nnz bytes instead
    of 4·n; `restore_sparse` rebuilds the dense weights.

Worked example: a 1000 x 100 kernel at 90% sparsity keeps 10,000 values: 12,500 + 40,000 bytes against 400,000.
"""

import keras
import numpy as np
import tensorflow as tf

from lmf_tf.compression import model_size
from lmf_tf.errors import ConfigError


def magnitude_masks(model, sparsity, names=None):
  """{weight name (`model_size.weight_dict` key): bool mask} keeping the largest (1 - sparsity) of |w| per tensor.

  Args:
    model: a built Keras model.
    sparsity: share of entries to prune, 0 <= sparsity < 1.
    names: only these weights (default: every weight with 2 or more dimensions).
  """
  if not 0 <= sparsity < 1:
    raise ConfigError(f'--sparsity must be in [0, 1), got {sparsity}')
  masks = {}
  for name, variable in model_size.weight_dict(model).items():
    if (names is not None and name not in names) or (names is None and len(variable.shape) < 2):
      continue
    w = np.abs(variable.numpy()).ravel()
    pruned = int(round(sparsity * w.size))
    mask = np.ones(w.size, bool)
    if pruned:
      mask[np.argsort(w, kind='stable')[:pruned]] = False
    masks[name] = mask.reshape(variable.shape)
  return masks


def apply_masks(model, masks):
  """Zeroes the pruned entries of every masked variable (call after each optimizer step)."""
  weights = model_size.weight_dict(model)
  for name, mask in masks.items():
    weights[name].assign(weights[name] * mask.astype(np.float32))


class ApplyMasks(keras.callbacks.Callback):
  """Keeps pruned weights at zero during `fit`: applies the masks once at the start and after every batch."""

  def __init__(self, masks):
    super().__init__()
    self.masks = masks

  def on_train_begin(self, logs=None):
    apply_masks(self.model, self.masks)

  def on_train_batch_end(self, batch, logs=None):
    apply_masks(self.model, self.masks)


def sparsity_of(model, masks):
  """Share of zero entries over the masked weights."""
  weights = model_size.weight_dict(model)
  total = sum(weights[n].numpy().size for n in masks)
  zeros = sum(int(np.sum(weights[n].numpy() == 0)) for n in masks)
  return zeros / total if total else 0.0


def sparse_checkpoint(model, masks):
  """A `tf.train.Checkpoint` with each masked weight as (packed mask, non-zero values) and the others dense.

  Keys: `bits/<name>` uint8[ceil(n / 8)], `values/<name>` float32[nnz], `dense/<name>` for unmasked weights;
  `shapes/<name>` int64[rank] records each masked tensor's shape.
  """
  bits, values, shapes, dense = {}, {}, {}, {}
  for name, variable in model_size.weight_dict(model).items():
    if name in masks:
      w = variable.numpy()
      mask = masks[name].ravel()
      bits[name] = tf.Variable(np.packbits(mask), trainable=False)
      values[name] = tf.Variable(w.ravel()[mask], trainable=False)
      shapes[name] = tf.Variable(np.array(w.shape, np.int64), trainable=False)
    else:
      dense[name] = variable
  return tf.train.Checkpoint(bits=bits, values=values, shapes=shapes, dense=dense)


def restore_sparse(model, directory):
  """Loads a checkpoint written with `sparse_checkpoint` into `model` (dense weights, zeros where pruned).

  Returns:
    {weight name: bool mask} of the masked weights, to continue training under the same masks.
  """
  reader = tf.train.load_checkpoint(f'{directory}/{model_size.PREFIX}')
  stored = reader.get_variable_to_shape_map()
  masks = {}
  for name, variable in model_size.weight_dict(model).items():
    suffix = f'{name.replace(".", "..")}/.ATTRIBUTES/VARIABLE_VALUE'  # how a Checkpoint escapes a dict key
    if f'bits/{suffix}' in stored:
      size = int(np.prod(variable.shape))
      mask = np.unpackbits(reader.get_tensor(f'bits/{suffix}'))[:size].astype(bool)
      dense = np.zeros(size, np.float32)
      dense[mask] = reader.get_tensor(f'values/{suffix}')
      variable.assign(dense.reshape(variable.shape))
      masks[name] = mask.reshape(variable.shape)
    else:
      variable.assign(reader.get_tensor(f'dense/{suffix}'))
  return masks
