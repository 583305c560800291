"""lmf_tf.fit_budget on your own Keras model: a plain BiLSTM sentiment classifier on SST-2 sentences (Keras's
TextVectorization, nothing of lmf_tf's data code) shipped within a byte budget, vocabulary file included.

    python examples/budget_model.py                  # 90 KB, about a minute on 2 CPU cores
    python examples/budget_model.py --budget=60KB --output_dir=shipped   # keep model.tflite and vocabulary.xz
    python examples/budget_model.py --candidates=3   # train the best plans of 3 ranks, ship the best on dev
    python examples/budget_model.py --hashed         # words hashed into buckets: no vocabulary file ships
    python examples/budget_model.py --kinds=int8,int4_embeddings   # a plan of each kind, the best on dev shipped

Prints the plan, the bytes by part (predicted and measured) and the test accuracy of the shipped file run by LiteRT
beside the Keras model's (docs/budget.md has its output).
"""

import argparse
import csv
import os
import tempfile
import time

import keras
import numpy as np

import lmf_tf
import lmf_tf.budget  # noqa: F401  (lmf_tf.budget.write_vocabulary, read_vocabulary)

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'sst2')


def read_split(name):
  """SST-2 sentences and 0/1 labels from `data/sst2/<name>.tsv` (text<TAB>label)."""
  with open(os.path.join(DATA, f'{name}.tsv'), encoding='utf-8') as f:
    rows = list(csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))
  return [text for text, _ in rows], np.array([int(label) for _, label in rows])


def shipped_accuracy(runner, ids, labels):
  """Accuracy of the shipped file run by LiteRT, one sentence at a time without its padding (id 0)."""
  sequences = [row[row > 0] if (row > 0).any() else row[:1] for row in ids]
  return float(np.mean(runner.predict(sequences).argmax(-1) == labels))


def build_model(vocab_size):
  model = keras.Sequential([keras.Input((None,), dtype='int32'),
                            keras.layers.Embedding(vocab_size, 64, mask_zero=True, name='words'),
                            keras.layers.Bidirectional(keras.layers.LSTM(16)),
                            keras.layers.Dropout(0.3),
                            keras.layers.Dense(2, activation='softmax')])
  model.compile(keras.optimizers.Adam(2e-3), 'sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--budget', default='90KB', help='deployable bytes: TFLite file + vocabulary file')
  parser.add_argument('--epochs', type=int, default=6)
  parser.add_argument('--candidates', type=int, default=1, help='plans to train, the best on dev shipped')
  parser.add_argument('--kinds', default='int8', help='TFLite kinds to choose among on dev, comma-separated: '
                      'int8, int4_embeddings (4-bit embedding tables), float16, float32')
  parser.add_argument('--seed', type=int, default=1)
  parser.add_argument('--hashed', action='store_true', help='hash the words (tf.strings.to_hash_bucket_fast)')
  parser.add_argument('--output_dir', help='keep model.tflite and vocabulary.xz here (default: a temporary folder)')
  args = parser.parse_args()
  keras.utils.set_random_seed(args.seed)
  splits = [read_split(s) for s in ('train', 'dev', 'test')]
  (with_hashed_words if args.hashed else with_a_vocabulary)(args, splits)


def with_hashed_words(args, splits):
  """Ids 2 + Fingerprint64(word) % n of the lower-cased, whitespace-split words, n as many as SST-2's training
  words; the plan keeps b of the n buckets, and the device folds a hash into them: 2 + (id - 2) % b."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  start = time.time()
  (train_x, train_y), (dev_x, dev_y), (test_x, test_y) = splits
  vectorize = keras.layers.TextVectorization(standardize='lower')
  vectorize.adapt(train_x)
  buckets = vectorize.vocabulary_size() - 2
  hashed = lambda texts: (2 + tf.strings.to_hash_bucket_fast(tf.strings.split(tf.strings.lower(texts)), buckets)
                          ).to_tensor(0).numpy().astype('int32')
  train_ids, dev_ids, test_ids = (hashed(x) for x in (train_x, dev_x, test_x))
  model = build_model(buckets + 2)
  result = lmf_tf.fit_budget(model, train_ids, y=train_y, budget_bytes=args.budget, epochs=args.epochs,
                             batch_size=64, validation_data=(dev_ids, dev_y), vocabulary=lmf_tf.budget.HashedIds(),
                             candidates=args.candidates, verbose=0)
  print(result.plan.describe())
  print(result.table())
  shipped_ids = result.model_ids(test_ids)  # what the device computes: the hash folded into the buckets kept
  shipped = shipped_accuracy(lmf_tf.TfliteRunner(result.flatbuffer), shipped_ids, test_y)
  keras_accuracy = result.model.evaluate(shipped_ids, test_y, verbose=0)[1]
  print(f'SST-2 dev accuracy of the shipped file: {result.accuracy:.4f}')
  print(f'SST-2 test accuracy: shipped file (LiteRT) {shipped:.4f}, Keras {keras_accuracy:.4f}; '
        f'{len(result.flatbuffer):,} bytes (no vocabulary file) for a budget of {result.plan.budget_bytes:,}; '
        f'{time.time() - start:.0f} s')


def with_a_vocabulary(args, splits):
  """`TextVectorization`'s ids; the plan keeps the most frequent words, shipped in an xz vocabulary file."""
  start = time.time()
  (train_x, train_y), (dev_x, dev_y), (test_x, test_y) = splits
  vectorize = keras.layers.TextVectorization(standardize='lower')
  vectorize.adapt(train_x)
  words = vectorize.get_vocabulary()[2:]  # ids 0 and 1 are padding and [UNK]
  train_ids, dev_ids, test_ids = (vectorize(x).numpy() for x in (train_x, dev_x, test_x))
  model = build_model(vectorize.vocabulary_size())
  result = lmf_tf.fit_budget(model, train_ids, y=train_y, budget_bytes=args.budget, epochs=args.epochs,
                             batch_size=64, validation_data=(dev_ids, dev_y), vocabulary=words,
                             candidates=args.candidates, kind=tuple(args.kinds.split(',')), verbose=0)
  for candidate in result.candidates:  # with --candidates > 1 or several --kinds: every plan trained, chosen by dev
    print(f'candidate: rank {candidate.plan.rank}, {candidate.plan.words:,} words, {candidate.plan.kind}: dev '
          f'{candidate.accuracy:.4f}')
  print(result.plan.describe())
  print(result.table())
  with tempfile.TemporaryDirectory() as scratch:
    folder = args.output_dir or scratch
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'model.tflite'), 'wb') as f:
      f.write(result.flatbuffer)
    lmf_tf.budget.write_vocabulary(result.vocabulary, os.path.join(folder, 'vocabulary.xz'))
    shipped_bytes = sum(os.path.getsize(os.path.join(folder, n)) for n in ('model.tflite', 'vocabulary.xz'))
    # What a device does: the tokenizer from the shipped vocabulary file (ids follow its order), the model file.
    shipped_vectorize = keras.layers.TextVectorization(
        standardize='lower', vocabulary=lmf_tf.budget.read_vocabulary(os.path.join(folder, 'vocabulary.xz')))
    with open(os.path.join(folder, 'model.tflite'), 'rb') as f:
      runner = lmf_tf.TfliteRunner(f.read())
  shipped = shipped_accuracy(runner, shipped_vectorize(test_x).numpy(), test_y)
  # The Keras model takes the tokenizer's own ids, the words it did not keep read as [UNK] (1).
  keras_accuracy = result.model.evaluate(result.model_ids(test_ids), test_y, verbose=0)[1]
  print(f'SST-2 dev accuracy of the shipped file: {result.accuracy:.4f}')
  print(f'SST-2 test accuracy: shipped file (LiteRT) {shipped:.4f}, Keras {keras_accuracy:.4f}; '
        f'{shipped_bytes:,} bytes on disk for a budget of {result.plan.budget_bytes:,}; {time.time() - start:.0f} s')


if __name__ == '__main__':
  main()
