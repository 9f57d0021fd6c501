"""Stacking meta-learners fit on validation predictions, applied once to test.

* :func:`fit_stacking`: multinomial logistic regression (scikit-learn) on the
  flattened member x view probabilities. Its validation score is estimated by
  stratified k-fold cross-validation on the validation split; it is then refit
  on the whole validation split. Test labels are never seen.
* :func:`fit_class_member_weights`: one weight per member and class. For class
  ``c`` the members' probabilities of ``c`` are mixed with weights that sum to one
  over members (a softmax of free parameters), and the mixed scores are
  renormalised over classes. A member that is good on some classes and useless on
  one (the original study's Model 1 on Animation) loses weight on that class only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from .metrics import classification_metrics


def stacking_features(probs: np.ndarray) -> np.ndarray:
    """``probs [M, V, N, C]`` -> ``[N, M * V * C]``."""
    m, v, n, c = probs.shape
    return probs.transpose(2, 0, 1, 3).reshape(n, m * v * c)


@dataclass
class Stacker:
    model: LogisticRegression
    cv_metrics: dict  # accuracy and F1 of the cross-validated validation predictions

    def predict_proba(self, probs: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(stacking_features(probs))


def fit_stacking(val_probs: np.ndarray, val_labels: np.ndarray, seed: int = 0, folds: int = 5, C: float = 1.0) -> Stacker:
    """Fit the logistic-regression meta-learner on validation (with a cross-validated val score)."""
    x = stacking_features(val_probs)
    num_classes = val_probs.shape[-1]
    folds = max(2, min(folds, int(np.bincount(val_labels, minlength=num_classes).min())))
    make = lambda: LogisticRegression(C=C, max_iter=2000)  # noqa: E731
    cv_pred = cross_val_predict(make(), x, val_labels, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    model = make().fit(x, val_labels)
    return Stacker(model, classification_metrics(val_labels, cv_pred, num_classes))


def _mix(theta: torch.Tensor, member_probs: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(theta, dim=0)  # [M, C], sums to 1 over members
    scores = (weights[:, None, :] * member_probs).sum(0)  # [N, C]
    return scores / scores.sum(-1, keepdim=True)


@dataclass
class ClassMemberWeights:
    weights: np.ndarray  # [M, C]

    def predict_proba(self, member_probs: np.ndarray) -> np.ndarray:
        """``member_probs [M, N, C]`` -> combined ``[N, C]``."""
        w = self.weights[:, None, :] * member_probs
        s = w.sum(0)
        return s / s.sum(-1, keepdims=True)


def fit_class_member_weights(val_member_probs: np.ndarray, val_labels: np.ndarray, l2: float = 1e-3,
                             iterations: int = 200) -> ClassMemberWeights:
    """Fit per-class member weights on validation by minimising the NLL of the mixture (L-BFGS)."""
    p = torch.as_tensor(val_member_probs, dtype=torch.float64)
    y = torch.as_tensor(val_labels, dtype=torch.int64)
    theta = torch.zeros(p.shape[0], p.shape[2], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        mixed = _mix(theta, p)
        loss = -torch.log(mixed[torch.arange(len(y)), y].clamp_min(1e-12)).mean() + l2 * (theta ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return ClassMemberWeights(torch.softmax(theta.detach(), 0).numpy())
