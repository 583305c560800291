"""The budget front's table, CSV and figure, and the lines a budget run prints (issue: ship under a byte budget)."""

import numpy as np

from lmf_tf.compression.sizes import PARTS


def parts_table(run):
  """A run's bytes by part, predicted and measured, as lines."""
  predicted, measured = run['predicted_bytes'], run['measured_bytes']
  lines = [f'  {"part":<11}{"predicted":>11}{"measured":>11}']
  lines += [f'  {part:<11}{predicted[part]:>11,}{measured[part]:>11,}' for part in PARTS + ('total',)]
  return '\n'.join(lines)


def describe_run(run):
  """One run: its plan, accuracies (LiteRT on the shipped files; Keras beside) and bytes by part."""
  teacher = f' (distilled from {run["teacher"]})' if run.get('teacher') else ''
  return (f'{run["dataset"]} {run["plan"]}{teacher} seed {run["seed"]}: dev {run["dev_accuracy"]:.4f}, test '
          f'{run["test_accuracy"]:.4f} (LiteRT on the shipped file; Keras {run["keras_test_accuracy"]:.4f}); '
          f'{run["deployable_bytes"]:,} deployable bytes = TFLite {run["tflite_bytes"]:,} + vocabulary '
          f'{run["vocabulary_bytes"]:,}{" (words hashed: no file)" if run.get("hashed") else ""}; trained in '
          f'{run["train_seconds"]:.0f} s\n' + parts_table(run))


def describe_outcome(outcome):
  """A budget search: the chosen plan, its runs and whether each fits."""
  tests = [run['test_accuracy'] for run in outcome.runs]
  lines = [f'budget {outcome.budget_bytes:,} bytes: chose {outcome.plan.name} on dev among '
           f'{", ".join(c.name for c in outcome.candidates)}',
           f'test accuracy {100 * np.mean(tests):.2f} ± {100 * np.std(tests):.2f} over {len(tests)} seed(s)']
  lines += [describe_run(run) for run in outcome.runs]
  return '\n'.join(lines)
