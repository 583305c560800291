"""Benchmark of the input pipeline: bucketed `tf.data` batches against padded NumPy arrays, same model and seed."""

import statistics
import time

import keras

from lmf_tf.text import input_pipeline, training


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
  data = input_pipeline.prepare_data(config)
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
