"""The learning-rate schedule of the PTB language model (Zaremba et al. 2014, §4.1)."""

import keras
import tensorflow as tf

from lmf_tf.errors import ConfigError


@keras.saving.register_keras_serializable(package='lmf_tf')
class DelayedEpochDecay(keras.optimizers.schedules.LearningRateSchedule):
  """Zaremba et al. (2014, §4.1) language-model schedule: constant, then decayed by `decay` once per epoch.

  With e = floor(step / steps_per_epoch), the 0-based epoch,
      lr(step) = initial * decay^max(0, e + 1 - decay_after_epochs),
  i.e. the rate stays `initial` for the first `decay_after_epochs` epochs, then each later epoch multiplies it by
  `decay` (the TensorFlow PTB tutorial's `lr_decay ** max(i + 1 - max_epoch, 0)`). Worked example, the small
  config (initial 1, decay 0.5 after 4 epochs, 2,323 steps an epoch): steps 0-9,291 (epochs 1-4) 1.0; step 9,292
  (epoch 5) 0.5; epoch 13 0.5^9 ≈ 0.00195.
  """

  def __init__(self, initial, decay, decay_after_epochs, steps_per_epoch, name='DelayedEpochDecay'):
    if initial <= 0 or not 0 < decay <= 1:
      raise ConfigError(f'the learning rate needs initial > 0 and 0 < decay <= 1, got {initial} and {decay}')
    if decay_after_epochs < 0 or steps_per_epoch < 1:
      raise ConfigError(f'decay_after_epochs must be >= 0 and steps_per_epoch >= 1, got {decay_after_epochs} and '
                        f'{steps_per_epoch}')
    self.initial, self.decay = float(initial), float(decay)
    self.decay_after_epochs, self.steps_per_epoch, self.name = int(decay_after_epochs), int(steps_per_epoch), name

  def __call__(self, step):
    epoch = tf.floor(tf.cast(step, tf.float32) / self.steps_per_epoch)
    return self.initial * tf.pow(self.decay, tf.maximum(0.0, epoch + 1.0 - self.decay_after_epochs))

  def get_config(self):
    return {'initial': self.initial, 'decay': self.decay, 'decay_after_epochs': self.decay_after_epochs,
            'steps_per_epoch': self.steps_per_epoch, 'name': self.name}
