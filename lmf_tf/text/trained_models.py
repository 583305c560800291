"""Reload a classifier saved by `training.train_and_evaluate` (`<run>/best`) for evaluation, quantization or export."""

import os

import numpy as np

from lmf_tf import io_utils
from lmf_tf.compression import export, model_size, nested, quantization
from lmf_tf.errors import CheckpointNotFoundError, ConfigError
from lmf_tf.text import catalog, input_pipeline, models
from lmf_tf.text.callbacks import embedding_blocks, embedding_rank
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
  if meta.get('embedding_blocks'):  # OnlineCompression(frequency=...): the embedding in its frequency blocks
    nested.restore_blocks(models.word_embedding(model), meta['embedding_blocks'])
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


def evaluate_shipped(checkpoint_dir, kind='int8'):
  """Accuracy of the file a user ships: the saved model exported as TFLite of `kind` at batch size 1 (its projection
  folded where it folds), run by LiteRT on dev and test; with the Keras accuracies and the deployable bytes (the
  TFLite file plus the vocabulary file `scripts/train.py` writes)."""
  model, vocabulary, config = load_trained_model(checkpoint_dir)
  data = input_pipeline.prepare_data(config, vocabulary)
  flatbuffer = export.to_tflite(export.fold_projection(model), kind, batch_size=1)
  runner = export.TfliteRunner(flatbuffer)
  shipped = {}
  for split, dataset in (('dev', data.dev), ('test', data.test)):
    ids, labels = [], []
    for batch_ids, batch_labels in dataset:
      ids += [row[row != 0] if (row != 0).any() else row[:1] for row in batch_ids.numpy()]
      labels += list(batch_labels.numpy())
    shipped[split] = float(np.mean(np.argmax(runner.predict(ids), axis=-1) == np.asarray(labels)))
  return {
      'kind': kind, 'dev_accuracy': shipped['dev'], 'test_accuracy': shipped['test'],
      'keras_test_accuracy': model.evaluate(data.test, verbose=0, return_dict=True)['accuracy'],
      'rank': embedding_rank(model), 'embedding_blocks': embedding_blocks(model), 'tflite_bytes': len(flatbuffer),
      'vocabulary_bytes': vocabulary.file_bytes(), 'deployable_bytes': len(flatbuffer) + vocabulary.file_bytes()}
