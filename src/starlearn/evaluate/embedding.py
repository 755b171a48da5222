"""2-D embeddings of feature vectors (t-SNE from scikit-learn, or PCA) for maps and plots."""

from __future__ import annotations

import numpy as np

__all__ = ["embed_2d"]


def embed_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(n, 2) embedding of ``features`` (n, d): ``"tsne"`` (perplexity up to 30, PCA
    initialisation) or ``"pca"``."""
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed,
                    init="pca").fit_transform(features)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features)
    raise ValueError(f"embed_2d: method must be 'tsne' or 'pca', got {method!r}")
