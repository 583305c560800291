"""Probe (not part of the library): can the embedding table ship as int4 with LiteRT's built-in ops, and what does
it cost in accuracy? docs/budget.md, "What is not built yet".

Trains one plan of the study (default: CLINC150's 45 KB plan, seed 1) as `scripts/budget.py --plan` does, then
ships its folded model twice: as the study does (int8 TFLite, the converter's dynamic-range quantization) and with
the V x k table packed two 4-bit values a byte (a uint8 constant; GATHER, then FLOOR_DIV / MUL / SUB to unpack and
one per-column float scale), the rest int8 as before. Post-training only: no quantization-aware training. Prints
the TFLite bytes and the LiteRT dev / test accuracy of each.

    .venv/bin/python scripts/probes/int4_embedding.py --plan=bag-w2000-k10-u64-int8
"""

import argparse

import keras
import numpy as np
from keras import ops

from lmf_tf.compression import export
from lmf_tf.text import budget_search, budget_training, input_pipeline


class PackedInt4Embedding(keras.layers.Layer):
  """An inference-only Embedding(V, k) whose table is stored 4 bits a number: `packed` uint8[V, ceil(k/2)] holds
  column j < ceil(k/2) in the high nibble and column ceil(k/2) + j in the low one, as q + 8 for q in [-8, 7];
  row i of the table is (q - 8) * scale."""

  def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
    super().__init__(**kwargs)
    self.input_dim, self.output_dim, self.mask_zero = input_dim, output_dim, mask_zero
    self.half = (output_dim + 1) // 2

  def build(self, input_shape=None):
    self.packed = self.add_weight(shape=(self.input_dim, self.half), dtype='uint8', trainable=False, name='packed',
                                  initializer='zeros')
    self.scale = self.add_weight(shape=(self.output_dim,), trainable=False, name='scale', initializer='ones')

  def call(self, ids):
    rows = ops.cast(ops.take(self.packed, ids, axis=0), 'int32')
    high = ops.floor_divide(rows, 16)
    values = ops.concatenate([high, rows - 16 * high], axis=-1)[..., :self.output_dim]
    return (ops.cast(values, 'float32') - 8.0) * self.scale

  def compute_mask(self, ids, mask=None):
    return ops.not_equal(ids, 0) if self.mask_zero else None


def pack_int4(table, clip):
  """(packed, scale) of a float table, per column symmetric; `clip` 'max' scales to the column's largest value,
  'mse' to the clip (a fraction 0.2-1 of it) with the least squared error."""
  columns, scales = table.shape[1], []
  for j in range(columns):
    column, top = table[:, j], max(float(np.abs(table[:, j]).max()), 1e-12)
    fractions = [1.0] if clip == 'max' else np.linspace(0.2, 1.0, 33)
    errors = [(np.mean((np.clip(np.round(column / (f * top / 7)), -8, 7) * (f * top / 7) - column) ** 2), f * top / 7)
              for f in fractions]
    scales.append(min(errors)[1])
  scale = np.asarray(scales, np.float32)
  q = np.clip(np.round(table / scale), -8, 7).astype(np.int32) + 8
  half = (columns + 1) // 2
  q = np.concatenate([q, np.full((len(q), 2 * half - columns), 8, np.int32)], axis=1)
  return (q[:, :half] * 16 + q[:, half:]).astype(np.uint8), scale


def with_packed_table(model, name, clip):
  def clone(layer):
    if layer.name == name:
      return PackedInt4Embedding(layer.input_dim, layer.output_dim, mask_zero=layer.mask_zero, name=name)
    return layer.__class__.from_config(layer.get_config())
  packed = keras.models.clone_model(model, clone_function=clone)
  for source, layer in zip(model.layers, packed.layers):
    if layer.name == name:
      layer.set_weights(list(pack_int4(source.get_weights()[0], clip)))
    elif layer.weights:
      layer.set_weights(source.get_weights())
  return packed


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dataset', default='clinc150')
  parser.add_argument('--plan', default='bag-w2000-k10-u64-int8')
  parser.add_argument('--workdir', default='checkpoints/probes')
  args = parser.parse_args()
  data = budget_training.load_data(args.dataset)
  plan = budget_search.plan_from_name(args.plan)
  shipped, to_tflite = {}, export.to_tflite
  budget_training.export.to_tflite = lambda model, *a, **k: shipped.setdefault('model', model) and to_tflite(model, *a, **k)
  run = budget_training.train_plan(plan, data, 1, f'{args.workdir}/{plan.name}')
  vocabulary, _ = budget_training._vocabulary(data, plan, f'{args.workdir}/{plan.name}')  # pylint: disable=protected-access
  splits = {name: budget_training._sequences(input_pipeline.encode_dataset(getattr(data.splits, attr), vocabulary))  # pylint: disable=protected-access
            for name, attr in (('dev', 'validation'), ('test', 'test'))}
  print(f'{plan.name}: int8 table: {run["tflite_bytes"]:,} bytes, dev {run["dev_accuracy"]:.4f}, '
        f'test {run["test_accuracy"]:.4f}')
  for clip in ('max', 'mse'):
    flatbuffer = to_tflite(with_packed_table(shipped['model'], 'words', clip), 'int8')
    runner = export.TfliteRunner(flatbuffer)
    dev, test = (budget_training._accuracy(runner.predict(ids), labels) for ids, labels in splits.values())  # pylint: disable=protected-access
    print(f'{plan.name}: int4 table ({clip} clip): {len(flatbuffer):,} bytes, dev {dev:.4f}, test {test:.4f}')


if __name__ == '__main__':
  main()
