"""Export a trained classifier's checkpoint (`<run>/best`) as TFLite files beside its vocabulary."""

import os

from lmf_tf import io_utils
from lmf_tf.compression.export import KINDS, fold_projection, write_tflite
from lmf_tf.errors import ConfigError
from lmf_tf.text import trained_models


def load_for_export(checkpoint_dir, fold=False):
  """A trained checkpoint's model (`trained_models.load_trained_model`), with its projection folded if `fold`.

  Returns:
    (model, vocabulary, TrainConfig).
  """
  model, vocabulary, config = trained_models.load_trained_model(checkpoint_dir)
  if fold:
    model = fold_projection(model)
  return model, vocabulary, config


def export_checkpoint(checkpoint_dir, output_dir, kinds=KINDS, batch_size=1, fold=False):
  """Exports a trained checkpoint (uncompressed, online-compressed or fixed-point quantized, which is
  de-quantized first) as `<output_dir>/model_<kind>.tflite` for each kind, with `vocabulary.txt`; with `fold`, the
  compressed embedding's projection is folded into the next layer first (`fold_projection`).

  Returns:
    {kind: TFLite bytes}; `export.json` beside them also has the vocabulary's bytes and, per kind, the deployable
    size (TFLite file + vocabulary file).
  """
  unknown = [k for k in kinds if k not in KINDS]
  if unknown:
    raise ConfigError(f'--kinds: {", ".join(unknown)} is not one of {", ".join(KINDS)}')
  if batch_size < 1:
    raise ConfigError(f'--batch_size must be >= 1, got {batch_size}')
  model, vocabulary, _ = load_for_export(checkpoint_dir, fold)
  os.makedirs(output_dir, exist_ok=True)
  vocabulary_path = os.path.join(output_dir, 'vocabulary.txt')
  vocabulary.save(vocabulary_path)
  sizes = {kind: write_tflite(model, os.path.join(output_dir, f'model_{kind}.tflite'), kind, batch_size)
           for kind in kinds}
  vocabulary_bytes = os.path.getsize(vocabulary_path)
  io_utils.write_json_atomic(os.path.join(output_dir, 'export.json'),
                             {'checkpoint_dir': os.path.abspath(checkpoint_dir), 'batch_size': batch_size,
                              'fold_projection': fold, 'tflite_bytes': sizes, 'vocabulary_bytes': vocabulary_bytes,
                              'deployable_bytes': {k: b + vocabulary_bytes for k, b in sizes.items()}})
  return sizes
