"""The answering engine: a question and a city in, a sourced answer in the person's language out."""

from __future__ import annotations

import logging

from nlu import Classification, IntentScore, NLUClient, NLUError, NLUUnavailable, letter_count

from .i18n import Catalogues
from .knowledge import EMERGENCY_KEY, KnowledgeBase
from .language import Detection, LanguageDetector, native_name
from .lexical import LANGUAGE_NEIGHBOURS, LANGUAGE_SHARE_DECIDES, TOPIC_NEIGHBOURS, LexicalMatcher
from .replies import InvalidQuestion, Outcome, Reply, UnknownCity
from .settings import NLUSettings, Settings

__all__ = ["Engine", "InvalidQuestion", "Outcome", "Reply", "UnknownCity"]

logger = logging.getLogger(__name__)

EMERGENCY = EMERGENCY_KEY
HANDOFF = "human_handoff"
OUT_OF_SCOPE = "out_of_scope"
# Questions longer than this are classified on their beginning (the model also classifies each
# sentence); danger signals are looked for in the whole message, however long.
MAX_CLASSIFIED_CHARS = 4000


class Engine:
    """Detects the language, classifies the question and looks the answer up.

    The engine holds no per-person state: the caller passes the person's current language as the
    prior and keeps the returned ``Reply.language`` for the next message.
    """

    def __init__(
        self,
        settings: Settings,
        knowledge: KnowledgeBase,
        nlu: NLUClient | None,
        detector: LanguageDetector,
        catalogues: Catalogues,
    ) -> None:
        self.settings = settings
        self.kb = knowledge
        self.nlu = nlu
        self.detector = detector
        self.catalogues = catalogues
        self._content_keys = set(knowledge.taxonomy.content_keys)
        self._lexical: LexicalMatcher | None = None

    # --- helpers ---------------------------------------------------------------------------------

    def gettext(self, language: str, message: str) -> str:
        return self.catalogues[language].gettext(message)

    def city_name(self, city: str, language: str) -> str:
        spec = self.kb.cities.get(city)
        return spec.display_name(language) if spec else city.title()

    def check_city(self, city: str) -> None:
        if city not in self.settings.cities:
            raise UnknownCity(
                f"unknown city '{city}'; this deployment serves: {', '.join(self.settings.cities)}"
            )

    def conversation_text(self, key: str, city: str, language: str) -> str:
        """The engine's own reply for a conversation key (front ends may do more, e.g. show a picker)."""
        _ = self.catalogues[language].gettext
        name = self.city_name(city, language)
        texts = {
            # TRANSLATORS: {city} is the city's name in the person's language.
            "greet": _(
                "Hello! I answer practical questions about living in {city}: residence and work permits, "
                "housing, schools, health care, work and free legal help. Type your question in your "
                "own words."
            ),
            "goodbye": _("Goodbye, and good luck! Write any time you have a question."),
            "thanks": _("You are welcome. Is there anything else I can help with?"),
            "bot_capabilities": _(
                "I answer practical questions about living in {city}: residence and work permits, housing, "
                "schools, health care, work, legal help and integration services. Every answer links to "
                "its official source. When I cannot help, I can pass you to a person."
            ),
            "change_language": _("To change the language, choose it from the list of languages."),
            "change_city": _("To change the city, choose it from the list of cities."),
            HANDOFF: _("A caseworker from a partner organisation in {city} can help you with this."),
            OUT_OF_SCOPE: _(
                "Sorry, I can only help with questions about living in {city} as a foreigner: permits, "
                "housing, schools, health, work and legal help. Try asking in other words, or ask to "
                "talk to a person."
            ),
        }
        return texts.get(key, texts[OUT_OF_SCOPE]).format(city=name)

    def _validate(self, text: str, language: str) -> str:
        _ = self.catalogues[language].gettext
        cleaned = "".join(c if c.isprintable() or c in "\n\t" else " " for c in text).strip()
        if not cleaned:
            raise InvalidQuestion("empty", _("Please type your question in a few words."))
        if letter_count(cleaned) == 0:
            raise InvalidQuestion(
                "no_letters",
                _("I can only read text. Please type your question in words, or ask to talk to a person."),
            )
        return cleaned[:MAX_CLASSIFIED_CHARS]

    # --- the main entry point --------------------------------------------------------------------

    async def ask(self, text: str, city: str, prior: str | None = None) -> Reply:
        """Answer ``text`` for ``city``; ``prior`` is the person's current language, if known.

        Raises ``UnknownCity`` and ``InvalidQuestion``; an unreachable NLU server gives an
        ``UNAVAILABLE`` reply rather than an exception (or the emergency reply, when a danger signal
        is in the text: that needs no model).
        """
        self.check_city(city)
        prior = prior if prior in self.settings.languages else None
        cleaned = self._validate(text, prior or self.settings.default_language)
        signal = self.kb.safety.signals.find(text)
        if not self.kb.has_content(city):
            detection = self.detector.detect(cleaned, prior)
            _ = self.catalogues[detection.language].gettext
            return Reply(
                Outcome.NO_CONTENT,
                city,
                detection.language,
                _("Sorry, there is no information for {city} yet. Please ask to talk to a person.").format(
                    city=self.city_name(city, detection.language)
                ),
                handoff=False,
                detection=detection,
            )
        try:
            if self.nlu is None:
                raise NLUUnavailable("no NLU client")
            result = await self.nlu.classify(cleaned[:MAX_CLASSIFIED_CHARS])
        except NLUError as exc:
            logger.warning("NLU unavailable: %s", type(exc).__name__)
            return self.without_model(cleaned, city, prior, signal is not None)
        return self.reply_for(cleaned, city, prior, result, signal=signal is not None)

    def without_model(self, text: str, city: str, prior: str | None, signal: bool | None = None) -> Reply:
        """The reply when the model cannot be asked: the emergency numbers when a danger signal is in
        the text or its nearest examples are emergency situations ("words"); otherwise the closest
        topics by their words, the menu and a person (``signal``: None = look for one)."""
        nlu = self.settings.nlu
        # One search serves the language, the emergency share and the topics.
        nearest = self.lexical.neighbours(
            text, max(TOPIC_NEIGHBOURS, LANGUAGE_NEIGHBOURS, nlu.degraded_emergency_neighbours)
        )
        # The nearest examples' languages stand in for the model's language identifier.
        detection = self.detector.detect(
            text, prior, hint=nearest.languages(LANGUAGE_NEIGHBOURS), hint_confidence=LANGUAGE_SHARE_DECIDES
        )
        language = detection.language
        if signal is None:
            signal = self.kb.safety.signals.find(text) is not None
        if signal:
            return self._emergency(city, language, detection, "signal")
        if nearest.share(EMERGENCY, nlu.degraded_emergency_neighbours) >= nlu.degraded_emergency_share:
            return self._emergency(city, language, detection, "words")
        return self.degraded(text, city, language, detection, self.lexical.topics(nearest, nlu.alternatives))

    @property
    def lexical(self) -> LexicalMatcher:
        """The fallback index of every example by its words (built at start-up by ``Services``)."""
        if self._lexical is None:
            examples = [
                (key, text, lang)
                for lang in self.kb.texts
                for key, text in (*self.kb.examples(lang), *self.kb.detector_negatives(lang))
            ]
            self._lexical = LexicalMatcher(examples, self._content_keys)
        return self._lexical

    def degraded(
        self,
        text: str,
        city: str,
        language: str,
        detection: Detection | None,
        alternatives: list[IntentScore] | None = None,
    ) -> Reply:
        """The model cannot be asked and nobody seems in danger: offer the closest topics by their
        words (``alternatives``, when already found), and a person."""
        _ = self.catalogues[language].gettext
        if alternatives is None:
            alternatives = self.lexical.best(text, self.settings.nlu.alternatives)
        if not alternatives:
            return Reply(
                Outcome.UNAVAILABLE,
                city,
                language,
                _(
                    "Sorry, I cannot understand questions right now because of a technical problem. "
                    "Please try again in a few minutes, or ask to talk to a person."
                ),
                detection=detection,
                degraded=True,
            )
        return Reply(
            Outcome.CLARIFY,
            city,
            language,
            _(
                "I cannot fully understand questions right now because of a technical problem. Is your "
                "question about one of these topics? You can also ask to talk to a person."
            ),
            key=alternatives[0].key,
            confidence=0.0,
            alternatives=alternatives,
            detection=detection,
            degraded=True,
        )

    def reply_for(
        self,
        text: str,
        city: str,
        prior: str | None,
        result: Classification,
        signal: bool | None = None,
        over: bool | None = None,
    ) -> Reply:
        """The reply to ``text`` once the model has classified it (``signal``, ``over``: None = look
        for a danger signal, a "danger over" phrase)."""
        signals = self.kb.safety.signals
        if signal is None:
            signal = signals.find(text) is not None
        if over is None:
            over = signals.over(text) is not None
        detection = self.detector.detect(text, prior, hint=result.languages)
        return self.decide(result, city, detection.language, detection, signal=signal, over=over)

    def alternatives(self, result: Classification, exclude: str | None = None) -> list[IntentScore]:
        """Keys a person could pick instead: content keys and 'talk to a person'."""
        nlu = self.settings.nlu
        pickable = self._content_keys | {HANDOFF}
        return [
            score
            for score in result.ranking
            if score.key in pickable
            and score.key != exclude
            and score.confidence >= nlu.alternative_min_confidence
        ][: nlu.alternatives]

    def urgency(
        self, result: Classification, signal: bool = False, nlu: NLUSettings | None = None, over: bool = False
    ) -> str | None:
        """Why the message may be about someone in danger, or None.

        "signal": a danger signal anywhere in the text; "detector": the emergency detector on the whole
        message; "sentence": a sentence that the model itself reads as an emergency; "key": the model's
        best key is the emergency (at any confidence: recall first), or its probability is high
        enough. Sentences count only through the model's own key for them: the detector's score on
        single sentences of sad but safe stories raised too many false alarms. ``over``: the message
        says the danger is past or was never real ("years ago, now I am safe"; content/safety/'s
        "danger_over" phrases), so a danger word or one sentence ("my ex beat me badly") does not raise
        the alarm on its own; the model's reading of the whole message still does. ``nlu``: other
        thresholds than config.yml's (``python -m bot tune`` tries many).
        """
        nlu = nlu or self.settings.nlu
        if signal and not over:
            return "signal"
        if result.emergency_whole >= nlu.emergency_detector_threshold:
            return "detector"
        if not over and any(
            p.key == EMERGENCY and p.confidence >= nlu.emergency_sentence_confidence for p in result.parts
        ):
            return "sentence"
        if result.key == EMERGENCY or self._emergency_probability(result) >= nlu.emergency_threshold:
            return "key"
        return None

    @staticmethod
    def _emergency_probability(result: Classification) -> float:
        """The model's probability of the emergency for the whole message."""
        return next((s.confidence for s in result.ranking if s.key == EMERGENCY), 0.0)

    @staticmethod
    def concern(result: Classification) -> float:
        """How near the message comes to someone being in danger, below the alarm: the highest of the
        emergency detector's score (the whole message or a sentence) and the model's probability of
        the emergency (the whole message or a sentence)."""
        return max(
            result.emergency,
            Engine._emergency_probability(result),
            *(p.confidence for p in result.parts if p.key == EMERGENCY),
        )

    def _emergency(
        self, city: str, language: str, detection: Detection | None, reason: str, confidence: float = 1.0
    ) -> Reply:
        reply = self.answer_key(EMERGENCY, city, language, confidence, detection)
        reply.urgent, reply.handoff, reply.urgent_reason = True, True, reason
        return reply

    def _on_topic(self, key: str, confidence: float, nearest: float | None) -> bool:
        """A confident prediction of a content key that is also close to a real example of it."""
        nlu = self.settings.nlu
        if confidence < nlu.answer_threshold:
            return False
        return key not in self._content_keys or nearest is None or nearest >= nlu.nearest_min

    def _best_part(self, result: Classification) -> tuple[str, float] | None:
        """The most confident content key among a long message's sentences, if one is sure enough.

        Never the emergency: whether a sentence means danger is ``urgency``'s to say, with the
        thresholds ``make tune`` chose (a sentence read as an emergency below
        ``emergency_sentence_confidence`` answered with the emergency numbers all the same: "this
        office is killing me" raised the alarm that way, past every tuned threshold)."""
        candidates = [
            (part.confidence, part.key)
            for part in result.parts
            if part.key in self._content_keys
            and part.key != EMERGENCY
            and self._on_topic(part.key, part.confidence, part.nearest)
        ]
        if not candidates:
            return None
        confidence, key = max(candidates)
        return key, confidence

    def decide(
        self,
        result: Classification,
        city: str,
        language: str,
        detection: Detection | None = None,
        signal: bool = False,
        nlu: NLUSettings | None = None,
        over: bool = False,
    ) -> Reply:
        """Turn a classification into a reply, applying the thresholds from ``config.yml`` (or ``nlu``).

        An emergency anywhere in the message wins (the emergency numbers first, the answer to any other
        question after them). Otherwise the whole message's key, when the model is sure of it and the
        message is close to real examples of it; else the most confident sentence of a long message.
        A reply that is not an answer (the bot was unsure, or the message was thanks, a goodbye…) to a
        message that came near the alarm (``concern``) ends with the emergency number and a person:
        farewells and danger told as nothing mostly get no confident answer. So does any reply to a
        message whose alarm a "danger over" phrase held back (``over``, see ``urgency``).
        """
        nlu = nlu or self.settings.nlu
        reason = self.urgency(result, signal, nlu, over)
        main = self._decide_topic(result, city, language, detection)
        if reason is None:
            main.caution = (
                main.outcome is not Outcome.ANSWER and self.concern(result) >= nlu.emergency_caution_threshold
            ) or (over and self.urgency(result, signal, nlu) is not None)
            return main
        reply = self._emergency(city, language, detection, reason, result.confidence)
        if main.outcome is Outcome.ANSWER and main.key != EMERGENCY:
            reply.followup = main
        return reply

    def _decide_topic(
        self, result: Classification, city: str, language: str, detection: Detection | None
    ) -> Reply:
        key, confidence = result.key, result.confidence
        confident = self._on_topic(key, confidence, result.nearest)
        if not confident or key not in self._content_keys:
            part = self._best_part(result)
            if part is not None and (not confident or key in {OUT_OF_SCOPE, "greet", "thanks", "goodbye"}):
                key, confidence = part
                confident = True
        if not confident:
            alternatives = self.alternatives(result)
            _ = self.catalogues[language].gettext
            if not alternatives:
                return Reply(
                    Outcome.OUT_OF_SCOPE,
                    city,
                    language,
                    self.conversation_text(OUT_OF_SCOPE, city, language),
                    key=key,
                    confidence=confidence,
                    detection=detection,
                )
            return Reply(
                Outcome.CLARIFY,
                city,
                language,
                _("I am not sure I understood. Did you mean one of these?"),
                key=key,
                confidence=confidence,
                alternatives=alternatives,
                detection=detection,
            )
        if key in self._content_keys:
            return self.answer_key(key, city, language, confidence, detection, result)
        outcome = {OUT_OF_SCOPE: Outcome.OUT_OF_SCOPE, HANDOFF: Outcome.HANDOFF}.get(
            key, Outcome.CONVERSATION
        )
        return Reply(
            outcome,
            city,
            language,
            self.conversation_text(key, city, language),
            key=key,
            confidence=confidence,
            handoff=key == HANDOFF,
            detection=detection,
            alternatives=self.alternatives(result, exclude=key) if key == OUT_OF_SCOPE else [],
        )

    def answer_key(
        self,
        key: str,
        city: str,
        language: str,
        confidence: float = 1.0,
        detection: Detection | None = None,
        result: Classification | None = None,
    ) -> Reply:
        """The knowledge-base reply for a key (also used when a person picks a key from a menu)."""
        _ = self.catalogues[language].gettext
        answer = self.kb.answer(city, key, language)
        urgent = key == EMERGENCY
        alternatives = self.alternatives(result, exclude=key) if result else []
        if answer is None:
            return Reply(
                Outcome.NO_CONTENT,
                city,
                language,
                _("Sorry, I have no information on this for {city} yet. A person can help you.").format(
                    city=self.city_name(city, language)
                ),
                key=key,
                confidence=confidence,
                handoff=urgent,
                urgent=urgent,
                detection=detection,
                alternatives=alternatives,
            )
        notice = None
        if answer.is_fallback:
            # TRANSLATORS: both placeholders are language names, e.g. "Українська" and "English".
            notice = _("This answer is not yet available in {language}; here it is in {fallback}.").format(
                language=native_name(language), fallback=native_name(answer.language)
            )
        return Reply(
            Outcome.ANSWER,
            city,
            language,
            answer.text,
            key=key,
            confidence=confidence,
            answer=answer,
            notice=notice,
            handoff=urgent,
            urgent=urgent,
            detection=detection,
            alternatives=alternatives,
        )
