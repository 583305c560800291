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


def _epoch_seconds(model, x, y, batch_size, callbacks=()):
  start = time.perf_counter()
  model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False, callbacks=list(callbacks))
  return time.perf_counter() - start


def measure_callback_overhead(rounds=5, batch_size=64, reduction=90, tfds_dir=None, max_train_examples=None):
  """Trains two identical user models on the SST-2 sentences (padded NumPy arrays, as `fit` is commonly fed),
  alternating which goes first in each round, and returns the epoch times and overheads (fractions)."""
  config = TrainConfig(train_level='sentence', max_train_examples=max_train_examples,
                       **({'tfds_dir': tfds_dir} if tfds_dir else {}))
  data = input_pipeline.prepare_data(config)
  x, y = input_pipeline.to_padded_arrays(data.encoded_train)
  steps = -(-len(x) // batch_size)
  plain, watched = user_model(len(data.vocabulary)), user_model(len(data.vocabulary))
  waiting = lambda: lmf_tf.OnlineCompression(reduction=reduction, at_step=10**9)  # never reached: the hook only
  times = {'without': [], 'with_callback_waiting': [], 'swap_epoch': None, 'compressed': [], 'uncompressed': []}
  verbosity = logging.get_verbosity()
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')  # "training ended before the swap" from each `waiting` callback, also logged
    logging.set_verbosity(logging.ERROR)
    try:
      _epoch_seconds(plain, x, y, batch_size)  # tracing, not timed
      _epoch_seconds(watched, x, y, batch_size, [waiting()])
      for i in range(rounds):
        pair = [('without', plain, []), ('with_callback_waiting', watched, [waiting()])]
        for name, model, callbacks in (pair if i % 2 == 0 else pair[::-1]):
          times[name].append(_epoch_seconds(model, x, y, batch_size, callbacks))
    finally:
      logging.set_verbosity(verbosity)
  online = lmf_tf.OnlineCompression(reduction=reduction, at_step=int(watched.optimizer.iterations.numpy()) + steps // 2)
  times['swap_epoch'] = _epoch_seconds(watched, x, y, batch_size, [online])
  _epoch_seconds(watched, x, y, batch_size)  # the compressed model's step traced for a plain fit, not timed
  for i in range(rounds):
    pair = [('uncompressed', plain), ('compressed', watched)]
    for name, model in (pair if i % 2 == 0 else pair[::-1]):
      times[name].append(_epoch_seconds(model, x, y, batch_size))
  median = {name: statistics.median(v) for name, v in times.items() if isinstance(v, list)}
  report = online.reports[0]
  return {
      'epoch_seconds': {k: [round(s, 3) for s in v] if isinstance(v, list) else round(v, 3) for k, v in times.items()},
      'median_epoch_seconds': {k: round(v, 3) for k, v in median.items()},
      'hook_overhead': round(median['with_callback_waiting'] / median['without'] - 1, 4),
      'swap_epoch_extra_seconds': round(times['swap_epoch'] - median['without'], 3),
      'svd_seconds': round(report.seconds, 3),
      'compressed_epoch_ratio': round(median['compressed'] / median['uncompressed'], 4),
      'rank': report.rank, 'vocab_size': len(data.vocabulary), 'steps_per_epoch': steps, 'padded_length': int(x.shape[1]),
      'train_examples': int(len(x)), 'rounds': rounds, 'batch_size': batch_size,
      'params': {'uncompressed': plain.count_params(), 'compressed': watched.count_params()},
  }
