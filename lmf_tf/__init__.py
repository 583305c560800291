"""lmf_tf: compress the word embeddings of your Keras model with low-rank factorization, during training.

    import keras, lmf_tf

    model.fit(train, epochs=8, validation_data=dev,
              callbacks=[lmf_tf.OnlineCompression(reduction=90, at_epoch=4)])   # Embedding(V, d) -> V x k, k x d
    model.save('small.keras')                         # reloads after `import lmf_tf`
    lmf_tf.write_tflite(lmf_tf.fold_projection(model), 'small.tflite', 'int8')

Acharya, Goel, Metallinou and Dhillon, "Online Embedding Compression for Text Classification using Low Rank
Matrix Factorization" (AAAI 2019). The top level holds the verbs most users need:
  - compress during `fit`: `OnlineCompression` (a callback), and with it the dense kernels: `LowRankKernels`;
    frequent words at higher rank than rare ones in the same numbers: `FrequencyRanks`;
  - compress a trained model: `compress_model`;
  - fit a byte budget: `fit_budget` (the TFLite file plus the vocabulary file within N bytes);
  - export and run: `fold_projection`, `to_tflite`, `write_tflite`, `TfliteRunner` (the `litert` extra).
The rest, by task: `lmf_tf.budget` (plan, predict and measure deployable bytes by part), `lmf_tf.strings` (ship a
model that takes strings), `lmf_tf.layers` (the compressed Keras layers), `lmf_tf.recovery` (after the swap),
`lmf_tf.schedules` (CLR, CALR), `lmf_tf.factorization` (ranks, the SVD, the swap in a custom loop),
`lmf_tf.quantization` (the fixed-point baseline), `lmf_tf.size` (the paper's checkpoint size), `lmf_tf.errors`.
docs/library.md describes the API; every name has a docstring with shapes and the paper's equation.

`import lmf_tf` imports Keras (and so TensorFlow) and registers lmf_tf's Keras classes, so a `.keras` file with
compressed layers loads after it. It loads nothing of the reproduction study (`lmf_tf.text`, `lmf_tf.lm`,
`lmf_tf.harness`), which runs from a clone of the repository and registers its own models when imported.
"""

from lmf_tf import budget, errors, factorization, layers, quantization, recovery, schedules, size, strings
from lmf_tf.compression.budget import fit_budget
from lmf_tf.compression.export import TfliteRunner, fold_projection, to_tflite, write_tflite
from lmf_tf.compression.frequency import FrequencyRanks
from lmf_tf.compression.kernels import LowRankKernels
from lmf_tf.compression.online import OnlineCompression
from lmf_tf.compression.swap import compress_model

__version__ = '0.2.0'

__all__ = [
    'OnlineCompression', 'LowRankKernels', 'FrequencyRanks',  # compress during fit
    'compress_model',  # compress a trained model
    'fit_budget',  # fit a byte budget
    'fold_projection', 'to_tflite', 'write_tflite', 'TfliteRunner',  # export and run
    'budget', 'errors', 'factorization', 'layers', 'quantization', 'recovery', 'schedules', 'size', 'strings',  # by task
    '__version__',
]
