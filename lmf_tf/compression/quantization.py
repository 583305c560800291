"""Post-training fixed-point quantization, the paper's first baseline (Acharya et al. 2019, §3.3 and §4.1).

Each weight matrix W (embedding, LSTM kernel and recurrent kernel, dense kernels) is stored as b-bit integers
q = clip(round(W / s), -(2^(b-1) - 1), 2^(b-1) - 1) with a symmetric scale s = max|W| / (2^(b-1) - 1), one per
tensor or, with `per_channel`, one per output column of a kernel and one per row (word) of an embedding table. Accuracy is measured with the de-quantized weights q·s.
Biases (1-D, a few hundred numbers) stay in float32. The checkpoint stores q (int8 / int16) and s, so its
`.data` shrinks about 4x / 2x.

Worked example, b = 8: W = [0.5, -1.27, 0.01] -> s = 1.27 / 127 = 0.01, q = [50, -127, 1], |W - q·s| <= s/2.
`quantize` is Keras's `abs_max_quantize`; this module adds the per-tensor / per-row choice, the model walk and the
integer checkpoint.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from lmf_tf.compression import model_size
from lmf_tf.errors import ConfigError

INT_TYPES = {8: np.int8, 16: np.int16}


@dataclasses.dataclass
class QuantizedTensor:
  """values: int8/int16 array of W's shape; scale: float32, shape () per tensor, or per channel (1, C) for a
  kernel and (V, 1) for an embedding table."""
  values: np.ndarray
  scale: np.ndarray
  bits: int

  def dequantize(self):
    return self.values.astype(np.float32) * self.scale


def quantize(weights, bits, per_channel=False, channel_axis=-1):
  """Symmetric fixed-point quantization of a float array to `bits` (8 or 16) bits, by Keras's own
  `keras.quantizers.abs_max_quantize` (which returns 1/s; its epsilon of 1e-7 keeps an all-zero tensor finite).

  With `per_channel`, one scale per index of `channel_axis`: the output column of a kernel (-1), or the row of an
  embedding table (0), which is what a lookup reads.
  """
  if bits not in INT_TYPES:
    raise ConfigError(f'bits={bits}: fixed-point quantization takes 8 or 16 bits')
  w = np.asarray(weights, np.float32)
  qmax = 2 ** (bits - 1) - 1
  axes = tuple(a for a in range(w.ndim) if a != channel_axis % w.ndim) if per_channel and w.ndim > 1 else None
  values, inverse_scale = keras.quantizers.abs_max_quantize(w, axis=axes, value_range=(-qmax, qmax),
                                                            dtype=np.dtype(INT_TYPES[bits]).name, to_numpy=True)
  scale = (1.0 / keras.ops.convert_to_numpy(inverse_scale)).astype(np.float32)
  return QuantizedTensor(keras.ops.convert_to_numpy(values), scale if axes is not None else scale.reshape(()), bits)


def quantize_model(model, bits, per_channel=False):
  """Replaces every weight matrix of `model` by its de-quantized b-bit version, in place.

  Returns:
    {weight name: QuantizedTensor} for the quantized (2-D and larger) weights.
  """
  quantized = {}
  for name, variable in model_size.weight_dict(model).items():
    if len(variable.shape) < 2:
      continue
    q = quantize(variable.numpy(), bits, per_channel, channel_axis=0 if name.endswith('embeddings') else -1)
    variable.assign(q.dequantize())
    quantized[name] = q
  return quantized


def quantized_checkpoint(model, quantized):
  """A `tf.train.Checkpoint` holding the integer tensors and scales, and the float weights left unquantized."""
  weights = model_size.weight_dict(model)
  return tf.train.Checkpoint(
      quantized={name: tf.Variable(q.values) for name, q in quantized.items()},
      scales={name: tf.Variable(q.scale) for name, q in quantized.items()},
      float_weights={name: w for name, w in weights.items() if name not in quantized})


def restore_dequantized(model, directory):
  """Loads a checkpoint written with `quantized_checkpoint` into `model` as de-quantized float weights."""
  prefix = f'{directory}/{model_size.PREFIX}'
  reader = tf.train.load_checkpoint(prefix)
  names = reader.get_variable_to_shape_map()
  for name, variable in model_size.weight_dict(model).items():
    key = f'quantized/{name.replace(".", "..")}/.ATTRIBUTES/VARIABLE_VALUE'
    if key in names:
      scale = reader.get_tensor(key.replace('quantized/', 'scales/', 1))
      variable.assign(reader.get_tensor(key).astype(np.float32) * scale)
    else:
      variable.assign(reader.get_tensor(f'float_weights/{name.replace(".", "..")}/.ATTRIBUTES/VARIABLE_VALUE'))
  return model
