"""Probe (not part of the library): can the embedding table ship as int4 with LiteRT's built-in ops, and what does
it cost in accuracy? docs/budget.md, "What is not built yet".

Trains one plan of the study (default: CLINC150's 45 KB plan, seed 1) as `scripts/budget.py --plan` does, then
ships its folded model twice: as the study does (int8 TFLite, the converter's dynamic-range quantization) and with
the V x k table packed two 4-bit values a byte (a uint8 constant; GATHER, then FLOOR_DIV / MUL / SUB to unpack and
one per-column float scale), the rest int8 as before: post-training, with two rules for the scale, and with
`--qat_epochs` more epochs of the folded model whose table is quantized in the forward pass (quantization-aware
training, straight-through gradient, the 'std' rule) before it is packed. Prints the TFLite bytes and the LiteRT
dev / test accuracy of each.

    .venv/bin/python scripts/probes/int4_embedding.py --plan=bag-w2000-k10-u64-int8 --qat_epochs=4
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


STDS = 2.5  # the 'std' rule: clip each column at 2.5 standard deviations (at most its largest value)


def std_scale(table):
  """The 'std' rule's per-column scale, in Keras ops (the same in training and in packing)."""
  top = ops.max(ops.abs(table), axis=0)
  return ops.maximum(ops.minimum(STDS * ops.std(table, axis=0), top), 1e-12) / 7.0


def fake_int4(table):
  """The table as int4 gives it back, with the gradient of the identity (straight-through)."""
  scale = ops.stop_gradient(std_scale(table))
  quantized = ops.clip(ops.round(table / scale), -8, 7) * scale
  return table + ops.stop_gradient(quantized - table)


class FakeInt4Embedding(keras.layers.Embedding):
  """An Embedding trained as it will ship: its table quantized to int4 in the forward pass."""

  def call(self, ids):
    return ops.take(fake_int4(self.embeddings), ops.cast(ids, 'int32'), axis=0)


def pack_int4(table, clip):
  """(packed, scale) of a float table, per column symmetric; `clip` 'max' scales to the column's largest value,
  'mse' to the clip (a fraction 0.2-1 of it) with the least squared error, 'std' by `std_scale`."""
  columns, scales = table.shape[1], []
  if clip == 'std':
    return _packed(table, np.asarray(std_scale(table), np.float32))
  for j in range(columns):
    column, top = table[:, j], max(float(np.abs(table[:, j]).max()), 1e-12)
    fractions = [1.0] if clip == 'max' else np.linspace(0.2, 1.0, 33)
    errors = [(np.mean((np.clip(np.round(column / (f * top / 7)), -8, 7) * (f * top / 7) - column) ** 2), f * top / 7)
              for f in fractions]
    scales.append(min(errors)[1])
  return _packed(table, np.asarray(scales, np.float32))


def _packed(table, scale):
  columns = table.shape[1]
  q = np.clip(np.round(table / scale), -8, 7).astype(np.int32) + 8
  half = (columns + 1) // 2
  q = np.concatenate([q, np.full((len(q), 2 * half - columns), 8, np.int32)], axis=1)
  return (q[:, :half] * 16 + q[:, half:]).astype(np.uint8), scale


def with_table(model, name, make, weights):
  """A copy of `model` whose layer `name` is `make(layer)` with `weights(its table)`, every other weight kept."""
  copy = keras.models.clone_model(model, clone_function=lambda layer: make(layer) if layer.name == name
                                  else layer.__class__.from_config(layer.get_config()))
  for source, layer in zip(model.layers, copy.layers):
    if layer.name == name:
      layer.set_weights(weights(source.get_weights()[0]))
    elif layer.weights:
      layer.set_weights(source.get_weights())
  return copy


def with_packed_table(model, name, clip):
  return with_table(model, name, lambda l: PackedInt4Embedding(l.input_dim, l.output_dim, l.mask_zero, name=name),
                    lambda table: list(pack_int4(table, clip)))


def trained_as_int4(model, name, data, vocabulary, epochs):
  """The folded model trained `epochs` more with its table quantized in the forward pass (Adam, 3e-4)."""
  qat = with_table(model, name, lambda l: FakeInt4Embedding(l.input_dim, l.output_dim, mask_zero=l.mask_zero,
                                                            name=name), lambda table: [table])
  qat.compile(keras.optimizers.Adam(3e-4), 'sparse_categorical_crossentropy', metrics=['accuracy'])
  encoded = {split: input_pipeline.encode_dataset(getattr(data.splits, split), vocabulary)
             for split in ('train', 'validation')}
  steps = input_pipeline.count_batches(encoded['train'], budget_training.BATCH_SIZE)
  qat.fit(input_pipeline.training_batches(encoded['train'], budget_training.BATCH_SIZE, 1, 0, epochs),
          validation_data=input_pipeline.batches(encoded['validation'], budget_training.BATCH_SIZE), epochs=epochs,
          steps_per_epoch=steps, verbose=0, callbacks=[keras.callbacks.EarlyStopping(
              'val_accuracy', mode='max', patience=epochs, restore_best_weights=True)])
  return with_table(qat, name, lambda l: keras.layers.Embedding(l.input_dim, l.output_dim, mask_zero=l.mask_zero,
                                                                name=name), lambda table: [table])


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--dataset', default='clinc150')
  parser.add_argument('--plan', default='bag-w2000-k10-u64-int8')
  parser.add_argument('--workdir', default='checkpoints/probes')
  parser.add_argument('--qat_epochs', type=int, default=0, help='epochs of quantization-aware training (0: none)')
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
  models = {clip: with_packed_table(shipped['model'], 'words', clip) for clip in ('max', 'mse', 'std')}
  if args.qat_epochs:
    trained = trained_as_int4(shipped['model'], 'words', data, vocabulary, args.qat_epochs)
    models[f'std, {args.qat_epochs} epochs of QAT'] = with_packed_table(trained, 'words', 'std')
  for clip, model in models.items():
    flatbuffer = to_tflite(model, 'int8')
    runner = export.TfliteRunner(flatbuffer)
    dev, test = (budget_training._accuracy(runner.predict(ids), labels) for ids, labels in splits.values())  # pylint: disable=protected-access
    print(f'{plan.name}: int4 table ({clip} clip): {len(flatbuffer):,} bytes, dev {dev:.4f}, test {test:.4f}')


if __name__ == '__main__':
  main()
