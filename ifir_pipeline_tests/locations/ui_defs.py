"""The definitions the browser test's webserver loads: the same resources the test materialized with (read from
the JSON file named by IFIR_UI_FIXTURE), so the UI shows nothing stale after the test's completed chain."""

import json
import os

from ifir_pipeline.definitions import build_definitions
from ifir_pipeline.resources import DataSources, EvaluationSettings, QualitySettings, TrainingSettings


def fixture_resources(spec: dict) -> dict:
    return {
        "sources": DataSources(train=spec["train"], evaluation=spec["evaluation"]),
        "training": TrainingSettings(seeds=[1], batch_size=8, max_seq_length=32),
        "evaluation": EvaluationSettings(general=False),
        "quality": QualitySettings(min_accepted_share=0.3),
    }


if "IFIR_UI_FIXTURE" in os.environ:  # set only in the webserver's environment
    with open(os.environ["IFIR_UI_FIXTURE"]) as f:
        _spec = json.load(f)
    defs = build_definitions(_spec["root"], **fixture_resources(_spec))
