"""Export a trained classifier's checkpoint (`<run>/best`) as TFLite files beside its vocabulary."""

import dataclasses
import os

from lmf_tf import io_utils
from lmf_tf.compression.export import KINDS, write_tflite
from lmf_tf.errors import ConfigError
from lmf_tf.text import models, trained_models


# The layer of each model whose input kernel absorbs the projection V_kᵀ (k x d): LSTM's input kernel (d x 4h);
# DAN's first hidden layer (d x 1024), which follows the (linear) masked average, so projecting before or after
# averaging gives the same sentence vector.
FOLD_INTO = {'lstm': 'lstm', 'dan': 'hidden0'}


def fold_projection(model, model_config, model_name):
  """An equivalent inference model whose V x k embedding feeds the next layer directly.

  For the compressed embedding x_t = e_t U_kΣ_k V_kᵀ and a next layer computing x W (W: d x n), the folded model
  stores (V_kᵀ W) (k x n) instead of V_kᵀ (k x d) and W: k n instead of k d + d n parameters, and (2k - 1) n
  instead of (2k - 1) d + (2d - 1) n FLOPs per token (paper §4). Outputs are equal up to float rounding.

  Args:
    model: a classifier from `models.MODELS[model_name]` whose `word_embedding` is compressed (rank k).
    model_config: the `models.ModelConfig` it was built from (any `embedding_rank`).
    model_name: 'lstm' or 'dan'.
  Returns:
    A new Keras model (built with `embedding_dim = k`, no projection) holding the folded weights.
  """
  embedding = models.word_embedding(model)
  if not embedding.is_compressed:
    raise ConfigError(f'{model.name}: the embedding is not compressed, there is no projection to fold')
  if model_name not in FOLD_INTO:
    raise ConfigError(f'cannot fold the projection of model {model_name!r}; known: {", ".join(sorted(FOLD_INTO))}')
  folded = models.get_model_spec(model_name).build(
      dataclasses.replace(model_config, embedding_dim=embedding.rank, embedding_rank=None))
  projection = embedding.projection.kernel.numpy()  # k x d
  for layer in folded.layers:
    if not layer.weights:
      continue
    if layer.name == 'word_embedding':
      layer.set_weights([embedding.embedding.embeddings.numpy()])
      continue
    weights = model.get_layer(layer.name).get_weights()
    if layer.name == FOLD_INTO[model_name]:
      weights[0] = projection @ weights[0]  # (k x d)(d x n) -> k x n
    layer.set_weights(weights)
  return folded


def load_for_export(checkpoint_dir, fold=False):
  """A trained checkpoint's model (`training.load_trained_model`), with its projection folded if `fold`.

  Returns:
    (model, vocabulary, TrainConfig).
  """
  model, vocabulary, config = trained_models.load_trained_model(checkpoint_dir)
  if fold:
    embedding = models.word_embedding(model)
    model_config = models.model_config(config, embedding.input_dim, model.output_shape[-1], embedding.output_dim)
    model = fold_projection(model, model_config, config.model)
  return model, vocabulary, config


def export_checkpoint(checkpoint_dir, output_dir, kinds=KINDS, batch_size=1, fold=False):
  """Exports a trained checkpoint (uncompressed, online-compressed or fixed-point quantized, which is
  de-quantized first) as `<output_dir>/model_<kind>.tflite` for each kind; with `fold`, the compressed
  embedding's projection is folded into the next layer first (`fold_projection`). Returns {kind: bytes}."""
  unknown = [k for k in kinds if k not in KINDS]
  if unknown:
    raise ConfigError(f'--kinds: {", ".join(unknown)} is not one of {", ".join(KINDS)}')
  if batch_size < 1:
    raise ConfigError(f'--batch_size must be >= 1, got {batch_size}')
  model, vocabulary, _ = load_for_export(checkpoint_dir, fold)
  os.makedirs(output_dir, exist_ok=True)
  vocabulary.save(os.path.join(output_dir, 'vocabulary.txt'))
  sizes = {kind: write_tflite(model, os.path.join(output_dir, f'model_{kind}.tflite'), kind, batch_size)
           for kind in kinds}
  io_utils.write_json_atomic(os.path.join(output_dir, 'export.json'),
                             {'checkpoint_dir': os.path.abspath(checkpoint_dir), 'batch_size': batch_size,
                              'fold_projection': fold, 'tflite_bytes': sizes})
  return sizes
