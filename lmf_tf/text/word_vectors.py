"""Pre-trained word vectors in the GloVe / word2vec text format: `word v1 ... vd`, one word a line.

An optional word2vec header line (`count dim`) is skipped. Only the vocabulary's words are kept, so a 400k x 300
file reads in bounded memory.
"""

import dataclasses
import os

import numpy as np
from absl import logging

from lmf_tf import io_utils
from lmf_tf.errors import DataFormatError


@dataclasses.dataclass
class EmbeddingMatrix:
  """`matrix`: float32[V, d] rows aligned with the vocabulary ids; `found`: how many words had a vector."""
  matrix: np.ndarray
  found: int
  searched: int

  @property
  def coverage(self):
    return self.found / max(self.searched, 1)


def read_word_vectors(path, vocabulary, seed=0, oov_scale=0.25):
  """Builds the initial embedding matrix for `vocabulary` from a GloVe/word2vec text file.

  Rows of words missing from the file are drawn from U(-oov_scale, oov_scale) (Kim 2014) with `seed`; the padding
  row 0 is zero. d follows from the file.

  Args:
    path: the text file.
    vocabulary: an `input_pipeline.Vocabulary`.
  Returns:
    `EmbeddingMatrix` with `matrix` float32[len(vocabulary), d].
  Raises:
    DataFormatError: a line with a different number of values than the first vector line, a non-number or a
      non-finite value, naming `path:line`.
    FileNotFoundError: no such file.
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f'embeddings file {path} (--embeddings_path) does not exist')
  index = {token: i for i, token in enumerate(vocabulary.tokens) if i >= 2}
  vectors = {}
  dim = None
  for lineno, line in io_utils.numbered_lines(path):
    parts = line.rstrip('\r\n').rstrip(' ').split(' ')
    if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
      continue  # word2vec header: "<count> <dim>"
    if len(parts) < 2:
      if not line.strip():
        continue
      raise DataFormatError(f'{path}:{lineno}: expected "word v1 ... vd", found {line[:60]!r}')
    if dim is None:
      dim = len(parts) - 1
    elif len(parts) - 1 != dim:
      raise DataFormatError(
          f'{path}:{lineno}: {len(parts) - 1} values, but earlier lines have {dim} (rows of different lengths)')
    word = parts[0]
    if word in index and word not in vectors:
      try:
        vector = np.asarray(parts[1:], dtype=np.float32)
      except ValueError:
        raise DataFormatError(f'{path}:{lineno}: a value of {word!r} is not a number') from None
      if not np.all(np.isfinite(vector)):  # 'nan', 'inf' or a value beyond float32 would poison training
        raise DataFormatError(f'{path}:{lineno}: a value of {word!r} is not finite (nan, inf or beyond float32)')
      vectors[word] = vector
  if dim is None:
    raise DataFormatError(f'{path}: no word vectors found')
  rng = np.random.default_rng(seed)
  matrix = rng.uniform(-oov_scale, oov_scale, size=(len(vocabulary), dim)).astype(np.float32)
  matrix[0] = 0.0
  for word, vector in vectors.items():
    matrix[index[word]] = vector
  result = EmbeddingMatrix(matrix, found=len(vectors), searched=len(index))
  logging.info('Embeddings %s: d=%d, %d of %d vocabulary words found (%.2f%%); the rest random.',
               path, dim, result.found, result.searched, 100 * result.coverage)
  return result
