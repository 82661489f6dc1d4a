"""In-batch-negatives loss that knows both views of a pair share one batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.util import all_gather, all_gather_with_grad, cos_sim, get_rank
from torch import Tensor, nn


class DualViewMultipleNegativesRankingLoss(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
    ) -> None:
        """MultipleNegativesRankingLoss (InfoNCE) with the sibling view of each pair masked out.

        Dual-view training puts both views of a pair in one batch: ``(q + I, d+, d-)`` and
        ``(q + I', d-, d+)``. With in-batch negatives, the sibling row's negative is this row's positive (the
        same text): counting it as a negative would push the query away from its own positive. This loss reads
        the ``label`` column as a pair-group id and removes, for every anchor, all candidates that come from
        another row of the same group. Those candidates are exactly this row's own positive and negative, so
        nothing is lost: the row still sees its own hard negative once, plus every other pair's documents.
        Rows with unique labels (every other recipe) make it identical to MultipleNegativesRankingLoss.

        With ``gather_across_devices=True`` (DDP), candidates and labels are gathered from every rank, so the
        mask stays right when a pair's views land on different devices.

        Args:
            model: the SentenceTransformer being trained.
            scale: inverse temperature applied to the similarities (20 = temperature 0.05).
            similarity_fct: similarity between anchor and candidate embeddings.
            gather_across_devices: gather candidates (with gradients) and labels across ranks.

        Inputs:
            ``(anchor, positive, negative_1, ..., negative_n)`` columns and a ``label`` column holding the
            pair-group id (an int; equal for the two views of one pair), or a list ``[group, doc id of the
            positive, doc id of each negative]``: then any candidate that is the same document as the anchor's
            own positive (another row's positive or negative) is masked too, so in-batch duplicates never
            count as negatives.

        Batches of different sizes on different ranks (the last one of an epoch) are gathered with padding.

        Example:
            >>> from datasets import Dataset
            >>> train = Dataset.from_dict({
            ...     "anchor": ["q instruction", "q reversed instruction"],
            ...     "positive": ["d plus", "d minus"],
            ...     "negative": ["d minus", "d plus"],
            ...     "label": [0, 0],
            ... })
            >>> # loss = DualViewMultipleNegativesRankingLoss(model); SentenceTransformerTrainer(..., loss=loss)

        Citation:
            Zeng et al. (2026), "Dual-View Training for Instruction-Following Information Retrieval",
            arXiv:2604.18845; van den Oord et al. (2018), "Representation Learning with Contrastive
            Predictive Coding", arXiv:1807.03748.
        """
        super().__init__()
        if not scale > 0:
            raise ValueError("scale must be positive")
        self.model = model
        self.scale = scale
        self.similarity_fct = similarity_fct
        self.gather_across_devices = gather_across_devices
        self.cross_entropy = nn.CrossEntropyLoss()

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        embeddings = embed_columns(self.model, sentence_features)
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        anchors, candidates = embeddings[0], embeddings[1:]
        batch = anchors.size(0)
        if labels is None:
            labels = torch.arange(batch, device=anchors.device)
        labels = labels.to(anchors.device).long()
        groups = labels[:, 0] if labels.dim() == 2 else labels
        docs_of_row = labels[:, 1:] if labels.dim() == 2 and labels.size(1) == 1 + len(candidates) else None
        offset = 0
        all_groups, all_docs = groups, docs_of_row
        if self.gather_across_devices:
            sizes = _gathered_sizes(batch, anchors.device)
            candidates = [_gather_uneven(c, sizes, with_grad=True) for c in candidates]
            all_groups = _gather_uneven(groups, sizes)
            all_docs = None if docs_of_row is None else _gather_uneven(docs_of_row, sizes)
            offset = int(sum(sizes[: get_rank()]))
        world = candidates[0].size(0)
        docs = torch.cat(candidates, dim=0)  # (world * n_cols, dim): all positives, then each negative column
        scores = self.similarity_fct(anchors, docs) * self.scale  # (batch, world * n_cols)

        own_row = torch.arange(batch, device=anchors.device) + offset  # global row index of each anchor
        cand_row = torch.arange(world, device=anchors.device).repeat(len(candidates))
        cand_label = all_groups.repeat(len(candidates))
        same_group = groups[:, None] == cand_label[None, :]
        other_row = own_row[:, None] != cand_row[None, :]
        mask = same_group & other_row
        if all_docs is not None:
            # a copy of the anchor's own positive elsewhere in the batch (another query on the same document, a
            # negative that is another pair's positive) is not a negative: only the own positive is the target
            cand_doc = all_docs.T.reshape(-1)  # column-major, like ``docs``
            target = torch.zeros_like(mask)
            target[torch.arange(batch, device=anchors.device), own_row] = True
            mask = mask | ((cand_doc[None, :] == docs_of_row[:, :1]) & ~target)
        scores = scores.masked_fill(mask, float("-inf"))
        return self.cross_entropy(scores, own_row)

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "similarity_fct": getattr(self.similarity_fct, "__name__", str(self.similarity_fct)),
            "gather_across_devices": self.gather_across_devices,
            "masking": "sibling views (same label, other row) and copies of the anchor's own positive",
        }

    @property
    def citation(self) -> str:
        return """
@misc{zeng2026dualview,
  title = {Dual-View Training for Instruction-Following Information Retrieval},
  author = {Zeng et al.},
  year = {2026},
  eprint = {2604.18845},
  archivePrefix = {arXiv},
}
"""


def _gathered_sizes(batch: int, device) -> list[int]:
    sizes = all_gather(torch.tensor([batch], device=device))
    return [int(x) for x in sizes.reshape(-1).tolist()]


def _gather_uneven(t: Tensor, sizes: list[int], with_grad: bool = False) -> Tensor:
    """``all_gather`` of tensors whose first dimension differs by rank: pad to the largest, gather, strip."""
    longest = max(sizes)
    pad = longest - t.size(0)
    if pad:
        t = torch.cat([t, t.new_zeros((pad, *t.shape[1:]))], dim=0)
    gathered = (all_gather_with_grad if with_grad else all_gather)(t)
    keep = torch.cat([torch.arange(r * longest, r * longest + n, device=t.device) for r, n in enumerate(sizes)])
    return gathered.index_select(0, keep)
