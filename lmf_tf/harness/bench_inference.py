"""The paper's Table 4: size, accuracy and time of TFLite exports of the trained SST-2 classifiers, side by side."""

import dataclasses
import statistics
import time

import numpy as np

from lmf_tf.compression import export
from lmf_tf.text import input_pipeline, models, trained_models
from lmf_tf.text import export as text_export
from lmf_tf.text.callbacks import embedding_rank


@dataclasses.dataclass(frozen=True)
class InferenceVariant:
  """One row of Table 4: a trained checkpoint (`best/` directory) exported as a TFLite model of `kind`."""
  name: str  # e.g. 'online R=90 + int8'
  checkpoint_dir: str
  kind: str = 'float32'  # export.KINDS
  fold: bool = False  # fold the projection V_kᵀ into the next layer (`export.fold_projection`)


def test_sequences(checkpoint_dir):
  """The test split of the checkpoint's data set, encoded with its vocabulary: ([int32[T_i]], int64[N] labels)."""
  model, vocabulary, config = trained_models.load_trained_model(checkpoint_dir)
  del model
  data = input_pipeline.prepare_data(config, vocabulary)
  sequences, labels = [], []
  for ids, label in data.encoded_test.as_numpy_iterator():
    sequences.append(ids)
    labels.append(label)
  return sequences, np.array(labels)


def time_inference(variants, sequences, labels, batch_sizes=(1, 64), repeats=5, num_threads=1):
  """Table 4: size, accuracy and time of each variant's TFLite model on the same `sequences`, measured side by side.

  Every variant is converted once per batch size. One warm-up pass, then `repeats` passes in which the variants
  take turns (variant 1, 2, ..., then again), so that a slow spell of the machine hits every row alike. A pass
  runs the whole set in file order, in batches of `batch_size` padded to their longest sentence.

  Returns:
    A list of dicts, one per variant: `tflite_bytes` (the file at batch size 1, as `scripts/export.py` writes it
    and a user ships it; a flatbuffer's size depends a little on the batch size it is converted for),
    `vocabulary_bytes` and `deployable_bytes` (the two together), `test_accuracy` (from the largest batch size),
    `seconds_batch<b>` (median whole-set time), `latency_ms_p50`/`latency_ms_p99` (per sentence at batch 1, over
    all repeats) and the raw `pass_seconds_batch<b>`.
  """
  if repeats < 1:
    raise ValueError(f'repeats must be >= 1, got {repeats}')
  loaded, rows, runners = {}, [], {}
  for variant in variants:
    key = variant.checkpoint_dir, variant.fold
    if key not in loaded:
      model, vocabulary, _ = text_export.load_for_export(*key)
      loaded[key] = model, vocabulary.file_bytes()
    model, vocabulary_bytes = loaded[key]
    rank = models.word_embedding(model).output_dim if variant.fold else embedding_rank(model)
    row = {'name': variant.name, 'kind': variant.kind, 'fold': variant.fold, 'checkpoint_dir': variant.checkpoint_dir,
           'embedding_rank': rank, 'vocabulary_bytes': vocabulary_bytes}
    for batch_size in sorted(set(batch_sizes) | {1}):
      flatbuffer = export.to_tflite(model, variant.kind, batch_size)
      if batch_size == 1:
        row['tflite_bytes'] = len(flatbuffer)
        row['deployable_bytes'] = len(flatbuffer) + vocabulary_bytes
      if batch_size in batch_sizes:
        runners[variant.name, batch_size] = export.TfliteRunner(flatbuffer, num_threads=num_threads)
    probs = runners[variant.name, max(batch_sizes)].predict(sequences)
    row['test_accuracy'] = float(np.mean(probs.argmax(-1) == labels))
    rows.append(row)
  latencies = {variant.name: [] for variant in variants}
  passes = {(variant.name, b): [] for variant in variants for b in batch_sizes}
  padded = {b: [export.pad(export.fill_batch(sequences[i:i + b], b)) for i in range(0, len(sequences), b)]
            for b in batch_sizes}  # the same batches for every variant and pass
  for repeat in range(repeats + 1):  # pass 0 is the warm-up
    for variant in variants:
      for batch_size in batch_sizes:
        runner = runners[variant.name, batch_size]
        start = time.perf_counter()
        for batch in padded[batch_size]:
          call_start = time.perf_counter()
          runner(batch)
          if batch_size == 1 and repeat:
            latencies[variant.name].append(time.perf_counter() - call_start)
        if repeat:
          passes[variant.name, batch_size].append(time.perf_counter() - start)
  for row in rows:
    for batch_size in batch_sizes:
      row[f'pass_seconds_batch{batch_size}'] = passes[row['name'], batch_size]
      row[f'seconds_batch{batch_size}'] = statistics.median(passes[row['name'], batch_size])
    if latencies[row['name']]:
      ms = 1000 * np.array(latencies[row['name']])
      row['latency_ms_p50'], row['latency_ms_p99'] = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
  return rows


TABLE4_REDUCTIONS = (50, 75, 90)


def table4_variants(model, workdir='checkpoints', seed=1, dataset='sst2'):
  """The rows of Table 4 for one model, from the `best/` checkpoints of its training runs with `seed`:
  uncompressed float32, online LMF at R = 50, 75, 90 as trained and with the projection folded into the next
  layer, the uncompressed model as TFLite float16 and int8 (real 16- and 8-bit kernels), and online R = 90 then
  int8 (both methods stacked), as trained and folded."""
  def best(reduction):
    return f'{workdir}/{dataset}_{model}_R{reduction}_seed{seed}/best'

  return ([InferenceVariant('uncompressed', best(0))]
          + [InferenceVariant(f'online R={r}', best(r)) for r in TABLE4_REDUCTIONS]
          + [InferenceVariant(f'online R={r} folded', best(r), fold=True) for r in TABLE4_REDUCTIONS]
          + [InferenceVariant('TFLite float16', best(0), 'float16'), InferenceVariant('TFLite int8', best(0), 'int8'),
             InferenceVariant('online R=90 + int8', best(90), 'int8'),
             InferenceVariant('online R=90 folded + int8', best(90), 'int8', fold=True)])


def table4(models=('lstm', 'dan'), workdir='checkpoints', seed=1, repeats=5, batch_sizes=(1, 64), echo=print):
  """Times every Table 4 variant of each model (`time_inference`). Returns {model: rows}; a model whose
  checkpoints are missing raises CheckpointNotFoundError naming the directory."""
  table = {}
  for model in models:
    variants = table4_variants(model, workdir, seed)
    sequences, labels = test_sequences(variants[0].checkpoint_dir)
    echo(f'{model}: {len(variants)} variants, {len(sequences)} test sentences, {repeats} repeats')
    start = time.perf_counter()
    table[model] = time_inference(variants, sequences, labels, batch_sizes, repeats)
    echo(f'{model}: done in {time.perf_counter() - start:.0f}s')
  return table
