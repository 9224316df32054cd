"""Compare emergency-detector settings by 5-fold cross-validation on the training data alone.

Runs with the Rasa runtime's own Python (``python -m bot nlu detector-cv``). The development set has
too few false alarms from the detector to tell its settings apart, and the realistic set must stay
an evaluation; so each setting is trained on four fifths of the generated training data
(``data/nlu.yml``: example questions, emergency situations, not-emergencies) and scored on the
fifth, with exactly the features the pipeline uses (TF-IDF n-grams and the cached sentence
embeddings). Reported per setting, at the thresholds that catch 95, 97 and 99 % of the held-out
emergency examples: the share of held-out ordinary questions and of held-out not-emergencies that
would raise the alarm. Lower is better on both.

Usage: detector_cv.py PROJECT_DIR [C:HARD_NEGATIVE_WEIGHT:DENSE_WEIGHT ...]
"""

import json
import sys
from pathlib import Path

import numpy as np
import scipy.sparse
import yaml
from components.e5 import SentenceEmbeddingFeaturizer
from components.encoder import EmbeddingCache, load_encoder
from components.tfidf import TfidfFeaturizer, _vectorizers
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

EMERGENCY = "safety.emergency"
NOT_EMERGENCY = "safety.not_emergency"
LEVELS = (0.95, 0.97, 0.99)


def pipeline_config(project: Path) -> dict:
    """The TF-IDF, embedding and detector settings of the shipped pipeline."""
    steps = {step["name"]: step for step in yaml.safe_load((project / "config.yml").read_text())["pipeline"]}
    return {
        "tfidf": steps["components.tfidf.TfidfFeaturizer"],
        "e5": steps["components.e5.SentenceEmbeddingFeaturizer"],
        "detector": steps["components.classifiers.EmergencyDetector"],
    }


def training_data(project: Path) -> tuple[list[str], list[str]]:
    data = yaml.safe_load((project / "data" / "nlu.yml").read_text(encoding="utf-8"))
    texts, intents = [], []
    for block in data["nlu"]:
        for example in block["examples"]:
            texts.append(example["text"] if isinstance(example, dict) else str(example))
            intents.append(block["intent"])
    return texts, intents


def main() -> None:
    project = Path(sys.argv[1])
    config = pipeline_config(project)
    shipped = config["detector"]
    default = (shipped.get("C", 10), shipped.get("hard_negative_weight", 1), shipped.get("dense_weight", 1))
    settings = [tuple(float(v) for v in arg.split(":")) for arg in sys.argv[2:]] or [
        tuple(float(v) for v in default)
    ]
    texts, intents = training_data(project)
    vectorizers = _vectorizers({**TfidfFeaturizer.get_default_config(), **config["tfidf"]})
    for vectorizer in vectorizers:
        vectorizer.fit(texts)
    sparse = scipy.sparse.hstack([v.transform(texts) for v in vectorizers]).tocsr()
    e5 = {**SentenceEmbeddingFeaturizer.get_default_config(), **config["e5"]}
    raw = EmbeddingCache(load_encoder(e5["encoder"])).encode(texts)
    dense = ((raw - raw.mean(axis=0)) * float(e5["scale"])).astype(np.float32)
    emergency = np.array([i == EMERGENCY for i in intents])
    hard = np.array([i == NOT_EMERGENCY for i in intents])
    strata = np.where(hard, 0, np.where(emergency, 1, 2))
    folds = list(StratifiedKFold(5, shuffle=True, random_state=1).split(dense, strata))
    for c, hard_weight, dense_weight in settings:
        features = scipy.sparse.hstack([sparse, scipy.sparse.csr_matrix(dense * dense_weight)]).tocsr()
        scores = np.zeros(len(texts))
        for train, test in folds:
            model = LogisticRegression(
                C=c, max_iter=1000, class_weight="balanced", random_state=2718, solver="lbfgs"
            ).fit(features[train], emergency[train], sample_weight=np.where(hard[train], hard_weight, 1.0))
            scores[test] = model.predict_proba(features[test])[:, list(model.classes_).index(True)]
        caught = np.sort(scores[emergency])
        row = {"C": c, "hard_negative_weight": hard_weight, "dense_weight": dense_weight}
        for level in LEVELS:
            threshold = caught[int((1 - level) * len(caught))]
            row[f"questions@{level:.0%}"] = float(np.mean(scores[~hard & ~emergency] >= threshold))
            row[f"not_emergencies@{level:.0%}"] = float(np.mean(scores[hard] >= threshold))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
