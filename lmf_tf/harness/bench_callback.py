"""What `OnlineCompression` costs inside a user's `fit`: two identical plain Keras models trained side by side in
one process, epoch for epoch, one with the callback and one without (docs/library.md).

Measured: (1) the per-batch hook while waiting for the swap step (the callback's only work until then), (2) the
epoch in which the swap happens (SVD, new variables, optimizer carried over, train step re-traced), and (3) epochs
of the compressed model against the uncompressed one.
"""

import statistics
import time
import warnings

from absl import logging
import keras

import lmf_tf
from lmf_tf.text import input_pipeline
from lmf_tf.text.config import TrainConfig


def user_model(vocab_size, dim=50, units=64, seed=1):
  """A classifier built the way a user builds one: plain `keras.layers.Embedding` (masked), LSTM, softmax."""
  keras.utils.set_random_seed(seed)
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.Embedding(vocab_size, dim, mask_zero=True, name='words')(ids)
  x = keras.layers.LSTM(units)(x)
  model = keras.Model(ids, keras.layers.Dense(2, activation='softmax')(x))
  model.compile(optimizer=keras.optimizers.Adam(1e-3), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


class _StepClock(keras.callbacks.Callback):
  """Milliseconds per step between the start of the second batch and the start of the last one: the steps alone,
  without `fit`'s set-up and tear-down around them. Only a batch-begin hook, which keeps Keras's per-batch
  dispatch asynchronous, as without any callback."""

  def __init__(self, steps):
    super().__init__()
    self.steps, self.ms_per_step = steps, None

  def on_train_batch_begin(self, batch, logs=None):
    if batch == 1:
      self._start = time.perf_counter()
    elif batch == self.steps - 1:
      self.ms_per_step = 1000 * (time.perf_counter() - self._start) / (self.steps - 2)


def _epoch(model, x, y, batch_size, callbacks=()):
  """Trains one epoch; returns (seconds of the whole `fit` call, milliseconds per step)."""
  clock = _StepClock(-(-len(x) // batch_size))
  start = time.perf_counter()
  model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False, callbacks=[clock, *callbacks])
  return time.perf_counter() - start, clock.ms_per_step


def measure_callback_overhead(rounds=5, batch_size=64, reduction=90, tfds_dir=None, max_train_examples=None):
  """Trains two identical user models on the SST-2 sentences (padded NumPy arrays, as `fit` is commonly fed), one
  epoch each in turn, alternating which goes first in each round; returns their times and the overheads
  (fractions), per step (the steps alone) and per epoch (the whole `fit` call)."""
  config = TrainConfig(train_level='sentence', max_train_examples=max_train_examples,
                       **({'tfds_dir': tfds_dir} if tfds_dir else {}))
  data = input_pipeline.prepare_data(config)
  x, y = input_pipeline.to_padded_arrays(data.encoded_train)
  steps = -(-len(x) // batch_size)
  plain, watched = user_model(len(data.vocabulary)), user_model(len(data.vocabulary))
  waiting = lambda: lmf_tf.OnlineCompression(reduction=reduction, at_step=10**9)  # never reached: the hooks only
  names = ('without', 'with_callback_waiting', 'uncompressed', 'compressed')
  epochs, step_ms = {n: [] for n in names}, {n: [] for n in names}

  def timed(name, model, callbacks=()):
    seconds, ms = _epoch(model, x, y, batch_size, callbacks)
    epochs[name].append(seconds)
    step_ms[name].append(ms)

  verbosity = logging.get_verbosity()
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # "training ended before the swap" from each `waiting` callback, also logged
    logging.set_verbosity(logging.ERROR)
    try:
      _epoch(plain, x, y, batch_size)  # tracing, not timed
      _epoch(watched, x, y, batch_size, [waiting()])
      for i in range(rounds):
        pair = [('without', plain, []), ('with_callback_waiting', watched, [waiting()])]
        for name, model, callbacks in (pair if i % 2 == 0 else pair[::-1]):
          timed(name, model, callbacks)
    finally:
      logging.set_verbosity(verbosity)
  online = lmf_tf.OnlineCompression(reduction=reduction, at_step=int(watched.optimizer.iterations.numpy()) + steps // 2)
  swap_epoch = _epoch(watched, x, y, batch_size, [online])[0]
  _epoch(watched, x, y, batch_size)  # the compressed model's step traced for a plain fit, not timed
  for i in range(rounds):
    pair = [('uncompressed', plain), ('compressed', watched)]
    for name, model in (pair if i % 2 == 0 else pair[::-1]):
      timed(name, model)
  median_ms = {n: statistics.median(v) for n, v in step_ms.items()}
  median_s = {n: statistics.median(v) for n, v in epochs.items()}
  report = online.reports[0]
  return {
      'ms_per_step': {n: [round(v, 3) for v in values] for n, values in step_ms.items()},
      'epoch_seconds': {n: [round(v, 3) for v in values] for n, values in epochs.items()},
      'median_ms_per_step': {n: round(v, 3) for n, v in median_ms.items()},
      'median_epoch_seconds': {n: round(v, 3) for n, v in median_s.items()},
      'step_overhead': round(median_ms['with_callback_waiting'] / median_ms['without'] - 1, 4),
      'epoch_overhead': round(median_s['with_callback_waiting'] / median_s['without'] - 1, 4),
      'swap_epoch_seconds': round(swap_epoch, 3), 'svd_seconds': round(report.seconds, 3),
      'compressed_step_ratio': round(median_ms['compressed'] / median_ms['uncompressed'], 4),
      'rank': report.rank, 'vocab_size': len(data.vocabulary), 'steps_per_epoch': steps,
      'padded_length': int(x.shape[1]), 'train_examples': int(len(x)), 'rounds': rounds, 'batch_size': batch_size,
      'params': {'uncompressed': plain.count_params(), 'compressed': watched.count_params()},
  }
