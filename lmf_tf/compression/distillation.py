"""Knowledge distillation during the recovery after an online swap (beyond the paper).

The model taken just before the swap is a frozen teacher; the compressed model (the student) trains on

    loss = α · CE(y, student) + (1 − α) · T² · KL(softmax(t / T) ‖ softmax(s / T)) + regularization,

with t and s the teacher's and student's logits (Hinton, Vinyals and Dean 2015, §2; Lioutas et al. 2019,
"Distilled Embedding", pair low-rank embedding factorization with distillation). The T² term is
`keras.distillation.LogitsDistillation`'s.

It works on the user's own model, in place: `attach` wraps the model's `compute_loss` (which Keras's `train_step`
calls with the batch's inputs x), so `fit` needs nothing else; evaluation (`training=False`) keeps the plain loss.
A model whose outputs are probabilities (a softmax layer, as with `sparse_categorical_crossentropy`) gives
logits as log p, which softmax maps back to p. Sample weights and masks apply to the cross-entropy, not to the
distillation term.
"""

import dataclasses

import keras
from keras import ops

from lmf_tf.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Distillation:
  """Settings of the distillation term. `from_logits`: whether the model outputs logits; None reads it from the
  compiled loss (`from_logits` of a Keras cross-entropy; a loss given by name means probabilities)."""
  alpha: float = 0.5
  temperature: float = 2.0
  from_logits: bool | None = None

  def __post_init__(self):
    if not 0 <= self.alpha <= 1:
      raise ConfigError(f'Distillation(alpha={self.alpha}): alpha, the weight of the labels, must be in [0, 1]')
    if not self.temperature > 0:
      raise ConfigError(f'Distillation(temperature={self.temperature}): the temperature must be > 0')


def outputs_are_logits(model, setting=None):
  """`setting` if given, else what the compiled loss says (`from_logits`); a loss given by name means no."""
  if setting is not None:
    return bool(setting)
  loss = getattr(model, 'loss', None)
  if isinstance(loss, str) or loss is None:
    return False
  config = loss.get_config() if hasattr(loss, 'get_config') else {}
  if 'from_logits' not in config:
    raise ConfigError(f'Distillation: cannot tell whether model {model.name!r} outputs logits from its loss '
                      f'{loss!r}; pass Distillation(from_logits=True or False)')
  return bool(config['from_logits'])


def _logits(outputs, from_logits):
  return outputs if from_logits else ops.log(ops.clip(outputs, 1e-7, 1.0))


def attach(model, teacher, settings):
  """Adds the distillation term against `teacher` (a frozen model with the same outputs) to `model`'s training
  loss, in place. The teacher runs with `training=False`. Undo with `detach(model)`."""
  from_logits = outputs_are_logits(model, settings.from_logits)
  teacher.trainable = False
  term = keras.distillation.LogitsDistillation(temperature=settings.temperature)
  compute_loss = type(model).compute_loss.__get__(model)  # the class's method, even if already attached

  def distilled_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
    total = compute_loss(x, y, y_pred, sample_weight, training=training)
    if not training:
      return total
    # The same regularization terms `compute_loss` added (scaled as it scales them under tf.distribute).
    regularization = ops.sum([model._aggregate_additional_loss(l) for l in model.losses]) if model.losses else 0.0
    teacher_logits = ops.stop_gradient(_logits(teacher(x, training=False), from_logits))
    distill = term.compute_loss(teacher_logits, _logits(y_pred, from_logits))
    return settings.alpha * (total - regularization) + (1 - settings.alpha) * distill + regularization

  model.compute_loss = distilled_loss


def detach(model):
  """Removes the term `attach` added (the model's own `compute_loss` applies again)."""
  if 'compute_loss' in vars(model):
    del model.compute_loss


def is_attached(model):
  return 'compute_loss' in vars(model)
