"""Train one budget plan (`budget_plans.BudgetPlan`) on a study data set, ship it and measure what is shipped.

`train_plan` keeps the plan's words (the most frequent of the training split; the rest are `<unk>`), starts the
embedding from the 50-d GloVe vectors, trains with `lmf_tf.OnlineCompression` swapping the embedding to the plan's
rank after half the epochs (with the learning-rate restart, the recovery recipe of docs/recovery.md), keeps the
best epoch on dev after the swap, folds the projection into the next layer, exports the TFLite file of the plan's
kind, and runs that file with LiteRT on dev and test. Sizes are the files written: the flatbuffer and the
xz-compressed vocabulary (`lmf_tf.budget.write_vocabulary`; none for a plan whose words are hashed).
"""

import collections
import dataclasses
import os
import time

import keras
import numpy as np
import tensorflow as tf

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError
from lmf_tf.compression import sizes as budget
from lmf_tf.compression import distillation, export, int4, online, schedules
from lmf_tf.compression import kernels as kernels_lib
from lmf_tf.text import budget_plans, catalog, input_pipeline, tfds_builders, word_vectors

# By data set and architecture, chosen on dev (docs/budget.md): epochs (the swap comes after half of them; SST-2's
# 67,338 phrases make 4 epochs 4,200 steps; CLINC150's 15,000 queries 30 epochs of a bag 7,050 steps, which cost
# about the wall time of 16 (the dev evaluation and the input pipeline dominate a bag's epoch), 8 of an LSTM, its
# default, 1,880) and dropout.
EPOCHS = {('sst2', 'bag'): 4, ('sst2', 'lstm'): 4, ('clinc150', 'bag'): 30, ('clinc150', 'lstm'): 8}
DROPOUT = {'sst2': 0.3, 'clinc150': 0.1}
BATCH_SIZE = 64
DISTILL_TEMPERATURE = 2.0  # of a trial's distillation (as the recovery recipe 'kd', docs/recovery.md)
SHIPPED = ('model.tflite', 'vocabulary.xz')  # the files a run ships (a hashed plan: no vocabulary.xz)
INT4_EPOCHS = 4  # of training aware of int4 tables, for a plan of kind 'int4_embeddings' (the probe's, docs/budget.md)


@dataclasses.dataclass
class BudgetData:
  """A data set's splits as text, its training word counts and its classes."""
  name: str
  splits: object  # tfds_builders.TextSplits
  counts: collections.Counter
  num_classes: int
  words_by_frequency: np.ndarray
  data_dir: str = catalog.DATA_DIR

  _vocabulary_bytes: dict = dataclasses.field(default_factory=dict, repr=False)

  def vocabulary_bytes(self, words):
    """Bytes of the compressed vocabulary file of the `words` most frequent training words (computed once)."""
    if words not in self._vocabulary_bytes:
      self._vocabulary_bytes[words] = budget.vocabulary_bytes(self.words_by_frequency[:words].tolist())
    return self._vocabulary_bytes[words]


def load_data(dataset, data_dir=catalog.DATA_DIR, tfds_dir=catalog.DEFAULT_TFDS_DIR):
  """The data set's default config (SST-2 phrases, CLINC150 in-scope), with its training word counts."""
  splits = tfds_builders.load_splits(dataset, source_dir=data_dir, tfds_dir=tfds_dir)
  counts = collections.Counter()
  for batch in splits.train.batch(4096).map(lambda text, label: input_pipeline.tokenize(text)):
    counts.update(w.decode('utf-8') for w in batch.flat_values.numpy())
  return BudgetData(dataset, splits, counts, splits.num_classes, budget_plans.words_by_frequency(counts), data_dir)


def _vocabulary(data, plan, run_dir):
  """Writes the plan's vocabulary file; the `input_pipeline.Vocabulary` in its order, and its bytes. A `hashed`
  plan writes none: its `input_pipeline.HashedVocabulary` hashes the words into the plan's buckets (0 bytes)."""
  if plan.hashed:
    return input_pipeline.HashedVocabulary(data.words_by_frequency.tolist(), plan.words), 0
  path = os.path.join(run_dir, 'vocabulary.xz')
  words = budget.write_vocabulary(data.words_by_frequency[:plan.words].tolist(), path)
  tokens = [input_pipeline.PAD_TOKEN, input_pipeline.UNK_TOKEN] + words
  return input_pipeline.Vocabulary(tokens, plan.oov_buckets), os.path.getsize(path)


def _sequences(encoded):
  ids, labels = zip(*encoded.as_numpy_iterator())
  return list(ids), np.asarray(labels)


def _fit(model, plan, train, dev, epochs, steps_per_epoch, distill_alpha=None):
  """Trains with the online swap to the plan's rank (and its matrices to the plan's kernel rank) after half the
  epochs, distilling from the model before the swap with `distill_alpha`; keeps the best dev epoch after it."""
  swap_epoch = epochs // 2
  callbacks = [keras.callbacks.EarlyStopping('val_accuracy', mode='max', patience=epochs, restore_best_weights=True,
                                             start_from_epoch=swap_epoch if plan.rank or plan.kernel_rank else 0)]
  if plan.rank or plan.kernel_rank:
    kernels = kernels_lib.LowRankKernels(rank=plan.kernel_rank) if plan.kernel_rank else None
    teacher = None if distill_alpha is None else distillation.Distillation(distill_alpha, DISTILL_TEMPERATURE)
    callbacks.insert(0, online.OnlineCompression(rank=plan.rank, at_epoch=swap_epoch, kernels=kernels, verbose=0,
                                                 recovery_learning_rate='restart', distillation=teacher))
  model.fit(train, validation_data=dev, epochs=epochs, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
            verbose=0, shuffle=False)  # the batches are shuffled (seeded) by the pipeline; Keras warns otherwise


def _accuracy(probs, labels):
  return float(np.mean(np.argmax(probs, axis=1) == labels))


def teacher_targets(data, teacher_dir, alpha, temperature=DISTILL_TEMPERATURE):
  """float32[n, classes]: the soft targets of the training split's n examples, in its order, from a teacher's
  shipped files (`teacher_dir`/model.tflite run by LiteRT on the ids of its vocabulary.xz): alpha one-hot(label) +
  (1 - alpha) softmax(log p / T), p the teacher's probabilities. Training on them with the cross-entropy is the
  distillation loss alpha CE(y, s) + (1 - alpha) CE(p_T, s) (Hinton et al. 2015, §2, with the student at T = 1)."""
  paths = {name: os.path.join(teacher_dir, name) for name in SHIPPED}
  missing = [path for path in paths.values() if not os.path.exists(path)]
  if missing:
    raise ConfigError(f'teacher {teacher_dir}: {", ".join(missing)} not found; train the teacher plan\'s seed 1 '
                      'into it first (budget_search.ensure_teacher_files, which a distilled run calls)')
  words = budget.read_vocabulary(paths['vocabulary.xz'])
  vocabulary = input_pipeline.Vocabulary([input_pipeline.PAD_TOKEN, input_pipeline.UNK_TOKEN] + words)
  with open(paths['model.tflite'], 'rb') as f:
    runner = export.TfliteRunner(f.read())
  ids, labels = _sequences(input_pipeline.encode_dataset(data.splits.train, vocabulary))
  logits = np.log(np.clip(runner.predict(ids), 1e-7, 1.0)) / temperature
  soft = np.exp(logits - logits.max(axis=-1, keepdims=True))
  soft /= soft.sum(axis=-1, keepdims=True)
  return (alpha * np.eye(data.num_classes)[labels] + (1 - alpha) * soft).astype('float32')


def _with_targets(encoded, targets, num_classes):
  """`encoded` splits whose labels become one-hot vectors, the training split's the soft `targets`; the loss."""
  if targets is None:
    return encoded, 'sparse_categorical_crossentropy'
  one_hot = {name: split.map(lambda ids, label: (ids, tf.one_hot(label, num_classes)))
             for name, split in encoded.items() if name != 'train'}
  train = tf.data.Dataset.zip(encoded['train'], tf.data.Dataset.from_tensor_slices(targets))
  return {**one_hot, 'train': train.map(lambda example, soft: (example[0], soft))}, 'categorical_crossentropy'


def _trained_for_int4(shipped, trained, steps, seed, loss, epochs=INT4_EPOCHS):
  """The shipped (folded) model trained `epochs` more with its table quantized to int4 in the forward pass
  (`lmf_tf.quantization.int4_aware`, Adam 3e-4), the best epoch on dev kept (its scales are the ones it ships)."""
  aware = int4.int4_aware(shipped)
  aware.compile(keras.optimizers.Adam(3e-4), loss, metrics=['accuracy'])
  aware.fit(input_pipeline.training_batches(trained['train'], BATCH_SIZE, seed + 1, 0, epochs),
            validation_data=input_pipeline.batches(trained['dev'], BATCH_SIZE), epochs=epochs,
            steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=[keras.callbacks.EarlyStopping(
                'val_accuracy', mode='max', patience=epochs, restore_best_weights=True)])
  return aware


def train_plan(plan, data, seed, run_dir, epochs=None, dropout=None, distill_alpha=None, teacher_dir=None):
  """Trains, ships and measures `plan` on `data` with `seed`; writes `run_dir`/model.tflite and vocabulary.xz.
  `epochs` and `dropout` default to the data set's; `distill_alpha` (None: off) distils the recovery after the
  swap from the model before it (`lmf_tf.Distillation`, temperature `DISTILL_TEMPERATURE`), or, with
  `teacher_dir` (another plan's shipped files), the whole training from that teacher (`teacher_targets`).

  Returns a dict: the plan, dev and test accuracy of the shipped file (LiteRT), the Keras model's test accuracy,
  bytes by part (predicted and measured, `lmf_tf.budget`), the training seconds.
  """
  start = time.time()
  os.makedirs(run_dir, exist_ok=True)
  epochs = epochs or EPOCHS[(data.name, plan.architecture)]
  vocabulary, vocabulary_file_bytes = _vocabulary(data, plan, run_dir)
  targets = None if teacher_dir is None else teacher_targets(data, teacher_dir, distill_alpha)
  keras.utils.set_random_seed(seed)
  encoded = {name: input_pipeline.encode_dataset(getattr(data.splits, split), vocabulary)
             for name, split in (('train', 'train'), ('dev', 'validation'), ('test', 'test'))}
  trained, loss = _with_targets(encoded, targets, data.num_classes)
  glove = os.path.join(data.data_dir, catalog.LOCAL_DATASETS[data.name].default_embeddings)
  initial = word_vectors.read_word_vectors(glove, vocabulary, seed=seed).matrix
  model = budget_plans.build_classifier(plan, data.num_classes, width=initial.shape[1],
                                       dropout=DROPOUT[data.name] if dropout is None else dropout)
  model.get_layer('words').set_weights([initial])
  rate = schedules.CyclicallyAnnealedLearningRate(1e-5, 3e-3, 500, 0.5)
  model.compile(keras.optimizers.Adam(rate), loss, metrics=['accuracy'])
  steps = input_pipeline.count_batches(encoded['train'], BATCH_SIZE)
  train = input_pipeline.training_batches(trained['train'], BATCH_SIZE, seed, 0, epochs)
  _fit(model, plan, train, input_pipeline.batches(trained['dev'], BATCH_SIZE), epochs, steps,
       None if teacher_dir else distill_alpha)
  train_seconds = time.time() - start
  keras_test = model.evaluate(input_pipeline.batches(trained['test'], BATCH_SIZE), verbose=0)[1]
  shipped = export.fold_projection(model) if plan.rank else model
  if plan.kind == 'int4_embeddings':
    shipped = _trained_for_int4(shipped, trained, steps, seed, loss)
  flatbuffer = export.to_tflite(shipped, plan.kind, batch_size=1)
  with io_utils.atomic_path(os.path.join(run_dir, 'model.tflite')) as tmp:
    with open(tmp, 'wb') as f:
      f.write(flatbuffer)
  runner = export.TfliteRunner(flatbuffer)
  accuracy = {name: _accuracy(runner.predict(ids), labels)
              for name, (ids, labels) in ((n, _sequences(encoded[n])) for n in ('dev', 'test'))}
  return {'plan': plan.name, **dataclasses.asdict(plan), 'seed': seed, 'dataset': data.name, 'epochs': epochs,
          'dropout': DROPOUT[data.name] if dropout is None else dropout, 'distill_alpha': distill_alpha,
          'teacher': None if teacher_dir is None else os.path.basename(os.path.normpath(teacher_dir)),
          'dev_accuracy': accuracy['dev'], 'test_accuracy': accuracy['test'], 'keras_test_accuracy': float(keras_test),
          'predicted_bytes': budget.predict_parts(shipped, plan.kind, vocabulary_file_bytes),
          'measured_bytes': budget.measure_parts(flatbuffer, shipped, plan.kind, vocabulary_file_bytes),
          'tflite_bytes': len(flatbuffer), 'vocabulary_bytes': vocabulary_file_bytes,
          'deployable_bytes': len(flatbuffer) + vocabulary_file_bytes, 'train_seconds': round(train_seconds, 1),
          'seconds': round(time.time() - start, 1)}
