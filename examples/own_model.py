"""lmf_tf on your own Keras model: a plain BiLSTM sentiment classifier on SST-2 sentences, its embedding compressed
online at R = 90, then saved, reloaded and exported. Nothing of lmf_tf's data code: Keras's TextVectorization.

    python examples/own_model.py                      # about 25 s on 2 idle CPU cores
    python examples/own_model.py --output_dir=my_model  # keep the saved and exported files
    python examples/own_model.py --quick              # a smoke run on 1,000 sentences
    python examples/own_model.py --kernel_rank=8      # the BiLSTM's matrices at rank 8 too (LowRankKernels)
    python examples/own_model.py --frequency_blocks=4 # the embedding's numbers spread over 4 frequency blocks

Prints test accuracy and sizes before the swap and after it (docs/library.md has its output).
"""

import argparse
import csv
import os
import tempfile
import time

import keras
import numpy as np

import lmf_tf

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'data', 'sst2')


def read_split(name, limit=None):
  """SST-2 sentences and 0/1 labels from `data/sst2/<name>.tsv` (text<TAB>label)."""
  with open(os.path.join(DATA, f'{name}.tsv'), encoding='utf-8') as f:
    rows = list(csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE))[:limit]
  return [text for text, _ in rows], np.array([int(label) for _, label in rows])


def build_model(vocab_size):
  ids = keras.Input((None,), dtype='int32', name='token_ids')
  x = keras.layers.Embedding(vocab_size, 64, mask_zero=True, name='words')(ids)
  x = keras.layers.Bidirectional(keras.layers.LSTM(32), name='bilstm')(x)
  x = keras.layers.Dropout(0.3)(x)
  model = keras.Model(ids, keras.layers.Dense(2, activation='softmax', name='classifier')(x))
  model.compile(optimizer=keras.optimizers.Adam(2e-3), loss='sparse_categorical_crossentropy', metrics=['accuracy'])
  return model


def sizes(model, folder, tag):
  """Bytes of the model as `.keras`, as the paper's checkpoint (.data + .index + .meta) and as TFLite float32 and
  int8 (with the projection folded into the BiLSTM when the embedding is factorized)."""
  model.save(os.path.join(folder, f'{tag}.keras'))
  checkpoint = lmf_tf.size.save_inference_checkpoint(model, os.path.join(folder, f'{tag}_checkpoint'))
  deployed = lmf_tf.fold_projection(model) if tag == 'after' else model
  tflite = {kind: lmf_tf.write_tflite(deployed, os.path.join(folder, f'{tag}_{kind}.tflite'), kind, batch_size=1)
            for kind in ('float32', 'int8')}
  return {'.keras': os.path.getsize(os.path.join(folder, f'{tag}.keras')), 'checkpoint': checkpoint.total_bytes,
          **{f'tflite {k}': v for k, v in tflite.items()}}, deployed


def tflite_accuracy(path, ids, labels):
  """Accuracy of a TFLite file run by LiteRT, one sentence at a time (its padding stripped)."""
  with open(path, 'rb') as f:
    runner = lmf_tf.TfliteRunner(f.read())
  sequences = [row[row > 0] if (row > 0).any() else row[:1] for row in ids]
  return float(np.mean(runner.predict(sequences).argmax(-1) == labels))


def kernels_line(online):
  """', matrices at rank r: ...' for the matrices factorized with the embedding, or ''."""
  matrices = [r for r in online.reports if r.matrix == 'kernel']
  return f', {len(matrices)} LSTM matrices at rank {matrices[0].rank}' if matrices else ''


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='1,000 training sentences, 1 + 1 epochs')
  parser.add_argument('--kernel_rank', type=int, help='also factorize the BiLSTM\'s matrices at this rank at the swap '
                      '(lmf_tf.LowRankKernels); default: the embedding only')
  parser.add_argument('--frequency_blocks', type=int, help='spread the embedding\'s numbers at R = 90 over this many '
                      'blocks of word ids, frequent words at higher rank (lmf_tf.FrequencyRanks); default: one rank')
  parser.add_argument('--output_dir', help='keep the .keras, checkpoint and TFLite files here (default: a '
                      'temporary folder, deleted at the end)')
  args = parser.parse_args()
  if args.output_dir:
    os.makedirs(args.output_dir, exist_ok=True)
    run(args, args.output_dir)
  else:
    with tempfile.TemporaryDirectory(prefix='lmf_tf_example_') as folder:
      run(args, folder)


def run(args, folder):
  start = time.time()
  keras.utils.set_random_seed(1)
  limit = 1000 if args.quick else None
  (train_x, train_y), (dev_x, dev_y), (test_x, test_y) = (read_split(s, limit) for s in ('train', 'dev', 'test'))
  vectorize = keras.layers.TextVectorization(max_tokens=20_000, standardize='lower')
  vectorize.adapt(train_x)
  train_ids, dev_ids, test_ids = (vectorize(x).numpy() for x in (train_x, dev_x, test_x))
  vocab_size = vectorize.vocabulary_size()
  model = build_model(vocab_size)
  epochs = 1 if args.quick else 3

  model.fit(train_ids, train_y, validation_data=(dev_ids, dev_y), batch_size=64, epochs=epochs, verbose=2)
  results = {'before': {'test accuracy': model.evaluate(test_ids, test_y, verbose=0)[1],
                        'embedding': f'{vocab_size} x 64'}}
  results['before'].update(sizes(model, folder, 'before')[0])

  # Online compression: the swap happens before epoch `epochs`, then training goes on for as many epochs.
  kernels = lmf_tf.LowRankKernels(rank=args.kernel_rank) if args.kernel_rank else None
  # TextVectorization numbers words by frequency (0 padding, 1 out-of-vocabulary), as FrequencyRanks expects.
  frequency = lmf_tf.FrequencyRanks(blocks=args.frequency_blocks) if args.frequency_blocks else None
  online = lmf_tf.OnlineCompression(reduction=90, at_epoch=epochs, recovery_learning_rate='restart', kernels=kernels,
                                    frequency=frequency)
  model.fit(train_ids, train_y, validation_data=(dev_ids, dev_y), batch_size=64, initial_epoch=epochs,
            epochs=2 * epochs, verbose=2, callbacks=[online])
  report = online.reports[0]
  shape = (f'{vocab_size} x {report.rank}, {report.rank} x 64' if not report.block_ranks else
           'blocks ' + ', '.join(f'{n}x{k}' for n, k in zip(report.block_rows, report.block_ranks)))
  results['after'] = {'test accuracy': model.evaluate(test_ids, test_y, verbose=0)[1], 'embedding': shape}
  after_sizes, folded = sizes(model, folder, 'after')
  results['after'].update(after_sizes)

  # A fresh model object from the .keras file (lmf_tf's layers are registered by `import lmf_tf`).
  reloaded = keras.saving.load_model(os.path.join(folder, 'after.keras'))
  results['after']['reloaded .keras accuracy'] = reloaded.evaluate(test_ids, test_y, verbose=0)[1]
  results['after']['tflite int8 accuracy'] = tflite_accuracy(os.path.join(folder, 'after_int8.tflite'), test_ids,
                                                             test_y)
  vocabulary_bytes = len('\n'.join(vectorize.get_vocabulary()).encode())
  print(f'\nSST-2 test, {len(train_x)} training sentences, vocabulary {vocab_size} ({vocabulary_bytes:,} bytes as '
        f'text); online R = 90 ({online.reports[0].rank} = k){kernels_line(online)} after epoch {epochs}; files in '
        f'{folder}'
        f'{"" if args.output_dir else " (deleted at the end; --output_dir keeps them)"}')
  print(f'{"":28}{"before the swap":>18}{"after":>26}')
  for key in results['after']:
    before, after = results['before'].get(key, ''), results['after'][key]
    show = lambda v: f'{v:.4f}' if isinstance(v, float) else (f'{v:,}' if isinstance(v, int) else v)
    print(f'{key:28}{show(before):>18} {show(after):>25}')
  print(f'wall time {time.time() - start:.0f} s')
  del folded


if __name__ == '__main__':
  main()
