"""Property-based tests (hypothesis): readers and the tokenizer take any input and either load it correctly or
fail with a DataFormatError naming the file and line, never with an error from deep inside Python or TensorFlow."""

import contextlib
import json
import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmf_tf.text import input_pipeline
from lmf_tf.text import readers
from lmf_tf.text import word_vectors
from lmf_tf.errors import DataFormatError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text of a field: any Unicode except the separators the formats use (tab, and the line feed / carriage return
# that end a line), with at least one non-space character.
FIELD = st.text(st.characters(blacklist_characters='\t\n\r', blacklist_categories=('Cs',)), min_size=1,
                max_size=200).filter(lambda t: t.strip())
LINE_END = st.sampled_from(['\n', '\r\n'])


@contextlib.contextmanager
def _written(content, binary=False):
  """A temporary file holding `content` (str, written as UTF-8, or bytes), removed afterwards."""
  fd, path = tempfile.mkstemp(suffix='.txt')
  with os.fdopen(fd, 'wb') as f:
    f.write(content if binary else content.encode('utf-8'))
  try:
    yield path
  finally:
    os.remove(path)


@SETTINGS
@given(rows=st.lists(st.tuples(FIELD, st.integers(0, 1)), min_size=1, max_size=20), end=LINE_END,
       bom=st.booleans(), header=st.booleans(), blank_lines=st.booleans())
def test_well_formed_tsv_round_trips(rows, end, bom, header, blank_lines):
  lines = (['sentence\tlabel'] if header else []) + [f'{text}\t{label}' for text, label in rows]
  if blank_lines:
    lines.insert(len(lines) // 2 + int(header), '   ')
  with _written(('\ufeff' if bom else '') + end.join(lines) + end) as path:
    examples = readers.read_labelled_tsv(path, header=header)
  assert [(e.text, e.label) for e in examples] == rows


@SETTINGS
@given(content=st.binary(max_size=2000) | st.text(max_size=2000).map(lambda t: t.encode('utf-8', 'surrogatepass')))
def test_any_bytes_as_tsv_load_or_fail_with_a_named_line(content):
  with _written(content, binary=True) as path:
    try:
      examples = readers.read_labelled_tsv(path, num_classes=3)
    except DataFormatError as e:
      assert str(e).startswith(f'{path}:')
    else:
      assert all(e.label in (0, 1, 2) and e.text.strip() for e in examples)


def test_very_long_lines_and_tabs_inside_text():
  with _written('x' * 1_000_000 + '\t1\nword\twith tab\t0\n') as path:
    with pytest.raises(DataFormatError, match=r':2: expected "text<TAB>label" \(2 tab-separated fields\), found 3'):
      readers.read_labelled_tsv(path)
  with _written('x' * 1_000_000 + '\tpositive\n') as path:
    with pytest.raises(DataFormatError, match=r":1: label 'positive' is not an integer"):
      readers.read_labelled_tsv(path)


WORD = st.text(st.characters(blacklist_characters=' \t\n\r', blacklist_categories=('Cs', 'Zs', 'Zl', 'Zp', 'Cc')),
               min_size=1, max_size=12)


@SETTINGS
@given(words=st.lists(WORD, min_size=1, max_size=15, unique=True), dim=st.integers(1, 6), end=LINE_END,
       bom=st.booleans(), word2vec_header=st.booleans(), data=st.data())
def test_well_formed_vectors_load(words, dim, end, bom, word2vec_header, data):
  values = data.draw(st.lists(st.lists(st.floats(-1e6, 1e6, width=32), min_size=dim, max_size=dim),
                              min_size=len(words), max_size=len(words)))
  lines = [f'{len(words)} {dim}'] if word2vec_header else []
  lines += [w + ' ' + ' '.join(repr(v) for v in vec) for w, vec in zip(words, values)]
  vocabulary = input_pipeline.Vocabulary(['<pad>', '<unk>'] + words)
  with _written(('\ufeff' if bom else '') + end.join(lines) + end) as path:
    result = word_vectors.read_word_vectors(path, vocabulary)
  assert result.matrix.shape == (len(words) + 2, dim) and result.found == len(words)
  np.testing.assert_array_equal(result.matrix[2:], np.asarray(values, np.float32))


@SETTINGS
@given(content=st.binary(max_size=2000) | st.text(max_size=2000).map(lambda t: t.encode('utf-8', 'surrogatepass')))
def test_any_bytes_as_vectors_load_or_fail_with_a_named_line(content):
  vocabulary = input_pipeline.Vocabulary(['<pad>', '<unk>', 'a', 'b'])
  with _written(content, binary=True) as path:
    try:
      result = word_vectors.read_word_vectors(path, vocabulary)
    except DataFormatError as e:
      assert str(e).startswith(f'{path}')
    else:
      assert np.all(np.isfinite(result.matrix))


@pytest.mark.parametrize('value', ['nan', 'inf', '-inf', '1e39'])
def test_non_finite_vectors_are_rejected(value):
  with _written(f'a 0.5 {value}\n') as path:
    with pytest.raises(DataFormatError, match=r":1: a value of 'a' is not finite"):
      word_vectors.read_word_vectors(path, input_pipeline.Vocabulary(['<pad>', '<unk>', 'a']))


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.text(max_size=300) | st.text('good film\x1c\x1d\t\x0b ', max_size=30), min_size=1,
                      max_size=8))
def test_the_tokenizer_maps_any_text_to_known_ids(texts):
  vocabulary = input_pipeline.Vocabulary(['<pad>', '<unk>', 'good', 'film'])
  ids = vocabulary.encode(texts).to_list()
  assert len(ids) == len(texts)
  for text, row in zip(texts, ids):
    assert all(1 <= i < len(vocabulary) for i in row)  # never the padding id
    if text.isascii():  # ASCII: lower-cased, split on whitespace; unknown words map to <unk> (1)
      words = _ascii_words(text)
      assert row == [{'good': 2, 'film': 3}.get(w, 1) for w in words]


def _ascii_words(text):
  # The tokenizer's whitespace for ASCII: space, \t, \n, \v, \f, \r (not the separators \x1c-\x1f, which
  # Python's str.split also treats as whitespace).
  for c in '\t\n\x0b\x0c\r':
    text = text.replace(c, ' ')
  return [w for w in text.lower().split(' ') if w]


ANY_BYTES = st.binary(max_size=1500) | st.text(max_size=1500).map(lambda t: t.encode('utf-8', 'surrogatepass'))


def _loads_or_names_a_file(read, *paths):
  try:
    read(*paths)
  except DataFormatError as e:
    assert any(str(e).startswith(p) for p in paths), str(e)


@SETTINGS
@given(content=ANY_BYTES, header=st.booleans())
def test_any_bytes_as_intent_csv_load_or_fail_with_a_named_line(content, header):
  with _written((b'text,category\n' if header else b'') + content, binary=True) as path:
    _loads_or_names_a_file(readers.read_labelled_csv, path)


@SETTINGS
@given(texts=ANY_BYTES, labels=ANY_BYTES)
def test_any_bytes_as_line_aligned_files_load_or_fail_with_a_named_line(texts, labels):
  with _written(texts, binary=True) as text_path, _written(labels, binary=True) as label_path:
    _loads_or_names_a_file(readers.read_line_aligned, text_path, label_path)


@SETTINGS
@given(content=ANY_BYTES)
def test_any_bytes_as_label_list_or_clinc_json_load_or_fail_with_a_named_file(content):
  with _written(content, binary=True) as path:
    _loads_or_names_a_file(readers.read_label_list, path)
    _loads_or_names_a_file(readers.read_clinc_json, path)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(
                        st.sampled_from(['train', 'val', 'test', 'oos_train', 'x']), children, max_size=4),
                    max_leaves=20)


@SETTINGS
@given(value=JSON)
def test_any_json_structure_as_clinc_or_label_list_loads_or_fails_cleanly(value):
  with _written(json.dumps(value)) as path:
    _loads_or_names_a_file(readers.read_label_list, path)
    _loads_or_names_a_file(readers.read_clinc_json, path)
