"""Penn Treebank word-level language-model data: vocabulary, word ids and truncated-BPTT windows.

The data is Mikolov's PTB text (`data/ptb/`, see its PROVENANCE.md), as used by Zaremba, Sutskever and Vinyals
(2014, §4.1) and by Grachev, Ignatov and Savchenko (2017, §4): one sentence a line, words separated by spaces,
rare words already replaced by `<unk>`. Each line end becomes the token `<eos>`, so the corpus is one long
sequence of word ids: train 929,589, valid 73,760, test 82,430 tokens, with a closed vocabulary of 10,000 words
(9,999 words of the training text and `<eos>`). `<unk>` is an ordinary word; a word of valid or test that train
does not have is an error, since PTB is closed-vocabulary.

Truncated back-propagation through time (Zaremba et al. 2014, §4.1; the TensorFlow PTB tutorial's
`ptb_producer`): the id sequence x of N tokens is cut into `batch_size` contiguous streams of L = N // batch_size
tokens (the last N mod batch_size tokens are dropped), stream r being x[r L : (r + 1) L]. Window i holds, for every
stream, inputs x[t] and targets x[t + 1] for t in [i T, (i + 1) T) of that stream, T = `num_steps`. Row r of window
i therefore continues row r of window i - 1, and the LSTM state reached at the end of one window is the right
initial state for the next.

Worked example: N = 10, batch_size = 2, num_steps = 2 -> streams [x0..x4] and [x5..x9], L = 5; (L - 1) // T = 2
windows: inputs [[x0 x1], [x5 x6]] with targets [[x1 x2], [x6 x7]], then inputs [[x2 x3], [x7 x8]] with targets
[[x3 x4], [x8 x9]]. All L - 1 targets of each stream are predicted once.
"""

import collections
import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from lmf_tf import io_utils
from lmf_tf.errors import ConfigError, DataFormatError
from lmf_tf.lm.config import PTB_DIR

EOS = '<eos>'
UNK = '<unk>'
PTB_FILES = {'train': 'ptb.train.txt', 'valid': 'ptb.valid.txt', 'test': 'ptb.test.txt'}
_ASCII_SPACE = re.compile(r'[ \t\n\r\f\v]+')  # not str.split(), which also splits on \x1c-\x1f and Unicode spaces


def read_sentences(path):
  """Yields (line number, list of words) for each line of a PTB text file.

  Raises:
    DataFormatError: naming `path:line` for bytes that are not UTF-8, an empty line (every PTB line holds a
      sentence), or the reserved token `<eos>` written in the text.
  """
  for lineno, line in io_utils.numbered_lines(path):
    words = _ASCII_SPACE.split(line.strip(' \t\n\r\f\v'))
    if words == ['']:
      raise DataFormatError(f'{path}:{lineno}: empty line (every line of a PTB file holds a sentence)')
    if EOS in words:
      raise DataFormatError(f'{path}:{lineno}: the token {EOS} is reserved for line ends and cannot appear in '
                            'the text')
    yield lineno, words


class LmVocabulary:
  """Word <-> id mapping of a closed-vocabulary corpus, built from its training file.

  Ids run from 0 to V - 1 (no padding id: LM windows are never padded). Words are ordered by frequency in the
  training text (with `<eos>` counted once per line), ties alphabetically, as in the TensorFlow PTB tutorial; so
  for PTB `the` is 0, `<unk>` 1 and `<eos>` 2.
  """

  def __init__(self, words):
    self.words = list(words)
    self.ids = {w: i for i, w in enumerate(self.words)}
    if len(self.ids) != len(self.words):
      raise ValueError('a vocabulary lists each word once')

  @classmethod
  def build(cls, train_path):
    counts = collections.Counter()
    for _, words in read_sentences(train_path):
      counts.update(words)
      counts[EOS] += 1
    if not counts:
      raise DataFormatError(f'{train_path}: the training file holds no sentence')
    return cls(sorted(counts, key=lambda w: (-counts[w], w)))

  def __len__(self):
    return len(self.words)

  def save(self, path):
    """Writes one word a line, in id order (atomically)."""
    io_utils.write_text_atomic(path, '\n'.join(self.words) + '\n')

  @classmethod
  def load(cls, path):
    """Reads a vocabulary written by `save`."""
    return cls(line.rstrip('\n') for _, line in io_utils.numbered_lines(path))


def read_ids(path, vocabulary):
  """The file as `int32[N]` word ids, with `<eos>` (its id) after each line.

  Raises:
    DataFormatError: as `read_sentences`, and naming `path:line` and the word for a word the vocabulary lacks.
  """
  ids = []
  eos = vocabulary.ids[EOS]
  for lineno, words in read_sentences(path):
    for word in words:
      i = vocabulary.ids.get(word)
      if i is None:
        raise DataFormatError(f'{path}:{lineno}: word {word!r} is not in the {len(vocabulary):,}-word vocabulary '
                              f'of the training file (PTB is closed-vocabulary: rare words are written {UNK})')
      ids.append(i)
    ids.append(eos)
  return np.asarray(ids, np.int32)


@dataclasses.dataclass
class LmCorpus:
  """A corpus as word ids: train, valid and test are `int32[N]` arrays over `vocabulary`."""
  vocabulary: LmVocabulary
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray
  paths: dict

  def sizes(self):
    """{'train': N, 'valid': N, 'test': N, 'vocab_size': V}: token counts with `<eos>`."""
    return {'train': int(self.train.size), 'valid': int(self.valid.size), 'test': int(self.test.size),
            'vocab_size': len(self.vocabulary)}


def load_corpus(data_dir=PTB_DIR, files=None):
  """Reads `data_dir`'s train, valid and test files (`PTB_FILES` by default), vocabulary from train.

  Raises:
    FileNotFoundError: naming a missing file.
    DataFormatError: naming file and line, as `read_ids`.
  """
  paths = {split: os.path.join(data_dir, name) for split, name in (files or PTB_FILES).items()}
  for path in paths.values():
    if not os.path.exists(path):
      raise FileNotFoundError(f'language-model data file {path} is missing (see data/ptb/PROVENANCE.md)')
  vocabulary = LmVocabulary.build(paths['train'])
  return LmCorpus(vocabulary, *(read_ids(paths[s], vocabulary) for s in ('train', 'valid', 'test')), paths=paths)


def streams(ids, batch_size):
  """`int[N]` -> `int32[batch_size, N // batch_size]`: row r is the contiguous stream x[r L : (r + 1) L]."""
  stream_len = len(ids) // batch_size
  return np.asarray(ids[:batch_size * stream_len], np.int32).reshape(batch_size, stream_len)


def num_windows(num_tokens, batch_size, num_steps, drop_remainder=True):
  """Windows per epoch: (L - 1) // T, or ceil((L - 1) / T) with a last, shorter window (L = N // batch_size)."""
  predicted = num_tokens // batch_size - 1  # targets per stream
  return predicted // num_steps if drop_remainder else -(-predicted // num_steps)


def tbptt_dataset(ids, batch_size, num_steps, drop_remainder=True):
  """The truncated-BPTT windows of one epoch, in order (module docstring).

  Args:
    ids: `int[N]` word ids of the whole corpus.
    batch_size: number of contiguous streams B.
    num_steps: window length T (the BPTT truncation).
    drop_remainder: True (training): every window has T steps, and the last (L - 1) mod T targets of each stream
      are left out. False (evaluation): a last, shorter window predicts them too, so every one of the B (L - 1)
      targets is predicted exactly once.
  Returns:
    A `tf.data.Dataset` of (inputs, targets), each `int32[B, T]` (`int32[B, None]` without `drop_remainder`), row r
    of each window continuing row r of the previous one.
  Raises:
    ConfigError: if the corpus is too short for one window.
  """
  if batch_size < 1 or num_steps < 1:
    raise ConfigError(f'batch_size ({batch_size}) and num_steps ({num_steps}) must be at least 1')
  count = num_windows(len(ids), batch_size, num_steps, drop_remainder)
  if count < 1:
    raise ConfigError(f'{len(ids)} tokens are too few for one window of {batch_size} streams x {num_steps} steps')
  data = tf.constant(streams(ids, batch_size))
  stream_len = data.shape[1]

  def window(i):
    start = tf.cast(i, tf.int32) * num_steps
    end = tf.minimum(start + num_steps, stream_len - 1)
    return data[:, start:end], data[:, start + 1:end + 1]

  dataset = tf.data.Dataset.range(count).map(window)
  if drop_remainder:
    dataset = dataset.map(lambda x, y: (tf.ensure_shape(x, [batch_size, num_steps]),
                                        tf.ensure_shape(y, [batch_size, num_steps])))
  return dataset.prefetch(tf.data.AUTOTUNE)
