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

import numpy as np

from lmf_tf.compression import export, int4
from lmf_tf.text import budget_search, budget_training, input_pipeline


def pack_int4(table, clip):
  """(packed, scale) of a float table, per column symmetric: `clip` 'max' scales to the column's largest value;
  'mse' and 'std' are the library's rules (`lmf_tf.compression.int4.column_scales`)."""
  if clip == 'max':
    scales = np.maximum(np.abs(table).max(axis=0), 1e-12).astype(np.float32) / 7.0
  else:
    scales = int4.column_scales(table, clip)
  return int4.pack(table, scales), scales


def with_table(model, name, make, weights):
  """A copy of `model` whose layer `name` is `make(layer)` with `weights(its table)`, every other weight kept."""
  return int4._replaced(model, [name], make, lambda source: weights(source.get_weights()[0]))  # pylint: disable=protected-access


def with_packed_table(model, name, clip):
  return with_table(model, name, lambda l: int4.PackedInt4Embedding(l.input_dim, l.output_dim, l.mask_zero, name=name),
                    lambda table: list(pack_int4(table, clip)))


def trained_as_int4(model, data, vocabulary, epochs):
  """The folded model trained `epochs` more with its table quantized in the forward pass: the study's
  `budget_training._trained_for_int4` (Adam 3e-4, the best dev epoch)."""
  encoded = {split: input_pipeline.encode_dataset(getattr(data.splits, split), vocabulary)
             for split in ('train', 'validation')}
  steps = input_pipeline.count_batches(encoded['train'], budget_training.BATCH_SIZE)
  return budget_training._trained_for_int4(  # pylint: disable=protected-access
      model, {'train': encoded['train'], 'dev': encoded['validation']}, steps, 0, 'sparse_categorical_crossentropy',
      epochs)


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
    trained = trained_as_int4(shipped['model'], data, vocabulary, args.qat_epochs)
    models[f'std, {args.qat_epochs} epochs of QAT'] = int4.with_int4_tables(trained)  # its own rule, 'std'
  for clip, model in models.items():
    flatbuffer = to_tflite(model, 'int8')
    runner = export.TfliteRunner(flatbuffer)
    dev, test = (budget_training._accuracy(runner.predict(ids), labels) for ids, labels in splits.values())  # pylint: disable=protected-access
    print(f'{plan.name}: int4 table ({clip} clip): {len(flatbuffer):,} bytes, dev {dev:.4f}, test {test:.4f}')


if __name__ == '__main__':
  main()
