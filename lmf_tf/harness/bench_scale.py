"""The compression step at the paper's vocabulary sizes (100k-1M words): time and peak memory of the SVD and swap."""

import threading
import time

import keras
import psutil

from lmf_tf.compression import factorization
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.rank import rank_for_reduction


class PeakMemory:
  """Peak resident memory above the level at entry, sampled every `interval` seconds (psutil, which
  tensorflow-datasets already requires; any platform psutil supports)."""

  def __init__(self, interval=0.005):
    self.interval = interval
    self.peak_extra_bytes = 0

  @staticmethod
  def rss_bytes():
    return psutil.Process().memory_info().rss

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
  """Time and peak extra memory of compressing a V x d embedding (the paper's 1M-word vocabularies).

  For each V: a built `CompressibleEmbedding(V, d)` with N(0, 1) weights; the truncated SVD alone by the Gram route
  and, for V <= `full_svd_up_to`, by the plain float64 SVD; then the whole swap (`compress_layer`: read the matrix,
  Gram-route SVD, new factor variables). Returns a list of dicts, one per V.
  """
  rows = []
  for vocab_size in vocab_sizes:
    layer = CompressibleEmbedding(vocab_size, dim, embeddings_initializer=keras.initializers.RandomNormal(seed=seed))
    layer.build()
    matrix = layer.full_matrix()
    rank = rank_for_reduction(reduction, vocab_size, dim)
    row = {'vocab_size': vocab_size, 'dim': dim, 'reduction': reduction, 'rank': rank,
           'matrix_bytes': int(matrix.nbytes)}
    methods = ('gram', 'svd') if vocab_size <= full_svd_up_to else ('gram',)
    for method in methods:
      with PeakMemory() as memory:
        start = time.perf_counter()
        factorization.truncated_svd(matrix, rank, method)
        row[f'{method}_seconds'] = time.perf_counter() - start
      row[f'{method}_peak_extra_bytes'] = memory.peak_extra_bytes
      echo(f'V={vocab_size:,} {method}: {row[f"{method}_seconds"]:.2f}s, peak extra '
           f'{memory.peak_extra_bytes / 2**20:,.0f} MiB')
    del matrix
    with PeakMemory() as memory:
      report = factorization.compress_layer(layer, rank=rank, svd_method='gram')
    row.update(swap_seconds=report.seconds, swap_peak_extra_bytes=memory.peak_extra_bytes,
               energy_kept=report.energy_kept)
    echo(f'V={vocab_size:,} swap: {report.seconds:.2f}s, peak extra {memory.peak_extra_bytes / 2**20:,.0f} MiB')
    rows.append(row)
    del layer
  return rows
