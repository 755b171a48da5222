"""Class balancing for imbalanced training sets (imbalanced-learn)."""

from __future__ import annotations

import numpy as np

from starlearn._extras import require

__all__ = ["METHODS", "balance_classes"]

METHODS = (None, "smote", "oversample", "weights")
"""Class-imbalance treatments: None, SMOTE, random oversampling, a weighted loss."""


def balance_classes(x: np.ndarray, y: np.ndarray, method: str | None, *, space: str = "pca",
                    components: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Oversample the minority classes of network inputs ``x`` (n, ...) with labels ``y``.

    ``method`` "smote": SMOTE (synthetic samples interpolated between a sample and one of
    its k = min(5, smallest class - 1) nearest neighbours of the same class), on a PCA
    projection with ``components`` components (``space="pca"``: the new samples are mapped
    back to pixels, the originals kept exact) or on the pixels (``space="pixels"``);
    "oversample": random copies; None or "weights": unchanged (weights act in the loss).
    Every class ends with the size of the largest. Returns (x, y), originals first.
    "smote" and "oversample" need imbalanced-learn (``pip install 'starlearn[imbalance]'``;
    :class:`~starlearn.errors.MissingExtraError` without it).
    """
    if method not in ("smote", "oversample"):
        return x, y
    require("imblearn", extra="imbalance", what=f"balance={method!r}")
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    flat = x.reshape(len(x), -1)
    if method == "oversample":
        out, y_out = RandomOverSampler(random_state=seed).fit_resample(flat, y)
        return out.reshape(-1, *x.shape[1:]).astype(np.float32), y_out
    k = int(min(5, np.bincount(y).min() - 1))
    if k < 1:
        raise ValueError("SMOTE needs at least 2 training spectra in every class, got "
                         f"counts {np.bincount(y).tolist()}")
    smote = SMOTE(k_neighbors=k, random_state=seed)
    if space == "pixels":
        out, y_out = smote.fit_resample(flat, y)
        return out.reshape(-1, *x.shape[1:]).astype(np.float32), y_out
    if space != "pca":
        raise ValueError(f"balance_classes: space must be 'pca' or 'pixels', got {space!r}")
    from sklearn.decomposition import PCA

    pca = PCA(min(components, *flat.shape), random_state=seed).fit(flat)
    z, y_out = smote.fit_resample(pca.transform(flat), y)
    # imbalanced-learn appends the synthetic samples after the originals
    new = pca.inverse_transform(z[len(flat):])
    out = np.concatenate([flat, new]).reshape(-1, *x.shape[1:]).astype(np.float32)
    return out, y_out
