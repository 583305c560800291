"""Fixed-point quantization of a model's weights, the paper's baseline (Acharya et al. 2019, §3.3): symmetric
abs-max b-bit integers (8 or 16) per tensor or per channel, by Keras's `keras.quantizers.abs_max_quantize`.

  - `quantize_model(model, bits)`: every weight matrix replaced in place by its de-quantized b-bit version;
    returns {weight name: QuantizedTensor} (integer values and scale);
  - `quantized_checkpoint(model, quantized)`: a `tf.train.Checkpoint` of the integers, the scales and the float
    weights left (give it to `lmf_tf.size.save_inference_checkpoint(..., checkpoint=...)` for its size);
  - `restore_dequantized(model, directory)`: such a checkpoint de-quantized back into a model.
For a shipped model, `lmf_tf.to_tflite(model, 'int8')` quantizes instead; `'int4_embeddings'` stores the embedding
tables as int4, two numbers a byte, with a float scale per column, and the rest as int8 (int4.py):
  - `with_int4_tables(model, rule='mse')`: the inference copy that export converts (`PackedInt4Embedding`s);
  - `int4_aware(model)`: a copy to train a few epochs with its tables quantized to int4 in the forward pass
    (straight-through), which then exports with the scales it trained with.
"""

from lmf_tf.compression.int4 import int4_aware, with_int4_tables
from lmf_tf.compression.quantization import quantize_model, quantized_checkpoint, restore_dequantized

__all__ = ['int4_aware', 'quantize_model', 'quantized_checkpoint', 'restore_dequantized', 'with_int4_tables']
