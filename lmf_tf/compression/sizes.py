"""Ship under a byte budget: the bytes a user ships (deployable bytes), predicted by part and measured by part.

Deployable bytes are every file needed to turn a list of tokens into a label: the TFLite flatbuffer plus the
vocabulary file (none when the model hashes its words). The tokenizer rule is code and does not count. A
vocabulary is stored compressed (`write_vocabulary`: the words in alphabetical order, xz), and `read_vocabulary`
reads it as stored; the embedding's rows follow the file's order.

    budget = lmf_tf.budget.parse_budget('90KB')                  # 90,000 bytes (1 KB = 1,000 bytes)
    parts = lmf_tf.budget.predict_parts(model, 'int8')            # {'embedding': ..., 'recurrent': ..., ...}
    measured = lmf_tf.budget.measure_parts(flatbuffer, model)     # the same parts, read off the exported file

The size model (`predict_parts`) follows what the TFLite converter stores (checked on TF 2.21): a float32 weight
is 4 bytes an element; with `kind='int8'` (dynamic-range quantization) a weight of at least 1,024 elements is
stored as int8 (1 byte an element, plus a float32 scale per output channel), a smaller one stays float32;
`float16` stores 2 bytes an element; `int4_embeddings` stores the embedding tables (V x k) as V ceil(k/2) bytes
(int4.py: two numbers a byte, a float32 scale per column and the unpacking operators counted as the overhead
'int4_table') and the rest as int8. What the weights do not explain (operators, tensor metadata, the LSTM's
while loop) is the flatbuffer overhead, a constant per kind of layer (`OVERHEAD_BYTES`), measured on this
converter by `tests/test_budget.py` within the tolerance `PREDICTION_TOLERANCE`.
"""

import dataclasses
import lzma
import os
import re

import numpy as np

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError

KB, MB = 1_000, 1_000_000
PARTS = ('embedding', 'recurrent', 'hidden', 'output', 'vocabulary', 'overhead')
INT8_MIN_ELEMENTS = 1024  # the converter leaves smaller weights in float32 (dynamic-range quantization)
# Flatbuffer bytes beyond the weights: the model's base (signature, input, output, softmax) and each layer's
# operators; measured on TF 2.21 with tests/test_budget.py (`measure_parts`), int8 and float32 alike.
# 'factors', 'lstm_factors': the second matrix product of a factorized matrix (`LowRankKernels`: a Dense's; each of
# an LSTM's two, inside its while loop) and its intermediate tensor. A `FrequencyBlockEmbedding`: 'frequency_blocks'
# once (the concatenation and the product with the stacked projection) and 'frequency_block' for each block of rank
# > 0 (its gather, clip and mask: 6 to 8 operators; their tensors' names make it a few hundred bytes more or less).
OVERHEAD_BYTES = {'base': 4_000, 'embedding': 200, 'dense': 300, 'factors': 400, 'lstm': 9_500, 'lstm_factors': 600,
                  'bidirectional': 3_000, 'frequency_blocks': 300, 'frequency_block': 2_200, 'int4_table': 2_000}
QUANTIZATION_BYTES_PER_CHANNEL = 12
PREDICTION_TOLERANCE = (0.03, 1_000)  # the whole file within 3% or 1,000 bytes, whichever is larger

_BUDGET = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB)?\s*$', re.IGNORECASE)


def parse_budget(value, name='budget_bytes'):
  """Bytes from an int or a string: '90000', '90KB', '1MB', '1.5 MB' (1 KB = 1,000 bytes, 1 MB = 1,000,000).

  >>> parse_budget('90KB'), parse_budget(20_000), parse_budget('1MB')
  (90000, 20000, 1000000)

  Raises ConfigError naming `name` for anything else (a negative, zero, other units such as KiB).
  """
  if isinstance(value, bool):
    raise ConfigError(f'{name}={value!r}: give bytes (an integer) or a size such as 90KB or 1MB')
  if isinstance(value, (int, np.integer)):
    number, unit = float(value), 'B'
  else:
    match = _BUDGET.match(str(value))
    if not match:
      raise ConfigError(f'{name}={value!r}: give bytes (e.g. 90000) or KB / MB (1 KB = 1,000 bytes), e.g. 90KB')
    number, unit = float(match.group(1)), (match.group(2) or 'B').upper()
  result = int(round(number * {'B': 1, 'KB': KB, 'MB': MB}[unit]))
  if result <= 0:
    raise ConfigError(f'{name}={value!r}: a budget must be more than 0 bytes')
  return result


def vocabulary_text(words):
  """The vocabulary file's text before compression: the words in alphabetical order, one a line."""
  return ''.join(word + '\n' for word in sorted(words))


def vocabulary_bytes(words):
  """Bytes of the compressed vocabulary file of `words` (`write_vocabulary`)."""
  return len(_compress(vocabulary_text(words)))


def _compress(text):
  return lzma.compress(text.encode('utf-8'), preset=9 | lzma.PRESET_EXTREME)


def write_vocabulary(words, path):
  """Writes `words` (distinct, no newline in any) as the xz-compressed, alphabetical vocabulary file, atomically.

  Returns the words in file order: id i + `offset` of the model is `returned[i]`."""
  words = sorted(words)
  if len(set(words)) != len(words) or any('\n' in w for w in words):
    raise ConfigError('write_vocabulary(words=...): words must be distinct and contain no newline')
  with io_utils.atomic_path(path) as tmp:
    with open(tmp, 'wb') as f:
      f.write(_compress(vocabulary_text(words)))
  return words


def read_vocabulary(path):
  """The words of a vocabulary file written by `write_vocabulary`, in file order (as stored: xz)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'vocabulary file {path} does not exist')
  with open(path, 'rb') as f:
    try:
      return lzma.decompress(f.read()).decode('utf-8').splitlines()
    except lzma.LZMAError as e:
      raise ConfigError(f'{path}: not an xz-compressed vocabulary file ({e})') from None


def part_of_layer(layer, output_layer):
  """Which part of the deployable bytes a Keras layer's weights belong to."""
  import keras  # pylint: disable=g-import-not-at-top  (the byte parsing above needs no TensorFlow)
  if isinstance(layer, keras.layers.Embedding):
    return 'embedding'
  if isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional, keras.layers.LSTMCell, keras.layers.GRUCell,
                        keras.layers.SimpleRNNCell)):
    return 'recurrent'
  return 'output' if layer is output_layer else 'hidden'


def weight_bytes(shape, kind, packed=False):
  """Bytes of the buffer the converter stores for one weight of `shape` in a TFLite file of `kind` (module
  docstring); `packed`: a table that `kind='int4_embeddings'` stores as int4 (`packed_layers`). An int8 weight's
  scales and zero points, and an int4 table's scales and unpacking, are counted by `quantization_bytes`."""
  elements = int(np.prod(shape))
  if kind == 'float16':
    return 2 * elements
  if packed and kind == 'int4_embeddings':
    return int(shape[0]) * ((int(shape[1]) + 1) // 2)
  return elements if is_int8(shape, kind) else 4 * elements


def packed_layers(model, kind):
  """Names of the layers of `model` whose table a file of `kind` stores as int4: with `'int4_embeddings'`, those
  `int4.with_int4_tables` packs (`int4.packed_tables`); none for any other kind."""
  if kind != 'int4_embeddings':
    return set()
  from lmf_tf.compression import int4  # pylint: disable=g-import-not-at-top  (Keras)
  return set(int4.packed_tables(model))


def is_int8(shape, kind):
  """Whether dynamic-range quantization (`kind='int8'`, or the rest of `'int4_embeddings'`) stores this weight
  as int8."""
  return kind in ('int8', 'int4_embeddings') and len(shape) > 1 and int(np.prod(shape)) >= INT8_MIN_ELEMENTS


def quantization_bytes(shape, kind, packed=False):
  """Metadata of an int8 weight: a float32 scale and an int64 zero point per output channel (one for a table);
  of an int4 table (`packed`): its scales and unpacking operators (`OVERHEAD_BYTES['int4_table']`)."""
  if packed and kind == 'int4_embeddings':
    return OVERHEAD_BYTES['int4_table']
  if not is_int8(shape, kind):
    return 0
  return QUANTIZATION_BYTES_PER_CHANNEL * (1 if len(shape) == 2 and shape[0] > shape[1] * 8 else int(shape[-1]))


def _weighted_layers(model):
  """(layer, part) for every layer of `model` that holds weights itself, innermost first."""
  layers = [layer for layer in model._flatten_layers(include_self=False)  # pylint: disable=protected-access
            if layer.weights and not list(layer._flatten_layers(include_self=False, recursive=False))]  # pylint: disable=protected-access
  output = layers[-1] if layers else None
  return [(layer, part_of_layer(layer, output)) for layer in layers]


def layer_overhead_bytes(model):
  """The flatbuffer overhead the size model predicts for `model`'s layers (`OVERHEAD_BYTES`), before the int8
  weights' metadata."""
  import keras  # pylint: disable=g-import-not-at-top
  total = OVERHEAD_BYTES['base']
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if isinstance(layer, keras.layers.LSTM):
      total += OVERHEAD_BYTES['lstm'] + OVERHEAD_BYTES['lstm_factors'] * len(getattr(layer, 'ranks', {}))
    elif isinstance(layer, keras.layers.Bidirectional):
      total += OVERHEAD_BYTES['bidirectional']  # the reversed sequence and the concatenation
    elif isinstance(layer, keras.layers.Embedding):
      blocks = sum(1 for k in getattr(layer, 'block_ranks', None) or () if k)
      total += OVERHEAD_BYTES['embedding'] + (OVERHEAD_BYTES['frequency_blocks'] + OVERHEAD_BYTES['frequency_block']
                                              * blocks if blocks else 0)
    elif isinstance(layer, keras.layers.Dense):
      total += OVERHEAD_BYTES['dense'] + OVERHEAD_BYTES['factors'] * bool(getattr(layer, 'is_compressed', False))
  return total


def _shipped_weights(layer):
  """The weights of `layer` that a TFLite file stores (not a random layer's seed state)."""
  return [w for w in layer.weights if 'seed' not in w.path]


def weight_shapes(model, kind='int8'):
  """[(part, shape, packed)] of every weight `model` ships as `kind`; `packed`: stored as an int4 table."""
  packed = packed_layers(model, kind)
  return [(part, tuple(w.shape), layer.name in packed) for layer, part in _weighted_layers(model)
          for w in _shipped_weights(layer)]


def parts_from_shapes(shapes, layer_overhead, kind, vocabulary_file_bytes=0):
  """Predicted bytes by part of a file holding weights of `shapes` ([(part, shape, packed)], `weight_shapes`) as
  `kind`, with `layer_overhead` bytes of operators and the vocabulary file."""
  parts = dict.fromkeys(PARTS, 0)
  for part, shape, packed in shapes:
    parts[part] += weight_bytes(shape, kind, packed)
  parts['vocabulary'] = int(vocabulary_file_bytes)
  parts['overhead'] = layer_overhead + sum(quantization_bytes(shape, kind, packed) for _, shape, packed in shapes)
  parts['total'] = sum(parts[p] for p in PARTS)
  return parts


def predict_parts(model, kind='int8', vocabulary_file_bytes=0):
  """Predicted deployable bytes of `model` exported as TFLite of `kind`, by part (`PARTS`) and `'total'`.

  Works on any built Keras model whose projection (if factorized) is already folded (`fold_projection`): the
  parts come from its weights' shapes (`weight_bytes`), the overhead from its layers (`layer_overhead_bytes`) and
  its int8 weights' metadata (`quantization_bytes`).
  """
  return parts_from_shapes(weight_shapes(model, kind), layer_overhead_bytes(model), kind, vocabulary_file_bytes)


def measure_parts(flatbuffer, model, kind, vocabulary_file_bytes=0):
  """Deployable bytes by part read off an exported TFLite `flatbuffer` of `model` (exported as `kind`): each of
  the model's weights is matched with a constant buffer of the file of the size it should have (largest first),
  and counts for its part; the rest of the file (operators, metadata, small constants) is the overhead. A weight
  stored otherwise than the size model says finds no buffer, and its part comes out short."""
  buffers = sorted((size for _, size in constant_tensor_bytes(flatbuffer)), reverse=True)
  weights = sorted(((weight_bytes(shape, kind, packed), part) for part, shape, packed in weight_shapes(model, kind)),
                   reverse=True)
  parts = dict.fromkeys(PARTS, 0)
  for size, part in weights:
    if size in buffers:
      buffers.remove(size)
      parts[part] += size
  parts['vocabulary'] = int(vocabulary_file_bytes)
  parts['overhead'] = len(flatbuffer) - sum(parts[p] for p in ('embedding', 'recurrent', 'hidden', 'output'))
  parts['total'] = len(flatbuffer) + int(vocabulary_file_bytes)
  return parts


@dataclasses.dataclass(frozen=True)
class BudgetCheck:
  """The shipped bytes against the budget: `ok` when `measured['total'] <= budget_bytes`."""
  budget_bytes: int
  predicted: dict
  measured: dict

  @property
  def ok(self):
    return self.measured['total'] <= self.budget_bytes

  def table(self):
    """The parts as lines: part, predicted bytes, measured bytes."""
    lines = [f'{"part":<12}{"predicted":>12}{"measured":>12}']
    for part in PARTS + ('total',):
      lines.append(f'{part:<12}{self.predicted[part]:>12,}{self.measured[part]:>12,}')
    lines.append(f'{"budget":<12}{"":>12}{self.budget_bytes:>12,}  ({"within" if self.ok else "OVER"})')
    return '\n'.join(lines)


def constant_tensor_bytes(flatbuffer):
  """[(tensor name, bytes)] of every constant tensor (a buffer with data) of a TFLite flatbuffer, each buffer once,
  over all subgraphs (an LSTM's while loop keeps its weights in a subgraph of its own)."""
  from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  tflite_model = schema.Model.GetRootAsModel(flatbuffer, 0)
  seen, found = set(), []
  for s in range(tflite_model.SubgraphsLength()):
    subgraph = tflite_model.Subgraphs(s)
    for t in range(subgraph.TensorsLength()):
      tensor = subgraph.Tensors(t)
      buffer = tensor.Buffer()
      size = tflite_model.Buffers(buffer).DataLength() if buffer < tflite_model.BuffersLength() else 0
      if size and buffer not in seen:
        seen.add(buffer)
        found.append((tensor.Name().decode('utf-8'), size))
  return found
