"""Post-training baselines on a trained model: fixed-point quantization (ours) and Keras's `model.quantize`."""

import dataclasses
import os
import time

from absl import logging

from lmf_tf import io_utils, results
from lmf_tf.compression import model_size, quantization
from lmf_tf.errors import ConfigError
from lmf_tf.text import input_pipeline, models, trained_models
from lmf_tf.text.callbacks import embedding_rank
from lmf_tf.text.config import derived_run_name

METHODS = ('fixed_point', 'keras_int8')


def quantize_trained_model(checkpoint_dir, bits=8, per_channel=False, method='fixed_point', results_dir='results',
                           output_dir=None):
  """Quantizes the model saved in `checkpoint_dir`, evaluates it on dev and test, saves and measures it.

  `fixed_point`: every weight matrix to `bits`-bit integers with symmetric scales (`quantization`), accuracy with
  the de-quantized weights. `keras_int8`: Keras 3's `model.quantize('int8')` (Embedding and Dense only; the LSTM
  stays float32), saved as it is.

  Writes `<results_dir>/<dataset>_<model>_<tag>_seed<s>.json` in the schema of `training.train_and_evaluate` and
  the checkpoint to `output_dir` (default: `<checkpoint_dir>/../<tag>`). Returns the results dict.
  """
  if method not in METHODS:
    raise ConfigError(f'--method={method!r}; choose one of {", ".join(METHODS)}')
  start = time.time()
  model, vocabulary, config = trained_models.load_trained_model(checkpoint_dir)
  data = input_pipeline.prepare_data(config, vocabulary)
  num_params = models.count_params(model)
  if method == 'keras_int8':
    tag, checkpoint = 'kerasint8', None
    model.quantize('int8')
  else:
    tag = f'q{bits}' + ('pc' if per_channel else '')
    quantized = quantization.quantize_model(model, bits, per_channel)
    checkpoint = quantization.quantized_checkpoint(model, quantized)
  dev = model.evaluate(data.dev, verbose=0, return_dict=True)['accuracy']
  test = model.evaluate(data.test, verbose=0, return_dict=True)['accuracy']
  output_dir = output_dir or os.path.join(os.path.dirname(os.path.abspath(checkpoint_dir)), tag)
  # The source's metadata, so `trained_models.load_trained_model` can rebuild the model and read the stored integers.
  metadata = io_utils.read_json(os.path.join(checkpoint_dir, 'config.json'), 'checkpoint config')
  metadata.update(source=os.path.abspath(checkpoint_dir), method=method,
                  vocabulary=os.path.relpath(os.path.join(checkpoint_dir, metadata['vocabulary']), output_dir),
                  quantized=None if method == 'keras_int8' else {'bits': bits, 'per_channel': per_channel})
  size = model_size.save_inference_checkpoint(model, output_dir, metadata, checkpoint)
  size.num_params = num_params
  run = derived_run_name(config.run_name, tag)
  result = results.ClassifierResult(
      run=run, method=method if method == 'keras_int8' else f'quant{bits}' + ('_per_channel' * per_channel),
      source_checkpoint=os.path.abspath(checkpoint_dir), bits=bits, per_channel=per_channel,
      config=dataclasses.asdict(config), best={'dev_accuracy': dev, 'test_accuracy': test, 'checkpoint': size.as_dict()},
      dev_accuracy=dev, test_accuracy=test, rank=embedding_rank(model),
      params={'model': num_params, 'embedding': models.count_params(models.word_embedding(model))},
      checkpoint_bytes=size.as_dict(), checkpoint_dir=os.path.abspath(output_dir),
      wall_seconds=round(time.time() - start, 1), environment=results.environment())
  results.write(result, results_dir)
  logging.info('%s: dev %.4f test %.4f, checkpoint %d bytes (.data %d).', run, dev, test, size.total_bytes,
               size.data_bytes)
  return dataclasses.asdict(result)
