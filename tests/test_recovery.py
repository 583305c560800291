"""Recovery after the online swap: learning-rate restart, distillation, gradual rank, swap at the dev
peak; each on a user's model through the library, and all of them through a resumed run that must end bitwise
like an uninterrupted one."""

import dataclasses

import keras
import numpy as np
import pytest

import lmf_tf
from lmf_tf.compression import distillation
from lmf_tf.text import training
from lmf_tf.text.config import TrainConfig

V, D = 200, 12


def model_and_data(seed=0):
  keras.utils.set_random_seed(seed)
  model = keras.Sequential([keras.Input((None,), dtype='int32'), keras.layers.Embedding(V, D, name='words'),
                            keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3, activation='softmax')])
  model.compile(optimizer=keras.optimizers.Adam(lmf_tf.schedules.CyclicallyAnnealedLearningRate(1e-5, 1e-2, 4, 0.5)),
                loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  rng = np.random.default_rng(seed)
  ids = rng.integers(1, V, size=(64, 6)).astype(np.int32)
  return model, ids, (ids[:, 0] % 3).astype(np.int64)


def test_restarted_schedule_starts_the_cycle_again_at_the_swap():
  calr = lmf_tf.schedules.CyclicallyAnnealedLearningRate(1e-5, 3e-3, 500, 0.5)
  restarted = lmf_tf.recovery.Restarted(calr, 4224)
  for step in (0, 250, 500, 1300):
    assert float(restarted(4224 + step)) == pytest.approx(float(calr(step)))
  assert float(restarted(4724)) == pytest.approx(3e-3) and float(calr(4724)) < 3e-4  # the decayed peak
  again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(restarted))
  assert float(again(5000)) == pytest.approx(float(restarted(5000)))


def test_recovery_learning_rate_restart_after_the_swap():
  model, ids, labels = model_and_data()
  callback = lmf_tf.OnlineCompression(rank=2, at_step=6, recovery_learning_rate='restart')
  model.fit(ids, labels, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
  schedule = model.optimizer.get_config()['learning_rate']
  assert schedule['class_name'] == 'Restarted' and schedule['config']['start_step'] == 6
  constant = lmf_tf.OnlineCompression(rank=2, at_step=6, recovery_learning_rate=3e-3)
  model, ids, labels = model_and_data()
  model.fit(ids, labels, batch_size=8, epochs=1, verbose=0, callbacks=[constant])
  assert float(model.optimizer.learning_rate) == pytest.approx(3e-3)


def scipy_softmax(logits):
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_distillation_term_is_zero_for_an_identical_teacher_and_the_label_loss_at_alpha_one():
  model, ids, labels = model_and_data()
  teacher = keras.models.clone_model(model)
  teacher.set_weights(model.get_weights())
  y_pred = model(ids)
  plain = float(model.compute_loss(ids, labels, y_pred))
  distillation.attach(model, teacher, distillation.Distillation(alpha=0.0, temperature=3.0))
  assert float(model.compute_loss(ids, labels, y_pred)) == pytest.approx(0.0, abs=1e-5)  # KL(p || p) = 0
  assert float(model.compute_loss(ids, labels, y_pred, training=False)) == pytest.approx(plain)  # evaluation
  distillation.detach(model)
  other = keras.models.clone_model(model)  # a teacher that answers otherwise: T² KL(teacher_T || student_T)
  weights = model.get_weights()
  other.set_weights(weights[:-2] + [-30.0 * weights[-2], weights[-1]])  # the output kernel reversed and sharpened
  distillation.attach(model, other, distillation.Distillation(alpha=0.0, temperature=3.0))
  p, q = (scipy_softmax(np.log(np.clip(np.asarray(out), 1e-7, 1.0)) / 3.0) for out in (other(ids), y_pred))
  expected = 9.0 * np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1))
  assert expected > 1e-3 and float(model.compute_loss(ids, labels, y_pred)) == pytest.approx(expected, rel=1e-4)
  distillation.detach(model)
  distillation.attach(model, teacher, distillation.Distillation(alpha=1.0))
  assert float(model.compute_loss(ids, labels, y_pred)) == pytest.approx(plain, rel=1e-6)
  distillation.detach(model)
  assert not distillation.is_attached(model)
  with pytest.raises(lmf_tf.errors.ConfigError, match=r'Distillation\(alpha=1.5\)'):
    lmf_tf.recovery.Distillation(alpha=1.5)


def test_distillation_during_fit_then_a_clean_model():
  model, ids, labels = model_and_data()
  callback = lmf_tf.OnlineCompression(rank=2, at_step=4, distillation=lmf_tf.recovery.Distillation(0.5, 2.0))
  model.fit(ids, labels, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
  assert not distillation.is_attached(model)  # detached when fit ends
  teacher = callback._teacher  # pylint: disable=protected-access
  assert not teacher.trainable and teacher.get_layer('words').embeddings.shape == (V, D)


def test_gradual_rank_steps_down_to_the_final_rank():
  model, ids, labels = model_and_data()
  callback = lmf_tf.OnlineCompression(rank=2, at_step=2, gradual_factors=(4, 2), gradual_every_steps=3)
  model.fit(ids, labels, batch_size=8, epochs=2, verbose=0, callbacks=[callback])
  assert callback.swap_steps == [2, 5, 8] and model.get_layer('words').rank == 2
  assert [r['words'] for r in callback.get_state()['ranks']] == [8, 4, 2]
  # Ranks are capped at the largest useful rank: a 200 x 12 matrix breaks even at 11.3, so 6 x 4 and 6 x 2 are 11.
  callback = lmf_tf.OnlineCompression(rank=6, at_step=2, gradual_factors=(4, 2), gradual_every_steps=3)
  callback.prepare(model_and_data()[0])
  assert [r['words'] for r in callback.get_state()['ranks']] == [11, 6]


def test_swap_at_the_dev_peak_restores_the_best_epochs_weights():
  model, ids, labels = model_and_data()
  callback = lmf_tf.OnlineCompression(rank=2, at_dev_peak=lmf_tf.recovery.DevPeak('val_accuracy', patience=1))
  callback.set_model(model)
  callback.on_train_begin()
  weights = {}
  for epoch, accuracy in enumerate([0.5, 0.7, 0.6]):
    model.get_layer('words').embeddings.assign(np.full((V, D), epoch, np.float32))  # "training"
    weights[epoch] = model.get_layer('words').embeddings.numpy()
    callback.on_epoch_end(epoch, {'val_accuracy': accuracy})
    assert bool(callback.swap_steps) == (epoch == 2)
  # Swapped after epoch 3 from epoch 2's weights (the best), whose rank-2 form is exact (a constant matrix).
  np.testing.assert_allclose(model.get_layer('words').full_matrix(), weights[1], atol=1e-5)
  with pytest.raises(lmf_tf.errors.ConfigError, match=r"monitor='val_accuracy'\)\): no such value in the epoch logs"):
    late = lmf_tf.OnlineCompression(rank=2, at_dev_peak=lmf_tf.recovery.DevPeak())
    late.set_model(model_and_data()[0])
    late.on_train_begin()
    late.on_epoch_end(0, {'loss': 1.0})


@pytest.mark.slow
def test_every_recovery_option_resumes_bitwise(tiny_config, tmp_path):
  base = TrainConfig(**dict(tiny_config, model='dan', epochs=4, seed=3, reduction=60, compress_at_dev_peak=True,
                            compress_at_epoch=1, recovery_lr='restart', distill_alpha=0.5, gradual_factors='4,2',
                            gradual_every_steps=3, deterministic=True))
  assert base.run_name.startswith('sst2_dan_R60_restart-kd-gradual-devpeak_h')
  _, straight = training.train_and_evaluate(dataclasses.replace(base, workdir=str(tmp_path / 'a')))
  other = dataclasses.replace(base, workdir=str(tmp_path / 'b'), results_dir=str(tmp_path / 'rb'))
  assert training.train_and_evaluate(dataclasses.replace(other, stop_after_epoch=2))[1] is None  # mid-gradual
  _, resumed = training.train_and_evaluate(dataclasses.replace(other, resume=True))
  assert straight['compression']['swap_steps'] == resumed['compression']['swap_steps']
  assert len(straight['compression']['swap_steps']) == 3 and straight['rank'] == resumed['rank']
  assert [h['dev_accuracy'] for h in resumed['history']] == [h['dev_accuracy'] for h in straight['history']]
  assert [h['train_loss'] for h in resumed['history']] == [h['train_loss'] for h in straight['history']]
  assert resumed['test_accuracy'] == straight['test_accuracy'] and resumed['recipe'] == 'restart-kd-gradual-devpeak'


def test_detach_removes_the_term_from_the_traced_step():
  """`attach` and `detach` re-trace a step `fit` made: after `detach` the training loss is the plain loss again."""
  model, ids, labels = model_and_data()
  model.fit(ids, labels, epochs=1, verbose=0)  # a traced step without the term
  other = keras.models.clone_model(model)
  weights = model.get_weights()
  other.set_weights(weights[:-2] + [-30.0 * weights[-2], weights[-1]])
  distillation.attach(model, other, distillation.Distillation(alpha=0.0))
  plain = model.evaluate(ids, labels, verbose=0, return_dict=True)['loss']
  distilled = float(model.train_on_batch(ids, labels, return_dict=True)["loss"])
  assert abs(distilled - plain) > 0.1  # the term, not the labels
  distillation.detach(model)
  plain = model.evaluate(ids, labels, verbose=0, return_dict=True)['loss']
  assert float(model.train_on_batch(ids, labels, return_dict=True)["loss"]) == pytest.approx(plain, rel=1e-4)
