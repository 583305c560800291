"""The factorization itself, for a custom training loop or your own analysis.

  - `rank_for_reduction(R, V, d)`: k = floor((1 − R/100)·V·d/(V + d)) (e.g. R = 90, V = 10,000, d = 50: k = 4);
    `reduction_of_rank(k, V, d)`: its inverse, the R in percent that rank k achieves;
  - `truncated_svd(W, k)`: the best rank-k factors U_k Σ_k (V x k) and V_kᵀ (k x d) of W (V x d);
  - `swap_embeddings(model, optimizer, reduction=R)`: the online swap inside a `tf.GradientTape` loop; returns the
    new optimizer (`carry_optimizer`: the old one's step and slots) and a `CompressionReport` per embedding.
"""

from lmf_tf.compression.factorization import CompressionReport, truncated_svd
from lmf_tf.compression.rank import rank_for_reduction, reduction_of_rank
from lmf_tf.compression.swap import carry_optimizer, swap_embeddings

__all__ = ['CompressionReport', 'carry_optimizer', 'rank_for_reduction', 'reduction_of_rank', 'swap_embeddings',
           'truncated_svd']
