"""Integration: a real Rasa server with a model trained from content/, on 127.0.0.1.

One server is started for the whole session (training first if the content changed). Command-line
tests run the real ``python -m bot`` in a subprocess; it finds the same server through the state file
that ``nlu serve`` writes, as on a developer's machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest

from bot.engine import Outcome
from bot.render import review_note
from bot.runtime import Services, rasa_project, training_examples, training_keys, var_dir
from bot.settings import ROOT
from bot.tools.evaluation import evaluate, evaluate_realistic
from nlu import NLUClient, NLUUnavailable, free_port

from .emergencies import EMERGENCY_SITUATIONS

pytestmark = pytest.mark.rasa

# The held-out questions (in the training examples' voice): at least 92 % overall and 88 % in every
# language, the floors of the NLU work's goals (`make eval` gives the full report). With the eight
# keys added in the same round, Arabic fell from 90.4 % to 89.0 %; the realistic set below gates
# every language at 88 % too.
MIN_ACCURACY = 0.88
MIN_ACCURACY_OVERALL = 0.92
# Gates on the realistic set, overall: (figure, bound, higher is better). `make eval` reports the
# goals of the NLU work (bot/tools/realistic.py GOALS); these gates sit just under what the shipped
# model reaches (top-1 95.9 %, confidently wrong 1.1 %, emergencies 99.7 %, false alarms 2.6 %,
# off-topic 95.5 %, false fallback 0.1 %, language 98.1 %), so a change that makes understanding
# worse fails the suite. With 60 emergency situations per language in content/safety/ the model
# missed 6 emergencies with 1.6 % false alarms; with 85 it misses 1 with 2.6 %. A missed emergency
# is the worse failure, so the recall gate went up and the false-alarm gate with it. With the
# detector threshold chosen on the development set (0.25) false alarms were 2.2 %, emergencies 322/323;
# with min_df 2, transliteration weighting, 30 more not-emergencies per language and the threshold
# the development set then chose (0.45): top-1 96.6 %, false alarms 1.8 %, emergencies 322/323.
# With the danger signals made consistent across languages, the sentence confidence tune then chose
# (0.7) and the detector's settings chosen by cross-validation (docs/nlu.md): top-1 96.8 %, false
# alarms 0.9 %, emergencies 322/323. The set then got a second round written after all that tuning
# (content/realistic/README.md: 160 emergencies, 100 distressing non-emergencies sharing words with
# danger): that model caught 150/160 of the new emergencies. With 14 indirect emergencies and 6
# not-emergencies more per language in content/safety/ and the threshold tune chose (0.25): 481/483
# emergencies (the new round 158/160), false alarms 2.3 % (first round 1.6 %, new distress 11 %).
# A third round, written by a new writer after all of the above and measured once (160 emergencies,
# 100 distressing messages full of danger words: "this office is killing me", grief, past violence):
# 156/160 of its emergencies, but 38 of its 100 distressing messages raised the alarm. All rounds:
# top-1 94.9 %, emergencies 637/643 (99.1 %), false alarms 4.7 % (ordinary questions 0.8 %, the 280
# distressing messages 21 %). The gates follow the harder set, not a worse model.
# A fourth round (another new writer; per language 16 emergencies, 10 distressing, 6 ordinary),
# measured once on the same model: 153/160 emergencies, 22/160 false alarms. With a sentence read as
# the emergency alarming only through the tuned threshold and danger words in the past tense or
# about someone else kept from counting as danger signals: all rounds top-1 94.9 %, emergencies
# 790/803 (98.4 %), false alarms 5.1 %. The development set then got 80 buried or understated
# emergencies and make tune chose emergency_sentence_confidence 0.5 (recall first). A fifth round
# (another new writer) measured once with it: 156/160 emergencies, 28/160 false alarms. All five
# rounds: top-1 95.0 %, emergencies 949/963 (98.5 %), false alarms 7.7 % (distressing 25 %).
# With 12 situations and 5-6 not-emergencies more per language in content/safety/ (the kinds the
# fourth and fifth rounds missed) and the thresholds make tune then chose (0.45, 0.4, 0.6): top-1
# 94.8 %, emergencies 951/963 (98.8 %), false alarms 6.4 % (distressing 21 %).
# A sixth round (another new writer, the fourth round's format) measured 159/160 emergencies and
# 27/161 false alarms on that model. With 12 situations and 10 not-emergencies more per language (the
# kinds rounds 1-5 still missed) and make tune's detector threshold 0.25: round 6 160/160, 31/161;
# all six rounds top-1 94.2 %, emergencies 1116/1123 (99.4 %), false alarms 8.3 % (rounds 1-5 6.4 ->
# 7.3 %: the new examples cost 12 false alarms there at the old thresholds, the lower detector
# threshold 4 more, for 5 more emergencies). Recall first: the gates follow.
# A seventh round (another new writer; 16 emergencies with at least eight hard ones, 10 distressing
# messages full of danger words, 6 ordinary, per language) measured 159/160 and 38/160 false alarms
# on that model. With the seventh safety round and make tune's thresholds (0.25, 0.3, 0.6; ties within
# half a percent of the development set's false alarms go to the lower thresholds): round 7 160/160,
# 38/160; all seven rounds top-1 93.6 % (the 100 new distressing messages: 79 % of that style is
# answered right), emergencies 1278/1283 (99.6 %), false alarms 9.7 % (distressing 27 %).
# An eighth round (160/160, 44/178 before; 160/160, 39/178 after) and a ninth made of danger told
# with the past (100 emergencies that also speak of the past or of safety, 100 messages where the
# danger is over: 99/100, 31/100): all nine rounds top-1 93.3 %, emergencies 1539/1543 (99.7 %),
# false alarms 10.8 % (distressing 27 %, a fifth of the set's other messages). The false-alarm gate
# follows the harder set, and so does off-topic recall (92.8 %: a ninth-round message that asks
# nothing, a brother's death on the way to the border two years ago, raises the alarm; near-miss
# off-topic questions 96.5 %).
REALISTIC_GATES = [
    ("top1", 0.93, True),
    ("confident_wrong", 0.02, False),
    ("emergency_recall", 0.99, True),
    ("false_alarms", 0.115, False),
    ("offtopic_recall", 0.92, True),
    ("false_fallback", 0.01, False),
    ("language", 0.97, True),
]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NLU_URL", "TELEGRAM_BOT_TOKEN"}}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )


async def test_server_is_on_loopback_and_refuses_requests_without_a_valid_jwt(services: Services) -> None:
    assert services.server is not None and services.server.host == "127.0.0.1"
    url = services.server.url
    forged = jwt.encode(
        {"user": {"username": "x", "role": "admin"}}, "not-the-secret-" * 4, algorithm="HS256"
    )
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.post("/model/parse", json={"text": "hi"})).status_code == 401
        assert (await http.get("/status")).status_code == 401
        assert (await http.post("/model/parse?token=guess", json={"text": "hi"})).status_code == 401
        bad = await http.post(
            "/model/parse", json={"text": "hi"}, headers={"Authorization": f"Bearer {forged}"}
        )
        assert bad.status_code == 401
        # Model loading over HTTP (the CVE-2024-49375 path) is closed to anyone without the secret.
        assert (await http.put("/model", json={"model_file": "/tmp/x.tar.gz"})).status_code == 401


async def test_messages_parsed_at_once_get_the_same_answers_as_one_by_one(services: Services) -> None:
    # The server parses several messages in parallel threads (nlu/runtime/serve.py), each with its
    # own sentence-encoder instance: answers must not depend on what else is being parsed.
    texts = [text for lang in ("en", "ar", "ru") for _, text in list(services.kb.examples(lang))[::400][:8]]
    texts.append("Hello. I live here two years. My permit expires soon. He is beating me right now, help.")
    one_by_one = [await services.nlu.parse(t) for t in texts]
    at_once = await asyncio.gather(*(services.nlu.parse(t) for t in texts))
    assert len(texts) >= 20 and one_by_one == list(at_once)


async def test_model_was_trained_from_the_current_content(services: Services) -> None:
    status = await services.nlu.status()
    assert Path(status["model_file"]).name == rasa_project(services.settings).model_path().name


@pytest.mark.parametrize(
    ("text", "city", "lang", "key", "language"),
    [
        ("jak prodloužit povolení k pobytu", "prague", None, "permit.renewal", "cs"),
        ("where can I sleep tonight, I have nowhere to go", "sofia", "en", "housing.shelter", "en"),
        ("як записати дитину до школи", "kosice", "uk", "school.enrolment", "uk"),
        ("нужен бесплатный юрист", "osijek", "ru", "services.legal_aid", "ru"),
        ("أين أجد طبيب عام", "rubano", "ar", "health.doctor", "ar"),
        ("چطور بیمه درمانی بگیرم", "prague", "fa", "health.insurance", "fa"),
        ("kako naći posao u Osijeku", "osijek", "hr", "work.job_search", "hr"),
        ("rinnovo permesso di soggiorno", "rubano", "it", "permit.renewal", "it"),
    ],
)
async def test_questions_in_several_languages_get_the_city_answer(
    services: Services, text: str, city: str, lang: str | None, key: str, language: str
) -> None:
    reply = await services.engine.ask(text, city, lang)
    assert reply.key == key, reply.alternatives
    assert reply.outcome is Outcome.ANSWER and reply.language == language
    expected = services.kb.answer(city, key, language)
    assert expected is not None and reply.text == expected.text and reply.answer is not None
    assert reply.answer.sources == expected.sources


async def test_held_out_accuracy_in_every_language(services: Services) -> None:
    report = await evaluate(services)
    assert set(report.per_language) == set(services.settings.languages)
    low = {
        lang: round(report.accuracy(lang), 3)
        for lang in report.per_language
        if report.accuracy(lang) < MIN_ACCURACY
    }
    assert low == {}, report.markdown()
    correct = sum(counts["correct"] for counts in report.per_language.values())
    total = sum(counts["total"] for counts in report.per_language.values())
    assert correct / total >= MIN_ACCURACY_OVERALL, report.markdown()


async def test_unrelated_questions_are_not_answered_with_content(services: Services) -> None:
    for text in ("what's the weather tomorrow", "who won the football match", "tell me a joke"):
        reply = await services.engine.ask(text, "prague", "en")
        assert reply.outcome in {Outcome.OUT_OF_SCOPE, Outcome.CLARIFY}, (text, reply.key)


async def test_unreachable_server_is_reported_as_unavailable() -> None:
    async with NLUClient(f"http://127.0.0.1:{free_port()}", "x" * 32, timeout=2) as client:
        with pytest.raises(NLUUnavailable):
            await client.classify("hello")


async def test_training_is_skipped_when_nothing_changed(services: Services) -> None:
    messages: list[str] = []
    kb = services.kb
    path = rasa_project(services.settings).ensure_model(
        training_keys(kb), training_examples(kb), messages.append
    )
    assert messages == [] and path.exists()


async def test_generated_training_data_passes_rasa_data_validate(services: Services) -> None:
    rasa_project(services.settings).validate()


def test_ask_cli_prints_an_answer_for_a_person(services: Services) -> None:
    result = run_cli("ask", "--city", "prague", "jak prodloužit povolení k pobytu")
    assert result.returncode == 0, result.stderr
    expected = services.kb.answer("prague", "permit.renewal", "cs")
    assert expected is not None and expected.text in result.stdout
    assert all(url in result.stdout for url in expected.sources)
    # The review note, exactly: no partner has checked it yet, and the day it was last updated.
    _ = services.catalogues["cs"].gettext
    assert review_note(_, expected, "cs") in result.stdout


def test_ask_jsonl_answers_every_city_in_order_and_survives_bad_lines(services: Services) -> None:
    lines = [
        {"text": "how do I renew my residence permit", "city": city, "lang": "en"}
        for city in services.settings.cities
    ]
    raw = [json.dumps(line) for line in lines]
    raw.insert(2, "this is not json")
    raw.insert(3, json.dumps({"text": "hello", "city": "atlantis"}))
    raw.insert(4, json.dumps({"text": "   ", "city": "prague"}))
    raw.insert(5, json.dumps({"city": "prague"}))
    raw.append(json.dumps({"text": "😀😀😀", "city": "sofia", "lang": "uk"}))
    raw.append(json.dumps({"text": "x" * 10_000, "city": "sofia"}))
    result = run_cli("ask", "--jsonl", stdin="\n".join(raw) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(raw)
    answers = [out[i] for i in (0, 1, 6, 7, 8)]
    for city, record in zip(services.settings.cities, answers, strict=True):
        assert record["key"] == "permit.renewal" and record["city"] == city
        assert set(record) >= {
            "key",
            "confidence",
            "language",
            "alternatives",
            "answer",
            "sources",
            "handoff",
        }
        assert record["answer"] and record["sources"] and record["handoff"] is False
        assert 0 < record["confidence"] <= 1 and record["language"] == "en"
    assert "JSON" in out[2]["error"] and "atlantis" in out[3]["error"]
    assert out[4]["error"] and '"text"' in out[5]["error"]
    assert "error" in out[9] and "error" not in out[10]


def test_run_without_a_token_opens_the_terminal_chat(services: Services) -> None:
    result = run_cli("run", stdin="2\n1\nhow do I renew my residence permit\n\n/city\n3\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "terminal chat" in result.stderr
    engine = services.engine
    assert engine.conversation_text("greet", "prague", "en") in result.stdout
    expected = services.kb.answer("prague", "permit.renewal", "en")
    assert expected is not None and expected.text in result.stdout
    assert "Please type your question in a few words." in result.stdout  # the empty line


async def test_the_nlu_server_log_has_no_message_texts(services: Services) -> None:
    secret_question = "zzprivacyprobe how do I renew my residence permit"
    await services.engine.ask(secret_question, "prague", "en")
    log = (var_dir(services.settings) / "nlu-server.log").read_text(errors="replace")
    assert "zzprivacyprobe" not in log


@pytest.mark.parametrize(("lang", "text"), EMERGENCY_SITUATIONS)
async def test_every_emergency_situation_gets_the_emergency_numbers(
    services: Services, lang: str, text: str
) -> None:
    reply = await services.engine.ask(text, "prague", None)
    assert reply.urgent and reply.key == "safety.emergency", (reply.key, reply.outcome)
    assert reply.text == services.kb.answer("prague", "safety.emergency", reply.language).text  # type: ignore[union-attr]


async def test_realistic_questions_reach_the_gates(services: Services) -> None:
    """The realistic evaluation set (written apart from training) gates the suite like the held-out set."""
    report = await evaluate_realistic(services)
    overall = report.as_dict()["languages"]["all"]
    assert overall["n"] >= 1500
    failed = {
        name: overall[name]
        for name, gate, higher in REALISTIC_GATES
        if (overall[name] < gate if higher else overall[name] > gate)
    }
    assert failed == {}, report.markdown()
    languages = report.as_dict()["languages"]
    below = {lang: row["top1"] for lang, row in languages.items() if row["top1"] < MIN_ACCURACY}
    assert below == {}, report.markdown()
