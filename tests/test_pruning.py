"""Magnitude pruning: masks, zeros kept through training, sparse checkpoints that really shrink."""

import glob
import os

import numpy as np
import pytest

from lmf_tf.compression import model_size
from lmf_tf.compression import pruning
from lmf_tf.text import models
from lmf_tf.errors import ConfigError


def _dan():
  model = models.dan_classifier(models.ModelConfig(vocab_size=400, embedding_dim=32, dan_hidden=(64,), dropout=0.0))
  model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
  return model


def test_masks_prune_the_smallest_magnitudes_per_tensor():
  model = _dan()
  masks = pruning.magnitude_masks(model, 0.75)
  weights = model_size.weight_dict(model)
  assert set(masks) == {n for n, v in weights.items() if len(v.shape) >= 2}  # biases are kept
  for name, mask in masks.items():
    w = np.abs(weights[name].numpy())
    assert mask.mean() == pytest.approx(0.25, abs=1 / w.size)
    assert w[mask].min() >= w[~mask].max()
  with pytest.raises(ConfigError, match='--sparsity'):
    pruning.magnitude_masks(model, 1.0)


def test_a_pruned_layer_keeps_its_zeros_through_training():
  model = _dan()
  masks = pruning.magnitude_masks(model, 0.9)
  ids = np.random.RandomState(0).randint(1, 400, size=(32, 6)).astype('int32')
  labels = (ids[:, 0] % 2).astype('int64')
  before = {n: v.numpy().copy() for n, v in model_size.weight_dict(model).items()}
  model.fit(ids, labels, epochs=2, batch_size=8, verbose=0, callbacks=[pruning.ApplyMasks(masks)])
  weights = model_size.weight_dict(model)
  for name, mask in masks.items():
    w = weights[name].numpy()
    assert np.all(w[~mask] == 0), name
    assert not np.allclose(w[mask], before[name][mask]), name  # the kept weights were fine-tuned
  assert pruning.sparsity_of(model, masks) == pytest.approx(0.9, abs=0.01)


def test_sparse_checkpoint_shrinks_and_restores(tmp_path):
  model = _dan()
  masks = pruning.magnitude_masks(model, 0.9)
  pruning.apply_masks(model, masks)
  dense_size = model_size.save_inference_checkpoint(model, str(tmp_path / 'dense'))
  sparse_size = model_size.save_inference_checkpoint(model, str(tmp_path / 'sparse'),
                                                     checkpoint=pruning.sparse_checkpoint(model, masks))
  # 10% of the values (4 bytes) plus one bit per entry: about 0.1 + 1/32 of the dense bytes.
  assert sparse_size.data_bytes < 0.16 * dense_size.data_bytes
  restored = _dan()
  restored_masks = pruning.restore_sparse(restored, str(tmp_path / 'sparse'))
  for name, variable in model_size.weight_dict(model).items():
    np.testing.assert_array_equal(model_size.weight_dict(restored)[name].numpy(), variable.numpy())
  assert all(np.array_equal(restored_masks[n], masks[n]) for n in masks)
  assert glob.glob(os.path.join(tmp_path, 'sparse', 'model.data-*'))
