"""Classifiers over the TF-IDF and sentence-embedding features.

- ``EnsembleIntentClassifier``: one logistic regression on the sparse features and one on the dense
  features, their probabilities averaged (character n-grams and meaning are complementary). It also
  reports how close the message is to the nearest training example of the predicted key (off-topic
  questions that share words with a topic are far from every real example) and classifies each
  sentence of a long message.
- ``EmergencyDetector``: a recall-first binary detector "someone may be in danger", trained with
  balanced class weights on the emergency examples and situations, scored on the whole message and
  on each sentence, reported whatever key wins.
- ``LanguageIdentifier``: the language of the message from its character n-grams, trained on the
  examples' language; it knows Russian, Ukrainian and Bulgarian in Latin letters, Arabizi and
  Finglish because the examples include them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import INTENT, METADATA, METADATA_EXAMPLE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.linear_model import LogisticRegression

from ._common import PART_DENSE, PART_SPARSE, load_logreg, read_json, save_logreg, write_json

logger = logging.getLogger(__name__)

EMERGENCY = "safety.emergency"


def _features(message: Message) -> tuple[scipy.sparse.csr_matrix | None, np.ndarray | None]:
    sparse = message.get_sparse_features(TEXT)[1]
    dense = message.get_dense_features(TEXT)[1]
    return (
        scipy.sparse.csr_matrix(sparse.features) if sparse is not None else None,
        np.asarray(dense.features, dtype=np.float32) if dense is not None else None,
    )


def _stack(messages: list[Message]) -> tuple[scipy.sparse.csr_matrix | None, np.ndarray | None]:
    pairs = [_features(m) for m in messages]
    sparse = [p[0] for p in pairs]
    dense = [p[1] for p in pairs]
    return (
        scipy.sparse.vstack(sparse).tocsr() if pairs and all(s is not None for s in sparse) else None,
        np.vstack(dense) if pairs and all(d is not None for d in dense) else None,
    )


def _parts(message: Message) -> tuple[scipy.sparse.csr_matrix | None, np.ndarray | None]:
    return message.get(PART_SPARSE), message.get(PART_DENSE)


def _logreg(c: float, config: dict[str, Any], balanced: bool = True) -> LogisticRegression:
    return LogisticRegression(
        C=c,
        max_iter=config["max_iter"],
        class_weight="balanced" if balanced else None,
        random_state=config["random_state"],
        solver="lbfgs",
    )


class _TrainedComponent(GraphComponent):
    """Construction and storage shared by the three classifiers."""

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        models: dict[str, LogisticRegression] | None = None,
        extra: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.models: dict[str, LogisticRegression] = models or {}
        self.extra: dict[str, np.ndarray] = extra or {}

    @classmethod
    def required_components(cls) -> list[type]:
        return [Featurizer]

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> _TrainedComponent:
        return cls(config, model_storage, resource)

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            for name, model in self.models.items():
                save_logreg(model, directory / f"{name}.npz")
            for name, array in self.extra.items():
                np.save(directory / f"{name}.npy", array, allow_pickle=False)
            write_json(directory / "index.json", {"models": list(self.models), "extra": list(self.extra)})

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> _TrainedComponent:
        try:
            with model_storage.read_from(resource) as directory:
                index = read_json(directory / "index.json")
                models = {name: load_logreg(directory / f"{name}.npz") for name in index["models"]}
                extra = {
                    name: np.load(directory / f"{name}.npy", allow_pickle=False) for name in index["extra"]
                }
        except ValueError:
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, models, extra)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class EnsembleIntentClassifier(_TrainedComponent, IntentClassifier):
    """Averaged logistic regressions over sparse and dense features, with nearest-example distance."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "sparse_C": 10.0,
            "dense_C": 1.0,
            # Weight of the dense model's probabilities (0 = TF-IDF only, 1 = embeddings only).
            "dense_weight": 0.5,
            "max_iter": 1000,
            "random_state": 2718,
            "ranking_length": 10,
            # Labels that are no topic (e.g. the emergency detector's negatives): not learnt here.
            "ignore_intents": [],
            # Text in Latin letters in a language usually written in another script (Russian in
            # Latin letters, Arabizi, Finglish…), as the LanguageIdentifier earlier in the pipeline
            # tells it: the sentence encoder never learnt these spellings, so the dense model's
            # weight there is this instead (null: the same as everywhere).
            "transliterated_languages": [],
            "transliterated_dense_weight": None,
        }

    def train(self, training_data: TrainingData) -> Resource:
        ignored = set(self.config["ignore_intents"])
        examples = [
            e
            for e in training_data.intent_examples
            if e.get(INTENT) and e.get(TEXT) and e.get(INTENT) not in ignored
        ]
        if not examples:
            return self._resource
        labels = np.array([e.get(INTENT) for e in examples])
        sparse, dense = _stack(examples)
        weight = float(self.config["dense_weight"])
        if sparse is not None and weight < 1:
            self.models["sparse"] = _logreg(self.config["sparse_C"], self.config).fit(sparse, labels)
        if dense is not None and weight > 0:
            self.models["dense"] = _logreg(self.config["dense_C"], self.config).fit(dense, labels)
            # Nearest-example distance: the normalised training vectors and their labels.
            norms = np.linalg.norm(dense, axis=1, keepdims=True) + 1e-9
            self.extra["examples"] = (dense / norms).astype(np.float16)
            classes = sorted(set(labels))
            self.extra["example_labels"] = np.array([classes.index(x) for x in labels], dtype=np.int32)
            self.extra["label_names"] = np.array(classes)
            self._by_label = None
        self.persist()
        return self._resource

    def _dense_weight(self, message: Message) -> float:
        """The dense model's weight for this message: lower for transliterated text."""
        weight = self.config["transliterated_dense_weight"]
        if weight is None or not is_transliterated(message, self.config["transliterated_languages"]):
            return float(self.config["dense_weight"])
        return float(weight)

    def _probabilities(
        self, sparse: scipy.sparse.csr_matrix | None, dense: np.ndarray | None, weight: float
    ) -> tuple[np.ndarray, np.ndarray]:
        total: np.ndarray | None = None
        classes: np.ndarray | None = None
        for name, features, share in (("sparse", sparse, 1 - weight), ("dense", dense, weight)):
            model = self.models.get(name)
            if model is None or features is None or share <= 0:
                continue
            probabilities = model.predict_proba(features) * share
            classes = model.classes_
            total = probabilities if total is None else total + probabilities
        if total is None or classes is None:
            raise ValueError("the intent classifier is not trained")
        total = total / total.sum(axis=1, keepdims=True)
        return total, classes

    def _nearest(self, dense: np.ndarray | None, label: str) -> float | None:
        if dense is None or "examples" not in self.extra:
            return None
        rows = self._examples_of().get(label)
        if rows is None or not len(rows):
            return None
        vector = dense[0] / (np.linalg.norm(dense[0]) + 1e-9)
        return float(np.max(rows.astype(np.float32) @ vector))

    def _examples_of(self) -> dict[str, np.ndarray]:
        """The stored training examples of each key: contiguous float16 rows, grouped once.

        Selecting a key's rows out of all examples on every message cost ~6 ms of CPU per question;
        keeping a float32 copy of every example cost ~50 MiB of the NLU server's memory. Grouped by
        key, only the predicted key's rows are widened to float32, per message (~0.1 ms).
        """
        cached: dict[str, np.ndarray] | None = getattr(self, "_by_label", None)
        if cached is None:
            labels = self.extra["example_labels"]
            order = np.argsort(labels, kind="stable")
            grouped = np.ascontiguousarray(self.extra["examples"][order])
            bounds = np.searchsorted(labels[order], np.arange(len(self.extra["label_names"]) + 1))
            cached = {
                str(name): grouped[bounds[i] : bounds[i + 1]]
                for i, name in enumerate(self.extra["label_names"])
            }
            self._by_label = cached
        return cached

    def process(self, messages: list[Message]) -> list[Message]:
        if not self.models:
            return messages
        for message in messages:
            sparse, dense = _features(message)
            weight = self._dense_weight(message)
            probabilities, classes = self._probabilities(sparse, dense, weight)
            order = np.argsort(-probabilities[0])
            ranking = [{"name": str(classes[i]), "confidence": float(probabilities[0][i])} for i in order]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking[: self.config["ranking_length"]], add_to_output=True)
            message.set("nearest", self._nearest(dense, ranking[0]["name"]), add_to_output=True)
            part_sparse, part_dense = _parts(message)
            parts = []
            if part_sparse is not None or part_dense is not None:
                part_probabilities, _ = self._probabilities(part_sparse, part_dense, weight)
                for row in range(part_probabilities.shape[0]):
                    best = int(np.argmax(part_probabilities[row]))
                    name = str(classes[best])
                    nearest = self._nearest(
                        part_dense[row : row + 1] if part_dense is not None else None, name
                    )
                    parts.append(
                        {"name": name, "confidence": float(part_probabilities[row][best]), "nearest": nearest}
                    )
            message.set("parts", parts, add_to_output=True)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class EmergencyDetector(_TrainedComponent):
    """Probability that someone is in danger, on the whole message and on each sentence."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "C": 10.0,
            "max_iter": 1000,
            "random_state": 2718,
            "intent": EMERGENCY,
            # Curated "sounds bad but nobody is in danger" examples, and how much each counts next to
            # an ordinary question: there are few of them among thousands of questions.
            "hard_negatives": [],
            "hard_negative_weight": 1.0,
            # How much the sentence embeddings count next to the n-grams (their block is scaled by it).
            "dense_weight": 1.0,
        }

    def _combined(self, sparse: scipy.sparse.csr_matrix | None, dense: np.ndarray | None) -> Any:
        weight = float(self.config["dense_weight"])
        blocks = [
            b
            for b in (sparse, scipy.sparse.csr_matrix(dense * weight) if dense is not None else None)
            if b is not None
        ]
        return scipy.sparse.hstack(blocks).tocsr() if blocks else None

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        labels = np.array([e.get(INTENT) == self.config["intent"] for e in examples])
        if not examples or labels.all() or not labels.any():
            return self._resource
        features = self._combined(*_stack(examples))
        hard = set(self.config["hard_negatives"])
        weights = np.array(
            [float(self.config["hard_negative_weight"]) if e.get(INTENT) in hard else 1.0 for e in examples]
        )
        self.models["emergency"] = _logreg(self.config["C"], self.config).fit(
            features, labels, sample_weight=weights
        )
        self.persist()
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        model = self.models.get("emergency")
        if model is None:
            return messages
        positive = list(model.classes_).index(True) if True in list(model.classes_) else 1
        for message in messages:
            scores = [float(model.predict_proba(self._combined(*_features(message)))[0][positive])]
            part_features = self._combined(*_parts(message))
            if part_features is not None:
                scores += [float(s) for s in model.predict_proba(part_features)[:, positive]]
            best = int(np.argmax(scores))
            message.set(
                "emergency",
                {"score": scores[best], "part": best - 1 if best else None, "whole": scores[0]},
                add_to_output=True,
            )
        return messages


def is_transliterated(message: Message, languages: list[str]) -> bool:
    """The LanguageIdentifier's best guess is one of ``languages`` and most letters are Latin."""
    guesses = message.get("language") or []
    if not guesses or guesses[0].get("name") not in languages:
        return False
    letters = [c for c in message.get(TEXT) or "" if c.isalpha()]
    latin = sum(1 for c in letters if c < "\u0250")  # Basic Latin to Latin Extended-B
    return bool(letters) and latin * 2 > len(letters)


def _example_language(message: Message) -> str | None:
    metadata = message.get(METADATA) or {}
    example = metadata.get(METADATA_EXAMPLE) or {}
    return example.get("lang") if isinstance(example, dict) else None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LanguageIdentifier(_TrainedComponent):
    """The message's language from its character n-grams (transliteration included)."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"C": 10.0, "max_iter": 1000, "random_state": 2718, "ranking_length": 3}

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(TEXT) and _example_language(e)]
        languages = np.array([_example_language(e) for e in examples])
        if len(set(languages)) < 2:
            return self._resource
        sparse, _ = _stack(examples)
        if sparse is None:
            return self._resource
        self.models["language"] = _logreg(self.config["C"], self.config, balanced=False).fit(
            sparse, languages
        )
        self.persist()
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        model = self.models.get("language")
        if model is None:
            return messages
        for message in messages:
            sparse, _ = _features(message)
            if sparse is None:
                continue
            probabilities = model.predict_proba(sparse)[0]
            order = np.argsort(-probabilities)[: self.config["ranking_length"]]
            message.set(
                "language",
                [{"name": str(model.classes_[i]), "confidence": float(probabilities[i])} for i in order],
                add_to_output=True,
            )
        return messages
