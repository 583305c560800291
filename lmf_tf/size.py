"""A model's size as the paper measures it (Acharya et al. 2019, §5.3): the bytes of a TensorFlow checkpoint of the
inference weights, `.data` + `.index` + `.meta`.

  - `save_inference_checkpoint(model, folder)`: writes it (no optimizer slots), returns its `CheckpointSize`;
  - `restore_inference_checkpoint(model, folder)`: reads it back into a model of the same form;
  - `checkpoint_size(folder)`: the `CheckpointSize` of one already written (`.data_bytes`, ..., `.total_bytes`).
"""

from lmf_tf.compression.model_size import (CheckpointSize, checkpoint_size, restore_inference_checkpoint,
                                           save_inference_checkpoint)

__all__ = ['CheckpointSize', 'checkpoint_size', 'restore_inference_checkpoint', 'save_inference_checkpoint']
