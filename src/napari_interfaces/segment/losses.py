"""Cross-entropy + soft Dice loss (as in Rangel DaCosta et al. 2024).

``loss = ce_weight * CE(logits, target) + dice_weight * (1 - mean_c Dice_c)``
where the soft Dice of class ``c`` is
``(2 Σ p_c t_c + ε) / (Σ p_c + Σ t_c + ε)`` over the batch, with ``p`` the
softmax probabilities and ``t`` the one-hot target. Background is excluded
from the Dice mean by default (it dominates and is easy).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CEDiceLoss", "soft_dice"]


def soft_dice(
    logits: torch.Tensor, target: torch.Tensor, include_background: bool = False, eps: float = 1.0
) -> torch.Tensor:
    """Per-class soft Dice coefficient, shape ``(n_classes,)`` or ``(n_classes-1,)``.

    Parameters
    ----------
    logits : (B, C, H, W) tensor
    target : (B, H, W) integer tensor of class indices
    """
    n = logits.shape[1]
    prob = logits.float().softmax(dim=1)
    onehot = F.one_hot(target.long().clamp(0, n - 1), n).permute(0, 3, 1, 2).to(prob.dtype)
    dims = (0, 2, 3)
    inter = (prob * onehot).sum(dims)
    denom = prob.sum(dims) + onehot.sum(dims)
    dice = (2 * inter + eps) / (denom + eps)
    return dice if include_background else dice[1:]


class CEDiceLoss(nn.Module):
    """Weighted sum of cross-entropy and ``1 - mean soft Dice``.

    Parameters
    ----------
    ce_weight, dice_weight : float
        Weights of the two terms (1 and 1 by default).
    class_weights : sequence of float, optional
        Per-class weights of the cross-entropy.
    include_background : bool
        Include class 0 in the Dice mean.
    """

    def __init__(
        self,
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        class_weights=None,
        include_background: bool = False,
    ) -> None:
        super().__init__()
        self.ce_weight = float(ce_weight)
        self.dice_weight = float(dice_weight)
        self.include_background = include_background
        w = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", w)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.long()
        loss = logits.new_zeros(())
        if self.ce_weight:
            loss = loss + self.ce_weight * F.cross_entropy(
                logits.float(), target, weight=self.class_weights
            )
        if self.dice_weight:
            dice = soft_dice(logits, target, self.include_background)
            loss = loss + self.dice_weight * (1 - dice.mean())
        return loss
