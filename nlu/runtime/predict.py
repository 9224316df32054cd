"""Classify many texts with a trained model, in-process (for `make eval`'s comparison of pipelines).

Runs with the Rasa runtime's own Python. Reads JSON lines ``{"text": ...}`` on stdin and writes one
line of Rasa's parse result per input line. ``--baseline DATA`` instead trains the plain scikit-learn
pipeline a small organisation would write (TF-IDF over character n-grams within words and word
n-grams, sublinear tf, logistic regression with C=10) on the training data and uses that.
"""

import argparse
import asyncio
import json
import logging
import os
import sys


def baseline(data_file: str):
    import numpy as np
    import scipy.sparse
    import yaml
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    with open(data_file, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    texts, labels = [], []
    for block in data["nlu"]:
        for example in block["examples"]:
            texts.append(example["text"] if isinstance(example, dict) else str(example))
            labels.append(block["intent"])
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)
    features = scipy.sparse.hstack([chars.fit_transform(texts), words.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=10, max_iter=1000).fit(features, labels)

    def parse(text: str) -> dict:
        x = scipy.sparse.hstack([chars.transform([text]), words.transform([text])]).tocsr()
        probabilities = model.predict_proba(x)[0]
        order = np.argsort(-probabilities)[:10]
        ranking = [{"name": str(model.classes_[i]), "confidence": float(probabilities[i])} for i in order]
        return {"intent": ranking[0], "intent_ranking": ranking}

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--model", help="a model archive trained by this project")
    group.add_argument("--baseline", help="training data (data/nlu.yml) for the scikit-learn baseline")
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in sys.stdin if line.strip()]

    if args.baseline:
        parse = baseline(args.baseline)
        results = [parse(text) for text in texts]
    else:
        os.environ["LOG_LEVEL"] = "WARNING"
        from rasa.core.agent import Agent
        from rasa.utils.common import configure_logging_and_warnings
        from rasa.utils.log_utils import configure_structlog

        # Warnings only: Rasa logs message texts at debug level.
        configure_logging_and_warnings(logging.WARNING)
        configure_structlog(logging.WARNING)
        agent = Agent.load(args.model)

        async def run() -> list:
            return [await agent.parse_message(text) for text in texts]

        results = asyncio.run(run())
    keep = ("intent", "intent_ranking", "nearest", "emergency", "parts", "language")
    for result in results:
        print(json.dumps({k: result.get(k) for k in keep if k in result}, ensure_ascii=False))


if __name__ == "__main__":
    main()
