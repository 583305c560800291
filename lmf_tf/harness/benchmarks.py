"""Timing benchmarks: the input pipeline (bucketed `tf.data` against padded NumPy arrays), inference of exported
TFLite models on the SST-2 test set (the paper's Table 4), and the compression step at 100k-1M words."""

import dataclasses
import os
import statistics
import threading
import time

import keras
import numpy as np

from lmf_tf import callbacks, compression, export, input_pipeline, training
from lmf_tf.layers import CompressibleEmbedding
from lmf_tf import models as lmf_models


class EpochTimer(keras.callbacks.Callback):
  """Wall seconds of each epoch of `fit` (`seconds[i]` for epoch i)."""

  def __init__(self):
    super().__init__()
    self.seconds = []

  def on_epoch_begin(self, epoch, logs=None):
    self._start = time.perf_counter()

  def on_epoch_end(self, epoch, logs=None):
    self.seconds.append(time.perf_counter() - self._start)


def compare_input_pipelines(config, epochs=3):
  """Trains the same model (same seed, batch size) `epochs` epochs on each input; the first epoch (tracing) is
  left out of the timing.

  Returns:
    dict with the median seconds per epoch of each variant and `speedup` = padded / bucketed (> 1: bucketing is
    faster), plus the padded length and the number of batches.
  """
  if epochs < 2:
    raise ValueError(f'--epochs must be >= 2: the first epoch (tracing) is not timed, got {epochs}')
  config = config.resolved().validate()
  data = training.prepare_data(config)
  x, y = input_pipeline.to_padded_arrays(data.encoded_train, config.max_length)
  timings = {}
  for name in ('bucketed_tf_data', 'padded_numpy'):
    keras.utils.set_random_seed(config.seed)
    model, _ = training.build_model(config, data.vocabulary, data.num_classes)
    timer = EpochTimer()
    if name == 'bucketed_tf_data':
      model.fit(data.train_epochs(0, epochs), epochs=epochs, steps_per_epoch=data.steps_per_epoch,
                callbacks=[timer], verbose=0, shuffle=False)
    else:
      model.fit(x, y, batch_size=config.batch_size, epochs=epochs, callbacks=[timer], verbose=0, shuffle=True)
    timings[name] = {'epoch_seconds': timer.seconds, 'median_epoch_seconds': statistics.median(timer.seconds[1:])}
  return {
      **timings,
      'speedup': timings['padded_numpy']['median_epoch_seconds'] / timings['bucketed_tf_data']['median_epoch_seconds'],
      'padded_length': int(x.shape[1]),
      'train_examples': int(x.shape[0]),
      'model': config.model,
      'batch_size': config.batch_size,
  }


@dataclasses.dataclass(frozen=True)
class InferenceVariant:
  """One row of Table 4: a trained checkpoint (`best/` directory) exported as a TFLite model of `kind`."""
  name: str  # e.g. 'online R=90 + int8'
  checkpoint_dir: str
  kind: str = 'float32'  # export.KINDS
  fold: bool = False  # fold the projection V_kᵀ into the next layer (`export.fold_projection`)


def test_sequences(checkpoint_dir):
  """The test split of the checkpoint's data set, encoded with its vocabulary: ([int32[T_i]], int64[N] labels)."""
  model, vocabulary, config = training.load_trained_model(checkpoint_dir)
  del model
  data = training.prepare_data(config, vocabulary)
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
    A list of dicts, one per variant: `tflite_bytes`, `test_accuracy` (from the largest batch size),
    `seconds_batch<b>` (median whole-set time), `latency_ms_p50`/`latency_ms_p99` (per sentence at batch 1, over
    all repeats) and the raw `pass_seconds_batch<b>`.
  """
  if repeats < 1:
    raise ValueError(f'repeats must be >= 1, got {repeats}')
  loaded, rows, runners = {}, [], {}
  for variant in variants:
    key = variant.checkpoint_dir, variant.fold
    if key not in loaded:
      loaded[key] = export.load_for_export(*key)[0]
    model = loaded[key]
    rank = lmf_models.word_embedding(model).output_dim if variant.fold else callbacks.embedding_rank(model)
    row = {'name': variant.name, 'kind': variant.kind, 'fold': variant.fold, 'checkpoint_dir': variant.checkpoint_dir,
           'embedding_rank': rank}
    for batch_size in batch_sizes:
      flatbuffer = export.to_tflite(model, variant.kind, batch_size)
      runners[variant.name, batch_size] = export.TfliteClassifier(flatbuffer, num_threads=num_threads)
      row['tflite_bytes'] = len(flatbuffer)
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



def lm_inference_speed(checkpoint_dirs, words=10_000, repeats=3, batch_size=1):
  """Words per second of each trained LM (`lm_training.load_trained_lm`) on the first `words` test words, side by
  side: one warm-up pass, then `repeats` passes in which the models take turns; the fastest pass counts. On this
  shared 2-core machine a pass is sometimes stalled to 2-2.5x its time (other processes, the hypervisor), so
  noise only adds time; the minimum is the estimate that such stalls do not move (as `timeit` advises).

  A pass is `lm_training.evaluate_perplexity` over TBPTT windows of the model's `num_steps` with `batch_size`
  streams, the state carried, as at deployment of a next-word model. Returns {checkpoint_dir: {'words_per_second',
  'pass_seconds', 'words', 'perplexity'}}; the perplexity is of these words only (a check, not the result).
  """
  from lmf_tf import lm_data, lm_training  # the classifier benchmarks need neither

  if repeats < 1:
    raise ValueError(f'repeats must be >= 1, got {repeats}')
  models, data = {}, {}
  for directory in checkpoint_dirs:
    model, config, _ = lm_training.load_trained_lm(directory)
    ids = lm_data.load_corpus(config.data_dir).test[:words + 1]
    models[directory] = model
    data[directory] = lm_data.tbptt_dataset(ids, batch_size, config.num_steps, drop_remainder=False).cache()
  passes = {directory: [] for directory in models}
  results = {}
  for repeat in range(repeats + 1):  # pass 0 is the warm-up
    for directory, model in models.items():
      measured = lm_training.evaluate_perplexity(model, data[directory])
      if repeat:
        passes[directory].append(measured['seconds'])
      results[directory] = {'words': measured['words'], 'perplexity': measured['perplexity']}
  for directory, seconds in passes.items():
    results[directory].update(pass_seconds=seconds,
                              words_per_second=results[directory]['words'] / min(seconds))
  return results


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


class PeakMemory:
  """Peak resident memory above the level at entry, sampled every `interval` seconds from /proc (Linux)."""

  def __init__(self, interval=0.005):
    self.interval = interval
    self.peak_extra_bytes = 0

  @staticmethod
  def rss_bytes():
    with open('/proc/self/statm') as f:
      return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

  def _poll(self):
    while not self._stop.is_set():
      self.peak_extra_bytes = max(self.peak_extra_bytes, self.rss_bytes() - self._start)
      self._stop.wait(self.interval)

  def __enter__(self):
    self._start = self.rss_bytes()
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._poll, daemon=True)
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join()
    self.peak_extra_bytes = max(self.peak_extra_bytes, self.rss_bytes() - self._start)


def compression_scale(vocab_sizes=(100_000, 1_000_000), dim=300, reduction=90, full_svd_up_to=100_000, seed=0,
                      echo=print):
  """Time and peak extra memory of compressing a V x d embedding (issue 8: the paper's 1M-word vocabularies).

  For each V: a built `CompressibleEmbedding(V, d)` with N(0, 1) weights; the truncated SVD alone by the Gram route
  and, for V <= `full_svd_up_to`, by the plain float64 SVD; then the whole swap (`compress_layer`: read the matrix,
  Gram-route SVD, new factor variables). Returns a list of dicts, one per V.
  """
  rows = []
  for vocab_size in vocab_sizes:
    layer = CompressibleEmbedding(vocab_size, dim, embeddings_initializer=keras.initializers.RandomNormal(seed=seed))
    layer.build()
    matrix = layer.full_matrix()
    rank = compression.rank_for_reduction(reduction, vocab_size, dim)
    row = {'vocab_size': vocab_size, 'dim': dim, 'reduction': reduction, 'rank': rank,
           'matrix_bytes': int(matrix.nbytes)}
    methods = ('gram', 'svd') if vocab_size <= full_svd_up_to else ('gram',)
    for method in methods:
      with PeakMemory() as memory:
        start = time.perf_counter()
        compression.truncated_svd(matrix, rank, method)
        row[f'{method}_seconds'] = time.perf_counter() - start
      row[f'{method}_peak_extra_bytes'] = memory.peak_extra_bytes
      echo(f'V={vocab_size:,} {method}: {row[f"{method}_seconds"]:.2f}s, peak extra '
           f'{memory.peak_extra_bytes / 2**20:,.0f} MiB')
    del matrix
    with PeakMemory() as memory:
      report = compression.compress_layer(layer, rank=rank, svd_method='gram')
    row.update(swap_seconds=report.seconds, swap_peak_extra_bytes=memory.peak_extra_bytes,
               energy_kept=report.energy_kept)
    echo(f'V={vocab_size:,} swap: {report.seconds:.2f}s, peak extra {memory.peak_extra_bytes / 2**20:,.0f} MiB')
    rows.append(row)
    del layer
  return rows
