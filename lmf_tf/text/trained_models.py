"""Reload a classifier saved by `training.train_and_evaluate` (`<run>/best`) for evaluation, quantization or export."""

import os

from lmf_tf import io_utils
from lmf_tf.compression import model_size, quantization
from lmf_tf.errors import CheckpointNotFoundError, ConfigError
from lmf_tf.text import catalog, input_pipeline, models
from lmf_tf.text.callbacks import embedding_rank
from lmf_tf.text.config import TrainConfig


def load_trained_model(checkpoint_dir):
  """Rebuilds a model saved by `train_and_evaluate` (`<run>/best`) with its rank and weights, for inference.

  Returns:
    (model, vocabulary, TrainConfig).
  Raises:
    CheckpointNotFoundError: naming the directory, if it holds no checkpoint.
  """
  meta_path = os.path.join(checkpoint_dir, 'config.json')
  if not os.path.exists(meta_path):
    raise CheckpointNotFoundError(f'no trained model at {checkpoint_dir} (expected {meta_path})')
  model_size.verify_inference_checkpoint(checkpoint_dir)
  meta = io_utils.read_json(meta_path, 'checkpoint config')
  data_dir = io_utils.relocated_data_dir(meta['config']['data_dir'], catalog.DATA_DIR, catalog.REPO_ROOT)
  config = TrainConfig(**{**meta['config'], 'resume': False, 'data_dir': data_dir})
  vocabulary = input_pipeline.Vocabulary.load(os.path.join(checkpoint_dir, meta['vocabulary']))
  spec = models.get_model_spec(config.model)
  model = spec.build(models.model_config(config, len(vocabulary), meta['num_classes'], meta['embedding_dim'],
                                         meta['rank']))
  if meta.get('method') == 'keras_int8':
    raise ConfigError(f'{checkpoint_dir} holds a Keras int8 model; it is measured, not reloaded, by lmf_tf')
  if meta.get('quantized'):  # int8/int16 tensors and scales, de-quantized on load
    quantization.restore_dequantized(model, checkpoint_dir)
  else:
    model_size.restore_inference_checkpoint(model, checkpoint_dir)
  model.compile(loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  return model, vocabulary, config


def evaluate_checkpoint(checkpoint_dir):
  """Accuracy of a saved model on its data set's dev and test splits, and its checkpoint size."""
  model, vocabulary, config = load_trained_model(checkpoint_dir)
  data = input_pipeline.prepare_data(config, vocabulary)
  return {
      'dev_accuracy': model.evaluate(data.dev, verbose=0, return_dict=True)['accuracy'],
      'test_accuracy': model.evaluate(data.test, verbose=0, return_dict=True)['accuracy'],
      'rank': embedding_rank(model),
      'checkpoint_bytes': model_size.checkpoint_size(checkpoint_dir, models.count_params(model)).as_dict(),
  }
