"""Fixed-point quantization of a model's weights, the paper's baseline (Acharya et al. 2019, §3.3): symmetric
abs-max b-bit integers (8 or 16) per tensor or per channel, by Keras's `keras.quantizers.abs_max_quantize`.

  - `quantize_model(model, bits)`: every weight matrix replaced in place by its de-quantized b-bit version;
    returns {weight name: QuantizedTensor} (integer values and scale);
  - `quantized_checkpoint(model, quantized)`: a `tf.train.Checkpoint` of the integers, the scales and the float
    weights left (give it to `lmf_tf.size.save_inference_checkpoint(..., checkpoint=...)` for its size);
  - `restore_dequantized(model, directory)`: such a checkpoint de-quantized back into a model.
For a shipped model, `lmf_tf.to_tflite(model, 'int8')` quantizes instead.
"""

from lmf_tf.compression.quantization import quantize_model, quantized_checkpoint, restore_dequantized

__all__ = ['quantize_model', 'quantized_checkpoint', 'restore_dequantized']
