"""``python -m bot eval --compare``: several NLU pipelines side by side on the same questions.

Each pipeline is trained on exactly the shipped training data (cached by content hash, like the
shipped model) and asked every realistic and held-out question in-process; the bot's own decision
logic (thresholds, emergency net, sentence logic, language choice) turns each classification into the
reply a person would get, so the figures compare like with like.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from nlu import Classification, RasaProject, normalise

from ..runtime import Services, rasa_project, training_examples, training_keys
from .realistic import RealisticReport, cities_for, load_realistic

__all__ = ["PIPELINES", "compare", "markdown"]

# name → (what it is, variant file in nlu/variants/ or None for special cases)
PIPELINES: dict[str, str] = {
    "baseline": "scikit-learn TF-IDF + logistic regression outside Rasa (C=10)",
    "previous": "previous pipeline: count vectors + Rasa's logistic regression",
    "tfidf": "TF-IDF n-grams + logistic regression (custom components)",
    "embeddings": "sentence embeddings (multilingual-e5-small) + logistic regression",
    "shipped": "TF-IDF + embeddings, averaged logistic regressions (nlu/config.yml)",
    "combined-diet": "TF-IDF + embeddings with DIET",
}


@dataclass
class PipelineResult:
    name: str
    realistic: RealisticReport
    heldout_correct: int
    heldout_total: int


def _predict(project: RasaProject, args: list[str], texts: Sequence[str]) -> list[Classification]:
    lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    proc = subprocess.run(
        [str(project.python), str(project.runtime_dir / "predict.py"), *args],
        input=lines,
        capture_output=True,
        text=True,
        cwd=project.directory,
        env=project.env(),
        check=False,
        timeout=3600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"predict.py failed: {proc.stderr[-2000:]}")
    return [Classification.from_parse(json.loads(line)) for line in proc.stdout.splitlines() if line.strip()]


def _classify(services: Services, name: str, texts: Sequence[str]) -> list[Classification]:
    settings, kb = services.settings, services.kb
    # The not-emergencies are labelled for the shipped pipeline's emergency detector only (its intent
    # classifier leaves them out); Rasa's own classifiers in the other pipelines would take them for a
    # topic, so those are compared without them.
    negatives = name == "shipped"
    keys, examples = training_keys(kb, negatives), training_examples(kb, negatives)
    project = rasa_project(settings)
    if name == "baseline":
        project.write_data(keys, examples)
        return _predict(project, ["--baseline", str(project.data_file)], texts)
    if name != "shipped":
        project = RasaProject(project.directory, project.venv, variant=name)
    model = project.ensure_model(keys, examples, services.progress)
    return _predict(project, ["--model", str(model)], texts)


async def compare(services: Services, names: Sequence[str] = tuple(PIPELINES)) -> list[PipelineResult]:
    settings, kb, engine = services.settings, services.kb, services.engine
    items = load_realistic(settings.path(settings.content_dir) / "realistic", settings.languages)
    cities = cities_for(items, settings.cities)
    heldout = [(key, q) for keys in kb.heldout.values() for key, qs in keys.items() for q in qs]
    known = {key for lang in kb.texts.values() for key, text in lang.items() if text.examples}
    texts = [normalise(i.text) for i in items] + [normalise(q) for _, q in heldout]
    results = []
    for name in names:
        services.progress(f"Pipeline '{name}': training if needed, then classifying {len(texts)} questions…")
        classes = await asyncio.to_thread(_classify, services, name, texts)
        report = RealisticReport()
        for item, city, result in zip(items, cities, classes, strict=False):
            report.add(item, engine.reply_for(item.text, city, None, result), known)
        correct = sum(r.key == key for (key, _), r in zip(heldout, classes[len(items) :], strict=True))
        results.append(PipelineResult(name, report, correct, len(heldout)))
    return results


def markdown(results: Sequence[PipelineResult]) -> str:
    lines = [
        "| pipeline | realistic top-1 | confident wrong | story | colloquial | translit | near-miss "
        "| emergencies caught | false alarms | language | held-out top-1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        data = result.realistic.as_dict()
        overall, styles = data["languages"].get("all", {}), data["styles"]

        def pct(row: dict[str, float | int | None], name: str) -> str:
            value = row.get(name)
            return "–" if value is None else f"{value:.1%}"

        caught = round((overall.get("emergency_recall") or 0) * (overall.get("emergencies") or 0))
        lines.append(
            f"| {result.name}: {PIPELINES[result.name]} | {pct(overall, 'top1')} | "
            f"{pct(overall, 'confident_wrong')} | {pct(styles.get('story', {}), 'top1')} | "
            f"{pct(styles.get('colloquial', {}), 'top1')} | {pct(styles.get('translit', {}), 'top1')} | "
            f"{pct(overall, 'offtopic_recall')} | {caught}/{overall.get('emergencies', 0)} | "
            f"{pct(overall, 'false_alarms')} | {pct(overall, 'language')} | "
            f"{result.heldout_correct / max(result.heldout_total, 1):.1%} |"
        )
    return "\n".join(lines)
