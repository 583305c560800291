"""The byte budget: parsing, the size model against exported files, vocabulary files, the planner's refusals, and
budget runs end to end on a user's model and on the study's data (tiny)."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

import lmf_tf

from lmf_tf.compression import sizes
from lmf_tf.errors import ConfigError


@pytest.mark.parametrize('text, expected', [('90KB', 90_000), ('1MB', 1_000_000), ('20000', 20_000),
                                            (' 1.5 mb ', 1_500_000), (45_000, 45_000), ('300kb', 300_000)])
def test_parse_budget(text, expected):
  assert sizes.parse_budget(text) == expected


@pytest.mark.parametrize('text', ['90KiB', 'ninety', '-5KB', '0', '', True, '1e5', '90 K'])
def test_parse_budget_refuses_with_the_argument(text):
  with pytest.raises(ConfigError, match='budget_bytes='):
    sizes.parse_budget(text)


def test_vocabulary_file_round_trip_and_size(tmp_path):
  words = [f'word{i}' for i in range(500)] + ['ünïcode', 'a']
  path = tmp_path / 'v.xz'
  order = sizes.write_vocabulary(words, str(path))
  assert order == sorted(words) and sizes.read_vocabulary(str(path)) == order
  assert os.path.getsize(path) == sizes.vocabulary_bytes(words) < len(sizes.vocabulary_text(words)) / 3
  with pytest.raises(ConfigError, match='distinct'):
    sizes.write_vocabulary(['a', 'a'], str(tmp_path / 'w.xz'))
  (tmp_path / 'bad.xz').write_text('plain text')
  with pytest.raises(ConfigError, match='bad.xz'):
    sizes.read_vocabulary(str(tmp_path / 'bad.xz'))


def _bag(keras, words, width, hidden, classes):
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(words, width, mask_zero=True)(ids))
  if hidden:
    x = keras.layers.Dense(hidden, activation='relu')(x)
  return keras.Model(ids, keras.layers.Dense(classes, activation='softmax')(x))


def _bilstm(keras, words, width, units, classes):
  """Shaped like examples/own_model.py: Embedding -> Bidirectional(LSTM) -> Dropout -> softmax."""
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.Bidirectional(keras.layers.LSTM(units))(keras.layers.Embedding(words, width, mask_zero=True)(ids))
  return keras.Model(ids, keras.layers.Dense(classes, activation='softmax')(keras.layers.Dropout(0.3)(x)))


@pytest.mark.parametrize('build, args, kind', [
    (_bag, (1500, 8, 64, 150), 'int8'),      # embedding, hidden and output, int8 and float32 kept small tensors
    (_bag, (800, 16, 0, 2), 'float16'),
    (_bilstm, (2000, 16, 32, 2), 'int8'),    # recurrent (two LSTM loops)
])
def test_size_model_matches_the_exported_file(build, args, kind):
  """Each weight's predicted bytes is a buffer of the file (parts exact); the whole file within the tolerance."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import export  # pylint: disable=g-import-not-at-top
  model = build(keras, *args)
  rng = np.random.default_rng(0)
  model.set_weights([rng.uniform(0.5, 1.0, w.shape).astype('float32') for w in model.get_weights()])
  flatbuffer = export.to_tflite(model, kind)
  predicted, measured = sizes.predict_parts(model, kind, 1234), sizes.measure_parts(flatbuffer, model, kind, 1234)
  for part in ('embedding', 'recurrent', 'hidden', 'output', 'vocabulary'):
    assert predicted[part] == measured[part], part
  assert predicted['embedding'] == args[0] * args[1] * {'int8': 1, 'float16': 2, 'float32': 4}[kind]
  assert (predicted['recurrent'] > 0) == (build is _bilstm)
  relative, absolute = sizes.PREDICTION_TOLERANCE
  assert abs(predicted['total'] - measured['total']) <= max(relative * measured['total'], absolute)
  assert measured['total'] == len(flatbuffer) + 1234


def _user_model(keras, vocab_size, width=32):
  model = _bilstm(keras, vocab_size, width, 8, 2)
  model.compile(keras.optimizers.Adam(3e-3), 'sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


def test_plan_takes_the_largest_rank_that_fits_and_refuses_below_the_smallest():
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  model = _user_model(keras, 3000, width=16)
  plan = budget.plan_for_budget(model, '60KB', vocabulary_bytes=5_000)
  assert plan.rank is not None and plan.words is None and plan.predicted['total'] <= 60_000
  # The planner's probe-rank arithmetic agrees with a real compressed, folded copy at that rank and the next.
  assert plan.predicted == budget.predicted_bytes(model, plan.rank, 'int8', 5_000)
  higher = min(r for r in budget.RANKS if r > plan.rank)
  assert budget.predicted_bytes(model, higher, 'int8', 5_000)['total'] > 60_000
  assert budget.plan_for_budget(model, '1MB', vocabulary_bytes=5_000).rank is None  # it fits as it is
  with pytest.raises(ConfigError, match=r'budget_bytes=5,000\): below the smallest plan .* \d[\d,]+ bytes \(rank 1'):
    budget.plan_for_budget(model, 5_000, vocabulary_bytes=100)
  with pytest.raises(ConfigError, match='vocabulary='):
    budget.fit_budget(model, np.zeros((4, 3), 'int32'), budget_bytes='1MB', y=np.zeros(4))
  with pytest.raises(ConfigError, match=r'vocabulary=...\): 10 words and 2 reserved ids make 12 rows'):
    budget.plan_for_budget(model, '60KB', vocabulary=[f'w{i}' for i in range(10)])


def test_plan_keeps_the_most_frequent_words_when_the_vocabulary_does_not_fit():
  """With the words given, a tight budget keeps fewer of them; the predicted bytes are those of the shipped copy."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  letters = np.array(list('abcdefghijklmnopqrstuvwxyz'))
  words = sorted({''.join(rng.choice(letters, rng.integers(4, 10))) for _ in range(21_000)})[:20_000]
  model = _user_model(keras, 20_002, width=32)  # random words: about 5 bytes each in the compressed file
  plan = budget.plan_for_budget(model, '80KB', vocabulary=words)
  assert plan.words < 20_000 and plan.vocabulary_embedding == model.layers[1].name
  assert plan.predicted['vocabulary'] == sizes.vocabulary_bytes(words[:plan.words])
  shipped = budget.keep_rows(budget._shipped_copy(model, plan.rank, None), plan.vocabulary_embedding,  # pylint: disable=protected-access
                             np.arange(plan.words + 2))
  assert sizes.predict_parts(shipped, 'int8', plan.predicted['vocabulary']) == plan.predicted


def _deep_bag(keras, vocab_size):
  """A bag of embeddings with two wide hidden layers, whose matrices are most of its bytes."""
  model = keras.Sequential([keras.Input((None,), dtype='int32'), keras.layers.Embedding(vocab_size, 32, mask_zero=True),
                            keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(128, activation='relu'),
                            keras.layers.Dense(128, activation='relu'), keras.layers.Dense(2, activation='softmax')])
  model.compile(keras.optimizers.Adam(3e-3), 'sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


def test_plan_factorizes_the_matrices_where_their_bytes_buy_more_words():
  """kernels=LowRankKernels: the 128 x 128 matrix factorized frees bytes for words; each plan is sized as the copy
  it ships (the folded factor made whole where smaller); a budget too small for either is refused naming both."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  _, _, words = _separable_task()
  model = _deep_bag(keras, 3000)
  whole = budget.plan_for_budget(model, '40KB', vocabulary=words)
  factorized = budget.plan_for_budget(model, '40KB', vocabulary=words, kernels=lmf_tf.LowRankKernels(rank=8))
  assert whole.kernels is None and factorized.kernels == lmf_tf.LowRankKernels(rank=8)
  assert factorized.words * min(factorized.rank or 32, 16) > whole.words * min(whole.rank or 32, 16)
  assert 'dense and LSTM matrices at rank 8' in factorized.describe()
  shipped = budget.keep_rows(budget._shipped_copy(model, factorized.rank, None, factorized.kernels),  # pylint: disable=protected-access
                             factorized.vocabulary_embedding, np.arange(factorized.words + 2))
  assert sizes.predict_parts(shipped, 'int8', factorized.predicted['vocabulary']) == factorized.predicted
  assert factorized.predicted['hidden'] < whole.predicted['hidden'] / 3
  exported = budget._exported_bytes(model, factorized, None)  # pylint: disable=protected-access
  relative, absolute = sizes.PREDICTION_TOLERANCE
  assert abs(exported - factorized.predicted['total']) <= max(relative * exported, absolute)
  two = budget.ranked_plans(model, '40KB', 40, vocabulary=words, kernels=lmf_tf.LowRankKernels(rank=8))
  assert {p.kernels is None for p in two} == {True, False}  # candidates of both forms
  with pytest.raises(ConfigError, match=r'fit_budget\(kernels=16\): give a lmf_tf.LowRankKernels'):
    budget.plan_for_budget(model, '40KB', vocabulary=words, kernels=16)


@pytest.mark.slow  # a whole fit_budget run; the plan is tested fast above, fit_budget end to end below
def test_fit_budget_with_factorized_matrices_end_to_end():
  """A user's deep bag shipped within a budget its whole matrices do not leave room in: the swap factorizes the
  embedding and the hidden matrices, the file is within the budget and LiteRT agrees with Keras."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  ids, labels, words = _separable_task()
  model = _deep_bag(keras, 3000)
  result = budget.fit_budget(model, ids[:384], labels[:384], budget_bytes='30KB', epochs=4, batch_size=32,
                             validation_data=(ids[384:], labels[384:]), vocabulary=words,
                             kernels=lmf_tf.LowRankKernels(rank=8), verbose=0)
  assert result.plan.kernels is not None
  factorized = [l for l in model.layers if isinstance(l, lmf_tf.layers.CompressibleDense) and l.is_compressed]
  assert [l.rank for l in factorized] == [8] * len(factorized) and factorized
  assert result.measured['total'] <= 30_000
  assert result.litert_accuracy > 0.6 and abs(result.litert_accuracy - result.keras_accuracy) <= 0.02


def test_planner_refuses_a_model_it_cannot_read():
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top

  class Subclassed(keras.Model):
    def __init__(self):
      super().__init__()
      self.words = keras.layers.Embedding(100, 8)
      self.out = keras.layers.Dense(2)

    def call(self, ids):
      return self.out(keras.ops.mean(self.words(ids), axis=1))

  model = Subclassed()
  model(np.zeros((1, 3), 'int32'))
  with pytest.raises(ConfigError, match=r"cannot read model '\w+' to plan its size \(\w+(\)|: \S)"):  # no empty ': )'
    budget.plan_for_budget(model, '10KB')
  texts = keras.Input((1,), dtype='string')  # strings in: the integer model behind the tokenizer is what fits
  vectorize = keras.layers.TextVectorization(vocabulary=['a', 'b'])
  strings = keras.Model(texts, keras.layers.Dense(2)(keras.layers.Embedding(4, 8)(vectorize(texts))))
  with pytest.raises(ConfigError, match=r"^fit_budget: model '.*' takes strings; give it the integer model"):
    budget.fit_budget(strings, np.array([['a b']]), np.array([0]), budget_bytes='10KB', vocabulary_bytes=0)


def _separable_task(n=512, vocab_size=3000, length=6):
  """Ids where one of 49 frequent words marks the positive class; and the vocabulary of ids 2 .. vocab_size - 1
  (0 pads, 1 is out of the vocabulary)."""
  rng = np.random.default_rng(0)
  ids = rng.integers(50, vocab_size, (n, length)).astype('int32')
  labels = rng.integers(0, 2, n)
  ids[labels == 1, rng.integers(0, length)] = rng.integers(1, 50, int(labels.sum()))
  return ids, labels, [f'w{i}' for i in range(vocab_size - 2)]


def test_fit_budget_end_to_end_on_a_user_model():
  """A tiny BiLSTM built as a user builds one: planned, trained with the swap, shipped, run by LiteRT, within."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  ids, labels, words = _separable_task()
  model = _user_model(keras, 3000)
  best_epoch = keras.callbacks.EarlyStopping('val_accuracy', mode='max', patience=4, restore_best_weights=True,
                                             start_from_epoch=2)  # from the swap on (docs/budget.md)
  result = budget.fit_budget(model, ids[:384], labels[:384], budget_bytes='45KB', epochs=4, batch_size=32,
                             validation_data=(ids[384:], labels[384:]), vocabulary=words, callbacks=[best_epoch],
                             verbose=0)
  assert result.plan.rank is not None and result.plan.rank < 32 and result.model is model
  assert result.vocabulary == sorted(words[:result.plan.words])  # the file's order, which the shipped ids follow
  assert result.measured['total'] <= 45_000 and result.measured['total'] == len(result.flatbuffer) + \
      sizes.vocabulary_bytes(result.vocabulary)
  assert result.litert_accuracy > 0.6 and abs(result.litert_accuracy - result.keras_accuracy) <= 0.02
  dev_ids = result.model_ids(ids[384:])  # the Keras model's ids: the words not kept read as 1
  assert (dev_ids[ids[384:] >= result.plan.words + 2] == 1).all()
  assert np.mean(result.model.predict(dev_ids, verbose=0).argmax(-1) == labels[384:]) == result.keras_accuracy
  assert 'within' in result.table()


def _compiled_bag():
  """A user's bag of embeddings over 3,000 ids, compiled."""
  import keras  # pylint: disable=g-import-not-at-top
  model = keras.Sequential([keras.Input((None,), dtype='int32'), keras.layers.Embedding(3000, 32, mask_zero=True),
                            keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation='softmax')])
  model.compile(keras.optimizers.Adam(3e-3), 'sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


@pytest.mark.slow  # several plans trained; fit_budget end to end stays fast
def test_fit_budget_trains_candidates_and_ships_the_best_on_validation_data():
  """candidates=2 on a bag of embeddings: the user's model and a clone from its initial weights, each shipped."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  ids, labels, words = _separable_task()
  model = _compiled_bag()
  with pytest.raises(ConfigError, match=r'^fit_budget\(candidates=2\): choosing among plans needs validation_data'):
    budget.fit_budget(model, ids, labels, budget_bytes='30KB', vocabulary=words, candidates=2)
  result = budget.fit_budget(model, ids[:384], labels[:384], budget_bytes='30KB', epochs=2, batch_size=32,
                             validation_data=(ids[384:], labels[384:]), vocabulary=words, candidates=2, verbose=0)
  first, second = result.candidates
  assert first.model is model and second.model is not model and first.plan.rank != second.plan.rank
  assert result.accuracy == max(first.accuracy, second.accuracy) and result.model in (first.model, second.model)
  assert all(c.measured['total'] <= 30_000 and c.litert_accuracy is not None for c in result.candidates)


@pytest.mark.slow  # two plans trained (as the other candidates test)
def test_fit_budget_chooses_between_int8_and_int4_tables_on_validation_data():
  """kind=('int8', 'int4_embeddings'): a plan of each kind trained, the int4 one keeping more words or rank at the
  same budget and shipping its table packed, both within the budget; the more accurate on validation ships."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget, sizes  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  ids, labels, words = _separable_task()
  model = _compiled_bag()
  for kind, message in ((('int8', 'int8'), r"kind=\('int8', 'int8'\)\): give one of"), ('int3', 'give one of'),
                        (('int8', 'int4_embeddings'), 'choosing among kinds needs validation_data')):
    with pytest.raises(ConfigError, match=message):
      budget.fit_budget(model, ids, labels, budget_bytes='30KB', vocabulary=words, kind=kind)
  result = budget.fit_budget(model, ids[:384], labels[:384], budget_bytes='30KB', epochs=2, batch_size=32,
                             validation_data=(ids[384:], labels[384:]), vocabulary=words,
                             kind=('int8', 'int4_embeddings'), verbose=0)
  int8, int4 = result.candidates
  assert (int8.plan.kind, int4.plan.kind) == ('int8', 'int4_embeddings')
  assert int4.plan.words * int4.plan.rank > int8.plan.words * int8.plan.rank
  assert all(r.measured['total'] <= 30_000 and r.litert_accuracy is not None for r in result.candidates)
  assert result.accuracy == max(r.accuracy for r in result.candidates)
  assert result.plan in (int8.plan, int4.plan) and result.flatbuffer in (int8.flatbuffer, int4.flatbuffer)
  rows = int4.plan.words + 2
  assert rows * ((int4.plan.rank + 1) // 2) in [size for _, size in sizes.constant_tensor_bytes(int4.flatbuffer)]


def test_fit_budget_on_hashed_ids_ships_no_vocabulary_and_chooses_the_buckets():
  """Ids that are hashed words (`HashedIds`): the plan keeps fewer buckets, ids fold into them, no file ships."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  ids, labels, _ = _separable_task()  # as if hashed: 2 + hash % 2998 (the positive words among the first 50)
  model = _compiled_bag()
  result = budget.fit_budget(model, ids[:384], labels[:384], budget_bytes='16KB', epochs=4, batch_size=32,
                             validation_data=(ids[384:], labels[384:]), vocabulary=budget.HashedIds(), verbose=0)
  buckets = result.plan.words
  assert result.plan.hashed and buckets < 2998 and result.vocabulary is None and 'hashed into' in result.plan.describe()
  assert result.measured['vocabulary'] == 0 and result.measured['total'] == len(result.flatbuffer) <= 16_000
  folded = result.model_ids(ids)
  assert (folded[ids >= 2] == 2 + (ids[ids >= 2] - 2) % buckets).all() and (folded[ids < 2] == ids[ids < 2]).all()
  assert result.litert_accuracy > 0.6 and abs(result.litert_accuracy - result.keras_accuracy) <= 0.02


@pytest.mark.slow  # two models trained, a teacher and fit_budget
def test_fit_budget_distils_from_the_users_teacher():
  """distillation=Distillation(alpha=0, teacher=...): the plan learns the teacher's answers, not the labels (the
  teacher here was trained on the flipped labels); a teacher of other outputs, or with hashed ids, is refused."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression.distillation import Distillation  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  ids, labels, words = _separable_task()

  def bag(classes=2):
    model = _bag(keras, 3000, 32, 0, classes)
    model.compile(keras.optimizers.Adam(3e-3), 'sparse_categorical_crossentropy', metrics=['accuracy'])
    return model
  teacher = bag()
  teacher.fit(ids[:384], 1 - labels[:384], epochs=8, batch_size=32, verbose=0)  # 0.71 of dev's flipped labels
  with pytest.raises(ConfigError, match=r'^fit_budget\(distillation=...\): the teacher .* outputs 3 classes'):
    budget.fit_budget(bag(), ids, labels, budget_bytes='30KB', vocabulary=words,
                      distillation=Distillation(teacher=bag(3)))
  logits_teacher = _bag(keras, 3000, 32, 0, 2)
  logits_teacher.compile('adam', keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  with pytest.raises(ConfigError, match='read their outputs differently'):
    budget.fit_budget(bag(), ids, labels, budget_bytes='30KB', vocabulary=words,
                      distillation=Distillation(teacher=logits_teacher))
  with pytest.raises(ConfigError, match='HashedIds'):
    budget.fit_budget(bag(), ids, labels, budget_bytes='30KB', vocabulary=budget.HashedIds(),
                      distillation=Distillation(teacher=teacher))
  result = budget.fit_budget(bag(), ids[:384], labels[:384], budget_bytes='30KB', epochs=4, batch_size=32,
                             validation_data=(ids[384:], labels[384:]), vocabulary=words, verbose=0,
                             distillation=Distillation(alpha=0.0, temperature=1.0, teacher=teacher))
  # It learned the teacher's flipped answers: below chance on the labels (with alpha=1.0, the labels: 0.71), and
  # the teacher's answers on the ids it was shown (words not kept read as oov, for the teacher too) where with
  # alpha=0 and no term, as when the term was zero, nothing trains and they agree on about half.
  seen = result.model_ids(ids[:384])
  agreement = np.mean(result.model.predict(seen, verbose=0).argmax(-1) == teacher.predict(seen, verbose=0).argmax(-1))
  assert result.measured['total'] <= 30_000 and result.litert_accuracy < 0.5 and agreement >= 0.8
  with pytest.raises(ConfigError, match='the teacher is the model being fitted'):
    student = bag()
    budget.fit_budget(student, ids, labels, budget_bytes='30KB', vocabulary=words,
                      distillation=Distillation(teacher=student))
  assert 'compute_loss' not in vars(result.model)  # the term is gone after fit_budget


@pytest.mark.slow  # each case starts TensorFlow in a subprocess; the parsers are checked in-process above
@pytest.mark.parametrize('flags, message, code', [
    ('--budget=90KiB', '--budget=', 1), ('--plan=lstm-w10', '--plan=', 1),
    ('--plan=bag-w10-k8-u0-int8 --vocabulary=hashed', '--vocabulary chooses', 2)])  # 2: flags that do not go together
def test_budget_script_refuses_bad_flags_in_one_line(repo_root, tmp_path, flags, message, code):
  done = subprocess.run([sys.executable, os.path.join(repo_root, 'scripts', 'budget.py'), *flags.split(),
                         f'--results_dir={tmp_path}/r'], capture_output=True, text=True, timeout=60, cwd=tmp_path)
  assert done.returncode == code and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
  assert not os.path.exists(tmp_path / 'r')


def test_study_plans_fit_their_budget_and_the_smallest_is_refused():
  from lmf_tf.text import budget_plans  # pylint: disable=g-import-not-at-top
  vocabulary_bytes = lambda words: 3 * words  # pylint: disable=unnecessary-lambda-assignment
  plans = budget_plans.candidate_plans(45_000, 2, 10_000, vocabulary_bytes)
  assert plans and all(budget_plans.predicted_bytes(p, 2, vocabulary_bytes)['total'] <= 45_000 for p in plans)
  chosen = budget_plans.choose_candidates(plans)
  assert 1 <= len(chosen) <= len(budget_plans.CANDIDATE_GROUPS) and len({p.architecture for p in chosen}) == 2
  smallest = budget_plans.smallest_plan_bytes(2, vocabulary_bytes)
  with pytest.raises(ConfigError, match=f'--budget_bytes={smallest - 1:,} bytes is below the smallest plan'):
    budget_plans.check_budget(smallest - 1, 2, vocabulary_bytes)


@pytest.mark.parametrize('name', ['bag-w1000-k8-u0-int8', 'bag-w3000-k16-u64-float16', 'lstm-w2000-k12-u32-int8',
                                  'lstm-w500-k50-u150-float32'])
def test_study_plan_bytes_equal_the_size_model_of_its_keras_model(name):
  """The study's plans are sized from their shapes; the same as `predict_parts` of the built classifier."""
  from lmf_tf.text import budget_plans, budget_search  # pylint: disable=g-import-not-at-top
  plan = budget_search.plan_from_name(name)
  vocabulary_bytes = lambda words: 3 * words  # pylint: disable=unnecessary-lambda-assignment
  assert budget_plans.predicted_bytes(plan, 150, vocabulary_bytes) == sizes.predict_parts(
      budget_plans.build_classifier(plan, 150), plan.kind, 3 * plan.words)
  assert budget_search.plan_from_name(plan.name) == plan
  expected = r"^--plan='lstm-w10': expected <bag\|lstm>-<w<words>\[o<oov buckets>\]\|h<hash"
  with pytest.raises(ConfigError, match=expected):
    budget_search.plan_from_name('lstm-w10')


@pytest.mark.parametrize('name, smaller', [
    ('bag-w1000-k10-u64-r16-int8', True), ('lstm-w2000-k16-u64-r16-int8', True),
    ('lstm-w500-k50-u150-r16-float32', True),
    # 32 x 150 stays factorized; its 32 x 16 factor has fewer than 1,024 elements and ships float32: larger.
    ('bag-w1000-k32-u0-r16-int8', False)])
def test_study_plans_with_factorized_matrices_are_sized_as_the_model_they_ship(name, smaller):
  """A plan with a kernel rank: its shapes are those of the classifier trained at the full width, swapped
  (embedding and matrices, `LowRankKernels`' default) and folded (`fold_projection`, which makes a folded matrix whole
  where that is smaller)."""
  from lmf_tf.compression import kernels  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import budget_plans, budget_search  # pylint: disable=g-import-not-at-top
  plan = budget_search.plan_from_name(name)
  assert budget_search.plan_from_name(plan.name) == plan and plan.kernel_rank == 16
  model = budget_plans.build_classifier(plan, 150, width=budget_plans.FULL_WIDTH)
  if plan.rank:
    lmf_tf.compress_model(model, rank=plan.rank, layers=['words'])
  kernels.factorize_kernels(model, kernels.select_kernels(model, lmf_tf.LowRankKernels(rank=plan.kernel_rank)))
  shipped = lmf_tf.fold_projection(model) if plan.rank else model
  vocabulary_bytes = lambda words: 3 * words  # pylint: disable=unnecessary-lambda-assignment
  assert budget_plans.predicted_bytes(plan, 150, vocabulary_bytes) == sizes.predict_parts(shipped, plan.kind,
                                                                                           3 * plan.words)
  whole = budget_plans.predicted_bytes(dataclasses.replace(plan, kernel_rank=None), 150, vocabulary_bytes)
  assert (budget_plans.predicted_bytes(plan, 150, vocabulary_bytes)['total'] < whole['total']) == smaller


def test_hashed_study_plans_ship_no_vocabulary_and_spend_its_bytes_on_buckets():
  from lmf_tf.text import budget_plans, budget_search  # pylint: disable=g-import-not-at-top
  vocabulary_bytes = lambda words: 3 * words  # pylint: disable=unnecessary-lambda-assignment
  plan = budget_search.plan_from_name('bag-h1000-k8-u64-int8')
  assert plan.hashed and plan.words == 1000 and budget_search.plan_from_name(plan.name) == plan
  parts = budget_plans.predicted_bytes(plan, 150, vocabulary_bytes)
  assert parts['vocabulary'] == 0 and parts == {**budget_plans.predicted_bytes(
      dataclasses.replace(plan, hashed=False), 150, vocabulary_bytes), 'vocabulary': 0, 'total': parts['total']}
  key = lambda p: (p.architecture, p.rank, p.units, p.kernel_rank)  # pylint: disable=unnecessary-lambda-assignment
  by_words = {key(p): p for p in budget_plans.candidate_plans(20_000, 2, 10_000, vocabulary_bytes)}
  hashed = budget_plans.candidate_plans(20_000, 2, 10_000, vocabulary_bytes, hashed=True)
  assert hashed and all(p.hashed for p in hashed)
  pairs = [(p, by_words[key(p)]) for p in hashed if key(p) in by_words]
  assert len(pairs) >= len(by_words) and all(h.words >= w.words for h, w in pairs)
  assert sum(h.words > w.words for h, w in pairs) >= len(pairs) // 2  # the file's bytes buy buckets (in steps of 250)
  smallest = budget_plans.smallest_plan_bytes(2, vocabulary_bytes, hashed=True)
  assert smallest == budget_plans.smallest_plan_bytes(2, vocabulary_bytes) - vocabulary_bytes(250)
  with pytest.raises(ConfigError, match=r'below the smallest plan .*250 hash buckets at rank 8, int8\)$'):
    budget_plans.check_budget(smallest - 1, 2, vocabulary_bytes, hashed=True)
  with pytest.raises(ConfigError, match='--teacher=bag-h1000-k8-u64-int8: a teacher ships a vocabulary file'):
    budget_search.Trial(distill_alpha=0.5, teacher=plan.name)


def test_hashed_vocabulary_reads_every_word_into_a_bucket_named_by_its_most_frequent_word():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import input_pipeline  # pylint: disable=g-import-not-at-top
  words = ['the', 'a', 'film', 'good', 'bad', 'movie', 'plot', 'dull']
  vocabulary = input_pipeline.HashedVocabulary(words, 5)
  assert len(vocabulary) == 7 and vocabulary.tokens[:2] == ['<pad>', '<unk>']
  buckets = tf.strings.to_hash_bucket_fast(words, 5).numpy()
  assert vocabulary.tokens[2 + buckets[0]] == 'the'  # the most frequent word of its bucket names it
  for word, bucket in zip(words, buckets):
    owner = vocabulary.tokens[2 + bucket]
    assert owner == word or words.index(owner) < words.index(word)
  ids = vocabulary.encode(tf.constant(['The film', 'an unseen word']))
  assert ids.to_list()[0] == [2 + buckets[0], 2 + buckets[2]]
  assert all(2 <= i < 7 for i in ids.flat_values.numpy())  # no word is out of vocabulary
  with pytest.raises(ConfigError, match=r'HashedVocabulary\(buckets=0\)'):
    input_pipeline.HashedVocabulary(words, 0)


def test_out_of_vocabulary_buckets_hash_the_words_not_kept_into_rows_after_the_kept_words():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import budget_plans, budget_search, input_pipeline  # pylint: disable=g-import-not-at-top
  vocabulary = input_pipeline.Vocabulary(['<pad>', '<unk>', 'good', 'bad'], oov_buckets=3)
  assert len(vocabulary) == 7
  unseen = 4 + tf.strings.to_hash_bucket_fast(['dull', 'mesmerizing'], 3).numpy()
  assert vocabulary.encode(tf.constant(['good dull', 'mesmerizing'])).to_list() == [[2, unseen[0]], [unseen[1]]]
  plain = input_pipeline.Vocabulary(['<pad>', '<unk>', 'good', 'bad'])
  assert plain.encode(tf.constant(['good dull'])).to_list() == [[2, 1]]
  plan = budget_search.plan_from_name('bag-w1000o64-k8-u32-int8')
  assert (plan.words, plan.oov_buckets, plan.rows) == (1000, 64, 1066)
  assert budget_search.plan_from_name(plan.name) == plan
  vocabulary_bytes = lambda words: 3 * words  # pylint: disable=unnecessary-lambda-assignment
  parts = budget_plans.predicted_bytes(plan, 2, vocabulary_bytes)
  assert parts['embedding'] == 1066 * 8 and parts['vocabulary'] == 3000
  assert parts == sizes.predict_parts(budget_plans.build_classifier(plan, 2), 'int8', 3000)
  with pytest.raises(ConfigError, match=r"--plan='bag-h10o5-k8-u0-int8': a plan whose words are all hashed"):
    budget_search.plan_from_name('bag-h10o5-k8-u0-int8')
  for zero in ('bag-h0-k8-u0-int8', 'bag-w1000o0-k8-u0-int8', 'bag-w0-k8-u0-int8'):
    with pytest.raises(ConfigError, match=f"--plan='{zero}': words, hash buckets, out-of-vocabulary buckets"):
      budget_search.plan_from_name(zero)
  with pytest.raises(ConfigError, match=r'--teacher=bag-w1000o64-k8-u32-int8: a teacher ships a vocabulary file'):
    budget_search.Trial(distill_alpha=0.5, teacher=plan.name)


@pytest.mark.slow  # three study plans trained; their sizes are tested fast
def test_study_plan_trains_ships_and_measures(tiny_data_source, shared_tfds, tmp_path, monkeypatch):
  """One study plan on the tiny data set: trained with the swap, the shipped files measured and run by LiteRT."""
  from lmf_tf.text import budget_search, budget_training  # pylint: disable=g-import-not-at-top
  data = budget_training.load_data('sst2', str(tiny_data_source), shared_tfds)
  plan = budget_search.plan_from_name('bag-w20-k4-u8-int8')
  run = budget_search.train_and_record(plan, data, 1, str(tmp_path / 'runs'), str(tmp_path / 'ck'))
  assert run['deployable_bytes'] == os.path.getsize(tmp_path / 'ck' / 'sst2_bag-w20-k4-u8-int8_seed1' / 'model.tflite') \
      + os.path.getsize(tmp_path / 'ck' / 'sst2_bag-w20-k4-u8-int8_seed1' / 'vocabulary.xz')
  assert run['measured_bytes']['embedding'] == 22 * 4 * 4  # 20 words + pad + unk, rank 4, float32 (< 1,024)
  assert 0 <= run['test_accuracy'] <= 1 and abs(run['test_accuracy'] - run['keras_test_accuracy']) <= 1 / 12
  assert budget_search.read_run(str(tmp_path / 'runs'), 'sst2', plan, 1) == run
  # Distilled from that plan's shipped files: its soft targets mix the labels and the file's probabilities.
  targets = budget_training.teacher_targets(data, str(tmp_path / 'ck' / 'sst2_bag-w20-k4-u8-int8_seed1'), 0.5)
  assert targets.shape[1] == data.num_classes and np.allclose(targets.sum(axis=1), 1, atol=1e-5)
  assert (targets.max(axis=1) >= 0.5).all()
  # A student whose words are hashed into 10 buckets, distilled from it: it ships no vocabulary file.
  trial = budget_search.Trial(distill_alpha=0.5, teacher=plan.name)
  student = budget_search.plan_from_name('bag-h10-k4-u0-int8')
  distilled = budget_search.train_and_record(student, data, 2, str(tmp_path / 'runs'), str(tmp_path / 'ck'), trial)
  assert distilled['teacher'] == 'sst2_bag-w20-k4-u8-int8_seed1' and distilled['distill_alpha'] == 0.5
  assert os.path.exists(tmp_path / 'runs' / 'sst2_bag-h10-k4-u0-int8_kd0.5_from-bag-w20-k4-u8-int8_seed2.json')
  shipped = tmp_path / 'ck' / 'sst2_bag-h10-k4-u0-int8_kd0.5_from-bag-w20-k4-u8-int8_seed2'
  assert sorted(os.listdir(shipped)) == ['model.tflite'] and distilled['vocabulary_bytes'] == 0
  assert distilled['deployable_bytes'] == os.path.getsize(shipped / 'model.tflite')
  assert distilled['measured_bytes']['embedding'] == 12 * 4 * 4 and 0 <= distilled['test_accuracy'] <= 1
  with pytest.raises(ConfigError, match=r"teacher .*model.tflite.* not found; train the teacher plan's seed 1 into"):
    budget_training.teacher_targets(data, str(tmp_path / 'nowhere'), 0.5)
  # A clone has the teacher's JSON but not its files: they are trained again (seed 1, into its folder), the JSON
  # left as it was.
  teacher_json = budget_search.run_path(str(tmp_path / 'runs'), 'sst2', plan, 1)
  before = (os.path.getmtime(teacher_json), open(teacher_json).read())
  calls = []
  monkeypatch.setattr(budget_training, 'train_plan', lambda *args: calls.append(args) or {'trained': True})
  budget_search.ensure_teacher_files(data, trial, str(tmp_path / 'runs'), str(tmp_path / 'ck'))  # files there
  assert not calls
  os.remove(tmp_path / 'ck' / 'sst2_bag-w20-k4-u8-int8_seed1' / 'model.tflite')
  budget_search.ensure_teacher_files(data, trial, str(tmp_path / 'runs'), str(tmp_path / 'ck'))
  assert [(p, s, d) for p, _, s, d in calls] == [(plan, 1, str(tmp_path / 'ck' / 'sst2_bag-w20-k4-u8-int8_seed1'))]
  assert (os.path.getmtime(teacher_json), open(teacher_json).read()) == before


def test_the_search_adds_a_distilled_candidate_at_the_small_end_only(tmp_path):
  """Below DISTILL_BELOW_BYTES, once the candidates' seed-1 runs exist, the best on dev comes back distilled."""
  from lmf_tf import io_utils  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import budget_search  # pylint: disable=g-import-not-at-top
  plans = [budget_search.plan_from_name(n) for n in ('bag-w750-k12-u0-int8', 'bag-w500-k10-u32-int8')]
  assert budget_search.distilled_candidate(str(tmp_path), 'clinc150', 20_000, plans) is None  # not run yet
  for plan, dev in zip(plans, (0.80, 0.78)):
    io_utils.write_json_atomic(budget_search.run_path(str(tmp_path), 'clinc150', plan, 1),
                               {'dev_accuracy': dev, 'deployable_bytes': 19_000})
  distilled = budget_search.distilled_candidate(str(tmp_path), 'clinc150', 20_000, plans)
  assert distilled.plan == plans[0] and distilled.trial.teacher == budget_search.TEACHERS['clinc150']
  assert distilled.name == 'bag-w750-k12-u0-int8_kd0.5_from-' + budget_search.TEACHERS['clinc150']
  assert budget_search.distilled_candidate(str(tmp_path), 'clinc150', 90_000, plans) is None
  with pytest.raises(ConfigError, match='needs distill_alpha'):
    budget_search.Trial(teacher='bag-w750-k12-u0-int8')


def test_the_search_adds_the_int4_twin_of_the_best_plan_on_dev(tmp_path):
  """Each plan's int4 twin keeps its words at a higher rank within the budget; the search trains the best plan's."""
  from lmf_tf import io_utils  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import budget_plans, budget_search  # pylint: disable=g-import-not-at-top
  vocabulary_bytes = lambda words: 3 * words  # pylint: disable=unnecessary-lambda-assignment
  plans = [budget_search.plan_from_name(n) for n in ('bag-w2000-k10-u64-int8', 'lstm-w13825-k50-u150-int8')]
  twin = budget_plans.int4_twin(plans[0], 45_000, 150, vocabulary_bytes)
  assert (twin.words, twin.units, twin.kind) == (2000, 64, 'int4_embeddings') and twin.rank > plans[0].rank
  assert budget_plans.predicted_bytes(twin, 150, vocabulary_bytes)['total'] <= 45_000
  assert budget_plans.int4_twin(plans[1], 10 ** 7, 2, vocabulary_bytes) is None  # at the full width already
  space = budget_search.SearchSpace(tuple(plans), {plans[0].name: twin, plans[1].name: None})
  assert budget_search.int4_candidate(str(tmp_path), 'clinc150', space) is None  # not run yet
  for plan, dev in zip(plans, (0.86, 0.80)):
    io_utils.write_json_atomic(budget_search.run_path(str(tmp_path), 'clinc150', plan, 1),
                               {'dev_accuracy': dev, 'deployable_bytes': 44_000})
  assert budget_search.int4_candidate(str(tmp_path), 'clinc150', space).plan == twin
  names = [c.name for c in budget_search.budget_candidates(str(tmp_path), 'clinc150', 45_000, space)]
  assert names[:3] == [plans[0].name, plans[1].name, twin.name] and names[3].endswith(budget_search.TEACHERS['clinc150'])


@pytest.mark.slow  # exports a BiLSTM; the size model is tested fast per part
def test_the_plan_is_checked_on_an_exported_copy_before_training():
  """Layer names live in the file's operators; a model with long names gets a plan whose file fits all the same."""
  import keras  # pylint: disable=g-import-not-at-top
  from lmf_tf.compression import budget  # pylint: disable=g-import-not-at-top
  long = 'a_layer_name_as_long_as_a_notebook_makes_them_after_many_runs_'
  ids = keras.Input((None,), dtype='int32')
  x = keras.layers.Embedding(3000, 32, mask_zero=True, name=long + 'words')(ids)
  x = keras.layers.Bidirectional(keras.layers.LSTM(8, name=long + 'lstm'), name=long + 'bilstm')(x)
  model = keras.Model(ids, keras.layers.Dense(2, activation='softmax', name=long + 'out')(x))
  naive = budget.plan_for_budget(model, '60KB')
  (checked,) = budget._checked_plans(model, '60KB', None, 0, 'int8', None, 2)  # pylint: disable=protected-access
  copy = budget._shipped_copy(model, checked.rank, None)  # pylint: disable=protected-access
  copy.set_weights([np.full(w.shape, 0.7, w.dtype) for w in copy.get_weights()])
  from lmf_tf.compression import export  # pylint: disable=g-import-not-at-top
  assert len(export.to_tflite(copy, 'int8')) <= 60_000
  assert checked.rank <= naive.rank


def test_the_front_of_hashed_plans_is_written_beside_the_front_and_drawn_with_it(tmp_path, monkeypatch):
  """`make budget-front-hashed`: its rows, from the runs' JSON, go to budget_front_hashed.{csv,md}; the figure
  draws both fronts, whichever is written last."""
  from lmf_tf import io_utils  # pylint: disable=g-import-not-at-top
  from lmf_tf.harness import budget_front  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import budget_search  # pylint: disable=g-import-not-at-top
  frames = {}
  for name, dev in (('bag-w3000-k16-u64-int8', 0.88), ('bag-h3500-k16-u64-int8', 0.86)):
    plan = budget_search.plan_from_name(name)
    for seed in (1, 2, 3):
      io_utils.write_json_atomic(budget_search.run_path(str(tmp_path / 'runs'), 'clinc150', plan, seed), {
          'dev_accuracy': dev, 'test_accuracy': dev - 0.01 * seed, 'keras_test_accuracy': dev, 'seconds': 60.0,
          'deployable_bytes': 88_000, 'tflite_bytes': 88_000 - 6_000 * (not plan.hashed),
          'vocabulary_bytes': 6_000 * (not plan.hashed)})
    space = budget_search.SearchSpace((plan,), {plan.name: None})
    frames[plan.hashed] = budget_front.front_rows({('clinc150', 90_000): space}, (1, 2, 3), str(tmp_path / 'runs'))
  assert frames[True]['plan'].tolist() == ['bag-h3500-k16-u64-int8'] and frames[True]['test_mean'][0] == 84.0
  assert frames[True]['vocabulary_bytes'][0] == 0 and not frames[True]['met'][0]  # 84.0 < the target, 87.5
  from lmf_tf.harness import budget_figure  # pylint: disable=g-import-not-at-top
  drawn = []
  draw = budget_figure.draw
  monkeypatch.setattr(budget_figure, 'draw',
                      lambda *args, **kwargs: drawn.append((args, kwargs)) or draw(*args, **kwargs))
  budget_front.write_front(frames[True], str(tmp_path), hashed=True)
  assert drawn[0][0][0] is None and drawn[0][1]['hashed'] is frames[True]  # the hashed front alone so far
  paths = budget_front.write_front(frames[False], str(tmp_path))
  assert drawn[1][0][0] is frames[False] and list(drawn[1][1]['hashed']['plan']) == ['bag-h3500-k16-u64-int8']
  assert [os.path.basename(p) for p in paths] == ['budget_front.csv', 'budget_front.md', 'budget_front.png']
  assert budget_front.read_front(str(tmp_path), hashed=True)['plan'].tolist() == ['bag-h3500-k16-u64-int8']
  assert 'bag-h3500-k16-u64-int8' in open(tmp_path / 'budget_front_hashed.md').read()
  assert os.path.getsize(tmp_path / 'budget_front.png') > 10_000


def test_the_front_makes_each_small_end_teachers_files_once_in_its_own_process(monkeypatch):
  """Two distilled runs of one data set (20 and 45 KB) must not both train its teacher: the front does it first."""
  from lmf_tf.harness import budget_front  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import budget_search  # pylint: disable=g-import-not-at-top
  calls = []
  monkeypatch.setattr(budget_search, 'ensure_teacher_files', lambda data, trial, *dirs: calls.append((data, trial)))
  space = budget_search.SearchSpace((), {})
  candidates = {('clinc150', 20_000): space, ('clinc150', 45_000): space, ('clinc150', 90_000): space,
                ('sst2', 90_000): space}
  budget_front.ensure_teachers(candidates, {'clinc150': 'clinc data', 'sst2': 'sst data'}, 'runs', 'ck')
  assert [(d, t.teacher) for d, t in calls] == [('clinc data', budget_search.TEACHERS['clinc150'])]


def test_the_search_weighs_each_candidate_once_and_trains_the_choices_seeds(tmp_path, monkeypatch):
  """`budget_search.search` (scripts/budget.py --budget): seed 1 of every candidate, then the best plan's int4 twin,
  the choice on dev, the chosen one's seeds; each candidate said once. Training is faked: dev by the plan's rank."""
  import types  # pylint: disable=g-import-not-at-top
  from lmf_tf import io_utils  # pylint: disable=g-import-not-at-top
  from lmf_tf.text import budget_search  # pylint: disable=g-import-not-at-top

  def fake_train(plan, data, seed, results_dir, workdir, trial=budget_search.Trial()):
    run = {'dev_accuracy': (plan.rank or 50) / 100, 'deployable_bytes': 80_000, 'seconds': 1.0, 'seed': seed}
    io_utils.write_json_atomic(budget_search.run_path(results_dir, data.name, plan, seed, trial), run)
    return run
  monkeypatch.setattr(budget_search, 'train_and_record', fake_train)
  data = types.SimpleNamespace(name='clinc150', num_classes=150, vocabulary_bytes=lambda words: 3 * words,
                               words_by_frequency=np.arange(3000))
  said = []
  outcome = budget_search.search(data, 90_000, [1, 2], str(tmp_path), str(tmp_path / 'ck'), echo=said.append,
                                 hashed=True)
  space = budget_search.search_candidates(data, 90_000, hashed=True)
  assert len(said) == len(outcome.candidates) == len(space.plans) + 1  # the plans and the best one's int4 twin
  assert all(c.plan.hashed for c in outcome.candidates)
  assert outcome.plan.plan.rank == max(c.plan.rank or 50 for c in outcome.candidates)
  assert [r['seed'] for r in outcome.runs] == [1, 2]
