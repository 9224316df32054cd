"""TF-IDF features: character n-grams within words plus word uni- and bigrams, sublinear tf.

Rasa's CountVectorsFeaturizer gives raw counts, and its LogisticRegressionClassifier cannot change
the regularisation (C=1): long messages then weigh more than short ones, and frequent n-grams drown
the telling ones. TF-IDF with sublinear tf and L2 normalisation, as scikit-learn users write it,
classifies the questions people really write markedly better (see docs/nlu.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer

from ._common import PART_SPARSE, PARTS, read_json, sentence_parts, write_json


def _vectorizers(config: dict[str, Any]) -> list[TfidfVectorizer]:
    return [
        TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(config["char_min_ngram"], config["char_max_ngram"]),
            min_df=config["min_df"],
            sublinear_tf=True,
            lowercase=False,  # the text is already normalised by the bot (nlu/_normalise.py)
            dtype=np.float32,
        ),
        TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, config["word_max_ngram"]),
            token_pattern=r"(?u)\b\w+\b",
            min_df=config["min_df"],
            sublinear_tf=True,
            lowercase=False,
            dtype=np.float32,
        ),
    ]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class TfidfFeaturizer(SparseFeaturizer, GraphComponent):
    """Sparse TF-IDF sentence features (and per-token features for DIET)."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **SparseFeaturizer.get_default_config(),
            "char_min_ngram": 2,
            "char_max_ngram": 5,
            "word_max_ngram": 2,
            "min_df": 1,
            # Per-token features are only needed by sequence models such as DIET.
            "sequence_features": False,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if config["char_min_ngram"] > config["char_max_ngram"]:
            raise ValueError("char_min_ngram must not be larger than char_max_ngram")

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        vectorizers: list[TfidfVectorizer] | None = None,
    ) -> None:
        super().__init__(execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self.vectorizers = vectorizers

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TfidfFeaturizer:
        return cls({**cls.get_default_config(), **config}, model_storage, resource, execution_context)

    # --- training ----------------------------------------------------------------------------

    def train(self, training_data: TrainingData) -> Resource:
        texts = [m.get(TEXT) for m in training_data.training_examples if m.get(TEXT)]
        self.vectorizers = _vectorizers(self._config)
        for vectorizer in self.vectorizers:
            vectorizer.fit(texts)
        self.persist()
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples, with_parts=False)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages, with_parts=True)
        return messages

    # --- features ----------------------------------------------------------------------------

    def transform(self, texts: list[str]) -> scipy.sparse.csr_matrix:
        assert self.vectorizers is not None
        return scipy.sparse.hstack([v.transform(texts) for v in self.vectorizers]).tocsr()

    def _featurize(self, messages: list[Message], with_parts: bool) -> None:
        if not self.vectorizers:
            return
        messages = [m for m in messages if m.get(TEXT)]
        if not messages:
            return
        sentences = self.transform([m.get(TEXT) for m in messages])
        for row, message in enumerate(messages):
            sequence = None
            if self._config["sequence_features"]:
                tokens = [t.text for t in message.get(TOKENS_NAMES[TEXT], [])] or [message.get(TEXT)]
                sequence = self.transform(tokens).tocoo()
            self.add_features_to_message(sequence, sentences[row].tocoo(), TEXT, message)
            if with_parts:
                parts = message.get(PARTS)
                if parts is None:
                    parts = sentence_parts(message.get(TEXT))
                    message.set(PARTS, parts)
                if parts:
                    message.set(PART_SPARSE, self.transform(parts))

    # --- persistence -------------------------------------------------------------------------

    def persist(self) -> None:
        assert self.vectorizers is not None
        with self._model_storage.write_to(self._resource) as directory:
            for i, vectorizer in enumerate(self.vectorizers):
                write_json(
                    directory / f"vocabulary-{i}.json", {k: int(v) for k, v in vectorizer.vocabulary_.items()}
                )
                np.save(directory / f"idf-{i}.npy", vectorizer.idf_.astype(np.float32), allow_pickle=False)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TfidfFeaturizer:
        config = {**cls.get_default_config(), **config}
        try:
            with model_storage.read_from(resource) as directory:
                vectorizers = _vectorizers(config)
                for i, vectorizer in enumerate(vectorizers):
                    vectorizer.vocabulary = read_json(directory / f"vocabulary-{i}.json")
                    vectorizer.vocabulary_ = vectorizer.vocabulary
                    vectorizer.idf_ = np.load(directory / f"idf-{i}.npy", allow_pickle=False)
        except ValueError:
            vectorizers = None  # not trained (no data): featurize nothing
        return cls(config, model_storage, resource, execution_context, vectorizers)
