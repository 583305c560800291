"""Ship within a byte budget: deployable bytes (the TFLite file plus the vocabulary file) planned, predicted by part
and measured by part (docs/budget.md). The verb is at the top level: `lmf_tf.fit_budget(model, x, budget_bytes=...,
epochs=..., validation_data=..., vocabulary=words)` plans, trains with the online swap, ships int8 TFLite, runs it
with LiteRT and checks its bytes. Here:

  - `plan_for_budget(model, budget_bytes, vocabulary=words)`: the plan alone (`BudgetPlan`), before training;
    `ranked_plans(model, budget_bytes, count, vocabulary=words)`: the candidates `fit_budget(candidates=count)`
    trains, the best plan of each of `count` ranks;
  - `predict_parts(model, kind, vocabulary_bytes)` / `measure_parts(flatbuffer, model, kind, vocabulary_bytes)`:
    bytes by part (embedding, recurrent, hidden, output, vocabulary, overhead, total), predicted from a Keras model
    and read off its exported file;
  - `write_vocabulary(words, path)` / `read_vocabulary(path)` / `vocabulary_bytes(words)`: the compressed
    vocabulary file (alphabetical, xz) and its size;
  - `HashedIds()`: `fit_budget(vocabulary=HashedIds())` for ids that are hashed words: no vocabulary file ships,
    the plan chooses how many hash buckets the table keeps;
  - `keep_rows(model, embedding_name, rows)`: a copy whose embedding keeps only the given rows (ids);
  - `parse_budget('90KB')`: bytes from an int or a size with KB / MB (1 KB = 1,000 bytes).
"""

from lmf_tf.compression.budget import BudgetPlan, BudgetResult, HashedIds, keep_rows, plan_for_budget, ranked_plans
from lmf_tf.compression.sizes import (PARTS, measure_parts, parse_budget, predict_parts, read_vocabulary,
                                      vocabulary_bytes, write_vocabulary)

__all__ = ['BudgetPlan', 'BudgetResult', 'HashedIds', 'PARTS', 'keep_rows', 'measure_parts', 'parse_budget', 'plan_for_budget',
           'predict_parts', 'ranked_plans', 'read_vocabulary', 'vocabulary_bytes', 'write_vocabulary']
