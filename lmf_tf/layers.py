"""Keras layers that hold a matrix in compressed form; each is registered with Keras (`lmf_tf>Name`), so a `.keras`
file that holds one loads after `import lmf_tf`.

  - `CompressibleEmbedding`: a `keras.layers.Embedding` that can be factorized in place into U_k Σ_k (V x k) and
    V_kᵀ (k x d) (Acharya et al. 2019, §3.1); `OnlineCompression` and `compress_model` turn a plain `Embedding`
    into one. `.rank`, `.factorize(rank)`.
  - `CompressibleDense`: a `keras.layers.Dense` whose kernel can be factorized in place into U_k Σ_k (M x k) and
    V_kᵀ (k x N); `CompressibleLSTM`: a `keras.layers.LSTM` whose input and recurrent matrices can each be;
    `OnlineCompression(kernels=LowRankKernels(...))` turns a plain `Dense` or `LSTM` into one.
  - `FrequencyBlockEmbedding`: an embedding whose blocks of ids (most frequent first) each hold their own factors,
    frequent words at higher rank (GroupReduce); `OnlineCompression(frequency=FrequencyRanks(...))` makes one.
  - `PackedInt4Embedding`: an inference embedding whose table is int4, two numbers a byte, that LiteRT runs;
    `Int4AwareEmbedding`: an embedding trained with its table quantized to int4 in the forward pass
    (`lmf_tf.quantization.with_int4_tables`, `int4_aware`).
  - `LowRankDense`, `LowRankLSTM`: a dense layer x A B + b and an LSTM whose input and recurrent matrices may each be
    factorized (Grachev et al. 2017, §3.3).
  - `TTEmbedding`, `TTDense`: tensor-train matrices (Novikov et al. 2015; Grachev et al. 2017, §3.4); their
    `cores_from(matrix)` needs the `tt` extra (`pip install '.[tt]'` in a clone, or `pip install 'tensorly>=0.9'`).
"""

from lmf_tf.compression.block_embedding import FrequencyBlockEmbedding
from lmf_tf.compression.dense import CompressibleDense
from lmf_tf.compression.embedding import CompressibleEmbedding
from lmf_tf.compression.int4 import Int4AwareEmbedding, PackedInt4Embedding
from lmf_tf.compression.recurrent import CompressibleLSTM
from lmf_tf.compression.lowrank import LowRankDense, LowRankLSTM
from lmf_tf.compression.tensor_train import TTDense, TTEmbedding

__all__ = ['CompressibleDense', 'CompressibleEmbedding', 'CompressibleLSTM', 'FrequencyBlockEmbedding', 'Int4AwareEmbedding',
           'LowRankDense', 'LowRankLSTM', 'PackedInt4Embedding', 'TTDense', 'TTEmbedding']
