import keras
import numpy as np
import pytest

from lmf_tf.compression import schedules
from lmf_tf.errors import ConfigError


def lr(schedule, step):
  return float(schedule(step))


def test_clr_triangle_at_known_steps():
  clr = schedules.CyclicalLearningRate(lower=1e-4, upper=1e-3, step_size=10)
  expected = {0: 1e-4, 5: 5.5e-4, 10: 1e-3, 15: 5.5e-4, 20: 1e-4, 30: 1e-3, 40: 1e-4}
  for step, value in expected.items():
    assert lr(clr, step) == pytest.approx(value, rel=1e-5), step


def test_calr_peak_decays_per_cycle_then_resets():
  # lower 1e-5, upper 1e-3, decay 0.1: peaks 1e-3, 1e-4, then 1e-5 <= lower -> reset to 1e-3 (period 2).
  calr = schedules.CyclicallyAnnealedLearningRate(lower=1e-5, upper=1e-3, step_size=10, decay=0.1)
  assert calr.period == 2
  peaks = [lr(calr, 10 + 20 * c) for c in range(5)]
  np.testing.assert_allclose(peaks, [1e-3, 1e-4, 1e-3, 1e-4, 1e-3], rtol=1e-5)
  assert lr(calr, 0) == pytest.approx(1e-5)
  assert lr(calr, 20) == pytest.approx(1e-5)
  assert lr(calr, 25) == pytest.approx(1e-5 + (1e-4 - 1e-5) / 2, rel=1e-5)


def test_calr_period_with_slow_decay():
  calr = schedules.CyclicallyAnnealedLearningRate(lower=1e-4, upper=2e-3, step_size=4, decay=0.5)
  # 2e-3 * 0.5^n <= 1e-4  <=>  n >= log2(20) = 4.32 -> P = 5: peaks 2e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4, reset.
  assert calr.period == 5
  peaks = [lr(calr, 4 + 8 * c) for c in range(7)]
  np.testing.assert_allclose(peaks, [2e-3, 1e-3, 5e-4, 2.5e-4, 1.25e-4, 2e-3, 1e-3], rtol=1e-5)


def test_schedules_depend_on_the_step_alone():
  # A resumed run rebuilds its schedule and continues at the saved step: the same value whatever the step's type,
  # and whichever object computes it (a fresh one from the config).
  calr = schedules.CyclicallyAnnealedLearningRate(1e-5, 1e-3, 7, 0.3)
  again = schedules.CyclicallyAnnealedLearningRate.from_config(calr.get_config())
  for step in (0, 6, 7, 123, 10_000):
    assert lr(again, step) == lr(calr, step) == pytest.approx(float(calr(np.int64(step))))
  # Step 123 is in cycle 8 (123 // 14), 11 steps in, 4 past the peak 1e-3 * 0.3^(8 mod 4) = 1e-3.
  assert calr.period == 4 and lr(calr, 123) == pytest.approx(1e-5 + (1e-3 * 0.3 ** 0 - 1e-5) * (1 - 4 / 7), rel=1e-5)


@pytest.mark.parametrize('schedule', [
    schedules.CyclicalLearningRate(1e-4, 1e-3, 10),
    schedules.CyclicallyAnnealedLearningRate(1e-5, 1e-3, 10, 0.1),
])
def test_schedules_round_trip_through_keras_serialization(schedule):
  restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
  assert type(restored) is type(schedule)
  assert restored.get_config() == schedule.get_config()
  optimizer = keras.optimizers.Adam(schedule)
  clone = keras.optimizers.Adam.from_config(optimizer.get_config())
  assert lr(clone._learning_rate, 33) == pytest.approx(lr(schedule, 33))


@pytest.mark.parametrize('kwargs', [dict(lower=1e-3, upper=1e-4, step_size=10), dict(lower=0, upper=1, step_size=0)])
def test_bad_bounds_are_rejected(kwargs):
  with pytest.raises(ConfigError):
    schedules.CyclicalLearningRate(**kwargs)
  with pytest.raises(ConfigError, match='lr_decay'):
    schedules.CyclicallyAnnealedLearningRate(1e-5, 1e-3, 10, decay=1.5)
