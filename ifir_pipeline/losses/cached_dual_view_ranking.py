"""Gradient-cached version of the dual-view loss, for batches larger than memory allows."""

from __future__ import annotations

from typing import Any

import torch
from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss
from torch import Tensor

from ifir_pipeline.losses.dual_view_ranking import DualViewMultipleNegativesRankingLoss


class CachedDualViewMultipleNegativesRankingLoss(CachedMultipleNegativesRankingLoss):
    def __init__(
        self, model, scale: float = 20.0, mini_batch_size: int = 32, gather_across_devices: bool = False
    ) -> None:
        """:class:`DualViewMultipleNegativesRankingLoss` with GradCache (Gao et al., 2021).

        sentence-transformers' :class:`CachedMultipleNegativesRankingLoss` embeds the batch in mini-batches
        without gradients, computes the loss on the cached embeddings, and replays each mini-batch with the
        cached gradients; memory then grows with ``mini_batch_size``, not with the batch. This subclass keeps
        that machinery and replaces only the loss on the cached embeddings with the sibling-masked one, so
        both views of a pair can share a large batch without the sibling's negative counting against this
        row's positive.

        Args:
            model: the SentenceTransformer being trained.
            scale: inverse temperature.
            mini_batch_size: rows embedded at once (memory knob; the result does not depend on it).
            gather_across_devices: gather candidates and pair labels across ranks (DDP).

        Citation:
            Gao et al. (2021), "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup",
            arXiv:2101.06983; Zeng et al. (2026), arXiv:2604.18845.
        """
        super().__init__(
            model, scale=scale, mini_batch_size=mini_batch_size, gather_across_devices=gather_across_devices
        )
        self.masked = DualViewMultipleNegativesRankingLoss(
            model, scale=scale, gather_across_devices=gather_across_devices
        )

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        loss = self.masked.compute_loss_from_embeddings([torch.cat(r) for r in reps], labels)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {**self.masked.get_config_dict(), "mini_batch_size": self.mini_batch_size, "gradient_cache": True}
