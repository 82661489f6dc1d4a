import math

import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from torch import nn

from ifir_pipeline.losses import DualViewMultipleNegativesRankingLoss


def _dot(a, b):
    return a @ b.T


def test_sibling_view_is_masked_and_loss_matches_hand_computation():
    # One pair, both views: row 0 = (q+I, d+, d-), row 1 = (q+I', d-, d+). Unit vectors, dot similarity, scale 1.
    dp, dm = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    q0, q1 = torch.tensor([0.8, 0.6]), torch.tensor([0.6, 0.8])
    anchors, positives, negatives = torch.stack([q0, q1]), torch.stack([dp, dm]), torch.stack([dm, dp])
    loss = DualViewMultipleNegativesRankingLoss(nn.Identity(), scale=1.0, similarity_fct=_dot)
    got = loss.compute_loss_from_embeddings([anchors, positives, negatives], torch.tensor([5, 5]))
    # Candidates for row 0: [d+ (own pos), d- (sibling pos: masked), d- (own neg), d+ (sibling neg: masked)]
    # -> softmax over {0.8 (d+), 0.6 (d-)}; row 1 symmetric: {0.8 (d-), 0.6 (d+)}.
    expected = -math.log(math.exp(0.8) / (math.exp(0.8) + math.exp(0.6)))
    assert abs(got.item() - expected) < 1e-6
    # Without masking the sibling's negative (= own positive) would sit in the denominator too:
    unmasked = -math.log(math.exp(0.8) / (2 * math.exp(0.8) + 2 * math.exp(0.6)))
    assert abs(got.item() - unmasked) > 0.5


def test_unique_labels_equal_multiple_negatives_ranking_loss():
    torch.manual_seed(0)
    embs = [torch.nn.functional.normalize(torch.randn(6, 8), dim=-1) for _ in range(3)]
    ours = DualViewMultipleNegativesRankingLoss(nn.Identity(), scale=20.0).compute_loss_from_embeddings(
        embs, torch.arange(6)
    )
    ref = MultipleNegativesRankingLoss(nn.Identity(), scale=20.0).compute_loss_from_embeddings(embs, None)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_other_pairs_stay_in_batch_negatives():
    embs = [torch.nn.functional.normalize(torch.randn(4, 8), dim=-1) for _ in range(2)]
    same = DualViewMultipleNegativesRankingLoss(nn.Identity()).compute_loss_from_embeddings(
        embs, torch.tensor([0, 1, 2, 3])
    )
    grouped = DualViewMultipleNegativesRankingLoss(nn.Identity()).compute_loss_from_embeddings(
        embs, torch.tensor([0, 0, 1, 1])
    )
    assert not torch.allclose(same, grouped)
    assert DualViewMultipleNegativesRankingLoss(nn.Identity()).get_config_dict()["scale"] == 20.0


def test_gradient_cached_loss_matches_the_plain_loss_value_and_gradients():
    from ifir_pipeline.encoders import load_encoder
    from ifir_pipeline.losses import CachedDualViewMultipleNegativesRankingLoss

    texts = [
        [f"query {i} about topic {i % 3}" for i in range(8)],
        [f"document {i}" for i in range(8)],
        [f"other {i}" for i in range(8)],
    ]
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    grads = []
    values = []
    for cached in (False, True):
        model = load_encoder("packaged", max_seq_length=16)
        model.eval()  # no dropout: both passes must see the same network
        torch.manual_seed(0)
        loss_fn = (
            CachedDualViewMultipleNegativesRankingLoss(model, mini_batch_size=3)
            if cached
            else DualViewMultipleNegativesRankingLoss(model)
        )
        feats = [model.preprocess(t) for t in texts]
        value = loss_fn(feats, labels)
        value.backward()
        values.append(float(value))
        grads.append(next(p for p in model.parameters() if p.grad is not None).grad.clone())
    assert abs(values[0] - values[1]) < 1e-4
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_a_copy_of_the_anchors_own_positive_is_not_its_negative():
    # Two different queries on the same document D (SQuAD: several questions per paragraph), and a third row
    # whose negative is D. Labels: [group, positive doc id, negative doc id].
    d, e, f = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.6, 0.8])
    q0, q1, q2 = torch.tensor([0.8, 0.6]), torch.tensor([0.6, 0.8]), torch.tensor([0.0, 1.0])
    anchors = torch.stack([q0, q1, q2])
    positives, negatives = torch.stack([d, d, e]), torch.stack([e, f, d])
    labels = torch.tensor([[0, 1, 2], [1, 1, 3], [2, 2, 1]])
    loss = DualViewMultipleNegativesRankingLoss(nn.Identity(), scale=1.0, similarity_fct=_dot)
    got = loss.compute_loss_from_embeddings([anchors, positives, negatives], labels)
    s = lambda q, x: float(q @ x)  # noqa: E731
    # row 0: target D; D at row 1 and D as row 2's negative are masked -> {D, E(pos 2), E(neg 0), F}
    r0 = -math.log(math.exp(s(q0, d)) / sum(math.exp(s(q0, x)) for x in (d, e, e, f)))
    r1 = -math.log(math.exp(s(q1, d)) / sum(math.exp(s(q1, x)) for x in (d, e, e, f)))
    # row 2: target E; row 0's negative is a copy of E (masked) -> {D, D, E, F, D}
    r2 = -math.log(math.exp(s(q2, e)) / sum(math.exp(s(q2, x)) for x in (d, d, e, f, d)))
    assert abs(got.item() - (r0 + r1 + r2) / 3) < 1e-6
    group_only = loss.compute_loss_from_embeddings([anchors, positives, negatives], labels[:, 0])
    assert abs(group_only.item() - got.item()) > 0.05  # without document ids the copies count as negatives
