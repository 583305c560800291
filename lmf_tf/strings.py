"""Ship a model that takes strings (an in-graph `keras.layers.TextVectorization`): LiteRT's built-in ops cannot
lower-case or split text, so it ships split into the integer model (TFLite), the vocabulary and the text rule.

  - `write_string_model(model, folder, kind='int8')`: writes `model.tflite`, `vocabulary.txt`, `text_rule.json`;
  - `StringModelRunner(folder).predict(texts)`: runs them with LiteRT on strings (the `litert` extra);
  - `split_string_model(model)`: the integer model, the vocabulary and the `TextRule`, without writing;
  - `TextRule`: the standardization, split and sequence length, applied in Python exactly as the layer does.
"""

from lmf_tf.compression.string_models import StringModelRunner, TextRule, split_string_model, write_string_model

__all__ = ['StringModelRunner', 'TextRule', 'split_string_model', 'write_string_model']
