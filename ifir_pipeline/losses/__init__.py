from ifir_pipeline.losses.dual_view_ranking import DualViewMultipleNegativesRankingLoss

__all__ = ["DualViewMultipleNegativesRankingLoss"]
