"""Knowledge distillation during the recovery after an online swap (beyond the paper).

The model taken just before the swap is the teacher (run with `training=False`, no gradient reaches it); the
compressed model (the student) trains on

    loss = α · CE(y, student) + (1 − α) · T² · KL(softmax(t / T) ‖ softmax(s / T)) + regularization,

with t and s the teacher's and student's logits (Hinton, Vinyals and Dean 2015, §2; Lioutas et al. 2019,
"Distilled Embedding", pair low-rank embedding factorization with distillation). The term is computed here
(`kl_term`), not by `keras.distillation.LogitsDistillation`: with its default loss, the string 'kl_divergence'
(Keras 3.13 to 3.15; it resolves to the function, not the `KLDivergence` instance its softmax branch checks for),
that class applies `kl_divergence` to the tempered logits themselves, whose clip to [1e-7, 1] makes it zero for
log-probabilities, so before 2026-12-05 the term was zero for a model with softmax outputs (docs/recovery.md says
what that changed).

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
  compiled loss (`from_logits` of a Keras cross-entropy; a loss given by name means probabilities). `teacher`: the
  teacher model; None for `OnlineCompression`'s, the model just before the swap. `fit_budget` takes a trained Keras
  model of yours here (a larger one: Hinton et al.'s setting), which reads the same ids as the student and outputs
  as many classes (probabilities or logits as the student does)."""
  alpha: float = 0.5
  temperature: float = 2.0
  from_logits: bool | None = None
  teacher: object = None

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


def kl_term(teacher_logits, student_logits, temperature):
  """T² · mean over the batch of KL(softmax(t / T) ‖ softmax(s / T)), for logits `float[batch, classes]`."""
  teacher_log_p = ops.log_softmax(teacher_logits / temperature, axis=-1)
  student_log_p = ops.log_softmax(student_logits / temperature, axis=-1)
  kl = ops.sum(ops.exp(teacher_log_p) * (teacher_log_p - student_log_p), axis=-1)
  return temperature ** 2 * ops.mean(kl)


def attach(model, teacher, settings):
  """Adds the distillation term against `teacher` (a model with the same outputs) to `model`'s training loss, in
  place. The teacher runs with `training=False` and takes no gradient. Undo with `detach(model)`; both drop the
  traced training step, so the next `fit` traces one with (or without) the term."""
  from_logits = outputs_are_logits(model, settings.from_logits)
  compute_loss = type(model).compute_loss.__get__(model)  # the class's method, even if already attached

  def distilled_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
    total = compute_loss(x, y, y_pred, sample_weight, training=training)
    if not training:
      return total
    # The same regularization terms `compute_loss` added (scaled as it scales them under tf.distribute).
    regularization = ops.sum([model._aggregate_additional_loss(l) for l in model.losses]) if model.losses else 0.0
    teacher_logits = ops.stop_gradient(_logits(teacher(x, training=False), from_logits))
    distill = kl_term(teacher_logits, _logits(y_pred, from_logits), settings.temperature)
    return settings.alpha * (total - regularization) + (1 - settings.alpha) * distill + regularization

  model.compute_loss = distilled_loss
  _retrace_training(model)  # a step traced before would not call it


def _retrace_training(model):
  """Makes the model's training step anew where one was made (else `fit` makes it)."""
  if getattr(model, 'train_function', None) is not None:
    model.make_train_function(force=True)


def detach(model):
  """Removes the term `attach` added (the model's own `compute_loss` applies again)."""
  if 'compute_loss' in vars(model):
    del model.compute_loss
    _retrace_training(model)  # the traced step holds the term (and the teacher)


def is_attached(model):
  return 'compute_loss' in vars(model)
