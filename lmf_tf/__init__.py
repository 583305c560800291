"""lmf_tf: compress the word embeddings of your Keras model with low-rank factorization, during training.

    import keras, lmf_tf

    model.fit(train, epochs=8, validation_data=dev,
              callbacks=[lmf_tf.OnlineCompression(reduction=90, at_epoch=4)])   # Embedding(V, d) -> V x k, k x d
    model.save('small.keras')                         # reloads after `import lmf_tf`
    open('small.tflite', 'wb').write(lmf_tf.to_tflite(lmf_tf.fold_projection(model), 'int8'))

Acharya, Goel, Metallinou and Dhillon, "Online Embedding Compression for Text Classification using Low Rank
Matrix Factorization" (AAAI 2019). The package's parts:
  - `lmf_tf.compression`: the library (this API): the compressible embedding, the online swap, recovery options,
    low-rank and tensor-train layers, quantization, pruning, learning-rate schedules, model size, export;
  - `lmf_tf.text`: the text-classification study (SST-2, intent sets: data, models, training);
  - `lmf_tf.lm`: the language-model study (Penn Treebank, Grachev et al. 2017);
  - `lmf_tf.harness`: plans, runner, tables, figures and benchmarks that reproduce the papers.
docs/library.md describes the API; every name below has a docstring with shapes and the paper's equation.

Importing `lmf_tf` is cheap: the names below load TensorFlow when first used, and the package's Keras classes
(layers, schedules) are registered as soon as Keras is imported, before or after `lmf_tf`, so a `.keras` file
with compressed layers loads after `import lmf_tf`. The experiment plans and reports never load TensorFlow.
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = '0.2.0'

# Public name -> the module that defines it.
_API = {
    # Compress an embedding: during fit, in a custom loop, or after training.
    'CompressibleEmbedding': 'lmf_tf.compression.embedding',
    'OnlineCompression': 'lmf_tf.compression.online',
    'DevPeak': 'lmf_tf.compression.online',
    'Distillation': 'lmf_tf.compression.distillation',
    'compress_model': 'lmf_tf.compression.swap',
    'swap_embeddings': 'lmf_tf.compression.swap',
    'carry_optimizer': 'lmf_tf.compression.swap',
    'rank_for_reduction': 'lmf_tf.compression.rank',
    'reduction_of_rank': 'lmf_tf.compression.rank',
    'truncated_svd': 'lmf_tf.compression.factorization',
    'CompressionReport': 'lmf_tf.compression.factorization',
    # Learning-rate schedules (paper §3.2) and the restart of the recovery phase.
    'CyclicalLearningRate': 'lmf_tf.compression.schedules',
    'CyclicallyAnnealedLearningRate': 'lmf_tf.compression.schedules',
    'Restarted': 'lmf_tf.compression.schedules',
    # Baselines and other compression methods.
    'quantize_model': 'lmf_tf.compression.quantization',
    'quantized_checkpoint': 'lmf_tf.compression.quantization',
    'LowRankDense': 'lmf_tf.compression.lowrank',
    'LowRankLSTM': 'lmf_tf.compression.lowrank',
    'TTEmbedding': 'lmf_tf.compression.tensor_train',
    'TTDense': 'lmf_tf.compression.tensor_train',
    # Size and deployment.
    'save_inference_checkpoint': 'lmf_tf.compression.model_size',
    'restore_inference_checkpoint': 'lmf_tf.compression.model_size',
    'checkpoint_size': 'lmf_tf.compression.model_size',
    'to_tflite': 'lmf_tf.compression.export',
    'write_tflite': 'lmf_tf.compression.export',
    'fold_projection': 'lmf_tf.compression.export',
    'TfliteRunner': 'lmf_tf.compression.export',
    'split_string_model': 'lmf_tf.compression.string_models',
    'write_string_model': 'lmf_tf.compression.string_models',
    'StringModelRunner': 'lmf_tf.compression.string_models',
    'TextRule': 'lmf_tf.compression.string_models',
    # Errors.
    'LmfError': 'lmf_tf.errors',
    'ConfigError': 'lmf_tf.errors',
}
__all__ = sorted(_API) + ['__version__']

# Modules whose import registers Keras classes (`keras.saving.register_keras_serializable`).
_KERAS_MODULES = ('lmf_tf.compression.embedding', 'lmf_tf.compression.lowrank', 'lmf_tf.compression.tensor_train',
                  'lmf_tf.compression.schedules', 'lmf_tf.compression.pruning', 'lmf_tf.text.models',
                  'lmf_tf.lm.models', 'lmf_tf.lm.schedules')


def __getattr__(name):
  if name in _API:
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def __dir__():
  return __all__


_REGISTERED = []


def _register_keras_classes(at_module_end=False):
  """Imports every module with Keras classes (their decorators register them), once.

  Not while an lmf_tf module is still being imported (its names are not all defined yet, and the modules imported
  here import from it), unless called from the end of such a module (`at_module_end`: its names are all there).
  """
  if _REGISTERED:
    return
  if not at_module_end and any(name.startswith('lmf_tf.') and getattr(module.__spec__, '_initializing', False)
                               for name, module in list(sys.modules.items()) if getattr(module, '__spec__', None)):
    return  # that module calls this again on its last line
  _REGISTERED.append(True)
  for module in _KERAS_MODULES:
    importlib.import_module(module)


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
  """Registers lmf_tf's Keras classes right after `keras` itself is imported (once), so that `import lmf_tf`
  neither loads TensorFlow nor leaves a `.keras` file with lmf_tf layers unloadable."""

  def find_spec(self, fullname, path=None, target=None):
    if fullname != 'keras':
      return None
    sys.meta_path.remove(self)
    spec = importlib.util.find_spec('keras')
    if spec is None or spec.loader is None:
      return spec
    exec_module = spec.loader.exec_module

    def exec_then_register(module):
      exec_module(module)
      _register_keras_classes()

    spec.loader.exec_module = exec_then_register
    return spec


if 'keras' in sys.modules:
  _register_keras_classes()
elif not any(isinstance(f, _RegisterWhenKerasLoads) for f in sys.meta_path):
  sys.meta_path.insert(0, _RegisterWhenKerasLoads())
