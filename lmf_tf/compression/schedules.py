"""Cyclical learning rates (Acharya et al. 2019, §3.2): CLR (Smith 2017) and Cyclically Annealed LR (CALR).

Both are pure functions of the optimizer step, so a resumed run continues on the same curve.

CLR, triangular: with half-cycle s, cycle c = floor(step / 2s) and x = |step / s - 2c - 1| in [0, 1],
    lr(step) = lower + (upper - lower) * (1 - x).
The rate starts at `lower`, reaches `upper` at step s, is back at `lower` at 2s.

CALR: the same triangle, but the peak of cycle c is
    upper_c = upper * decay^(c mod P),   P = the first n with upper * decay^n <= lower,
i.e. the peak decays exponentially by `decay` per cycle and, once it has fallen to the lower bound, jumps back to
its initial value and the decay starts over. Worked example, lower=1e-5, upper=1e-3, decay=0.1: P = 2
(1e-3 * 0.1^2 = 1e-5 <= 1e-5), so the peaks run 1e-3, 1e-4, 1e-3, 1e-4, ...
"""

import math

import keras
import tensorflow as tf

from lmf_tf.errors import ConfigError


def _check_bounds(lower, upper, step_size):
  if not 0 <= lower < upper:
    raise ConfigError(f'learning-rate bounds need 0 <= lower < upper, got lower={lower}, upper={upper} '
                      '(--lr_lower, --lr_upper)')
  if step_size < 1:
    raise ConfigError(f'--lr_step_size must be >= 1, got {step_size}')


@keras.saving.register_keras_serializable(package='lmf_tf')
class CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
  """Triangular CLR between `lower` and `upper` with half-cycle `step_size` (steps)."""

  def __init__(self, lower, upper, step_size, name='CLR'):
    _check_bounds(lower, upper, step_size)
    self.lower, self.upper, self.step_size, self.name = float(lower), float(upper), int(step_size), name

  def _triangle(self, step):
    """(cycle index c: float32, position 1 - x in [0, 1]: float32) at `step`."""
    step = tf.cast(step, tf.float32)
    cycle = tf.floor(step / (2.0 * self.step_size))
    x = tf.abs(step / self.step_size - 2.0 * cycle - 1.0)
    return cycle, 1.0 - x

  def __call__(self, step):
    _, height = self._triangle(step)
    return self.lower + (self.upper - self.lower) * height

  def get_config(self):
    return {'lower': self.lower, 'upper': self.upper, 'step_size': self.step_size, 'name': self.name}


@keras.saving.register_keras_serializable(package='lmf_tf')
class CyclicallyAnnealedLearningRate(CyclicalLearningRate):
  """CALR: triangular cycles whose peak decays by `decay` per cycle and resets once it reaches `lower`."""

  def __init__(self, lower, upper, step_size, decay, name='CALR'):
    super().__init__(lower, upper, step_size, name=name)
    if not 0 < decay < 1:
      raise ConfigError(f'--lr_decay must be in (0, 1), got {decay}')
    self.decay = float(decay)

  @property
  def period(self):
    """P: number of cycles before the peak is reset (the first n with upper * decay^n <= lower)."""
    if self.lower <= 0:
      return None  # The peak never reaches a zero lower bound: pure exponential decay.
    n = math.ceil(math.log(self.lower / self.upper) / math.log(self.decay) - 1e-9)
    return max(n, 1)

  def peak(self, cycle):
    """upper_c for cycle index c (a tensor or number)."""
    cycle = tf.cast(cycle, tf.float32)
    if self.period is not None:
      cycle = tf.math.floormod(cycle, float(self.period))
    return self.upper * tf.pow(self.decay, cycle)

  def __call__(self, step):
    cycle, height = self._triangle(step)
    return self.lower + (self.peak(cycle) - self.lower) * height

  def get_config(self):
    return {**super().get_config(), 'decay': self.decay}


@keras.saving.register_keras_serializable(package='lmf_tf')
class Restarted(keras.optimizers.schedules.LearningRateSchedule):
  """`schedule` started afresh at `start_step`: lr(step) = schedule(max(step - start_step, 0)).

  The learning-rate restart of online compression's recovery phase (`OnlineCompression(recovery_learning_rate=
  'restart')`): after the swap at step s, CALR runs a new first cycle from s, with its full initial peak, instead
  of continuing the decayed one. `schedule` may also be a float (a constant rate from the swap on).
  Worked example: CALR(1e-5, 3e-3, 500, 0.5) restarted at 4,224 gives 3e-3 at step 4,724, where the continued
  schedule's peak has decayed to 3e-3 * 0.5^4 ≈ 1.9e-4.
  """

  def __init__(self, schedule, start_step):
    if isinstance(schedule, dict):
      schedule = keras.optimizers.schedules.deserialize(schedule)
    if int(start_step) < 0:
      raise ConfigError(f'Restarted(start_step={start_step}): the step must be >= 0')
    self.schedule, self.start_step = schedule, int(start_step)

  def __call__(self, step):
    if not isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule):
      return tf.constant(float(self.schedule), tf.float32)
    return self.schedule(tf.maximum(tf.cast(step, tf.int64) - self.start_step, 0))

  def get_config(self):
    schedule = self.schedule
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
      schedule = keras.optimizers.schedules.serialize(schedule)
    return {'schedule': schedule, 'start_step': self.start_step}
