"""Generate Rasa training data from the content's example questions and train when it changed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import yaml

from ._normalise import normalise

__all__ = ["RasaProject", "TrainingError"]

Progress = Callable[[str], None]


class TrainingError(Exception):
    """Training or validation failed; the message says why."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RasaProject:
    """The Rasa project in ``nlu/`` and the virtualenv that runs it."""

    directory: Path
    venv: Path
    # Another pipeline than the shipped one (``variants/<name>.yml``), for `make eval`'s comparison.
    variant: str | None = None

    @property
    def rasa(self) -> Path:
        return self.venv / "bin" / "rasa"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def runtime_dir(self) -> Path:
        """Scripts and components that run with the Rasa runtime's Python (3.8-3.10)."""
        return self.directory / "runtime"

    @property
    def data_file(self) -> Path:
        return self.directory / "data" / "nlu.yml"

    @property
    def domain_file(self) -> Path:
        return self.directory / "domain.yml"

    @property
    def config_file(self) -> Path:
        if self.variant:
            return self.directory / "variants" / f"{self.variant}.yml"
        return self.directory / "config.yml"

    @property
    def models_dir(self) -> Path:
        if self.variant:
            return self.directory / "models" / "variants" / self.variant
        return self.directory / "models"

    def runtime_available(self) -> bool:
        return self.rasa.exists()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"NLU_JWT_SECRET", "TELEGRAM_BOT_TOKEN"}}
        # No training cache: models are keyed by our own content hash, and the cache hook is fragile.
        env.update(
            RASA_TELEMETRY_ENABLED="false",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONWARNINGS="ignore",
            RASA_MAX_CACHE_SIZE="0",
            # The project's own components (components.*) live in nlu/runtime.
            PYTHONPATH=os.pathsep.join(p for p in (str(self.runtime_dir), env.get("PYTHONPATH", "")) if p),
            # One thread: the sentence encoder is faster on one core of two than on both.
            OMP_NUM_THREADS="1",
        )
        return env

    # --- data ----------------------------------------------------------------------------------

    def write_data(self, keys: Iterable[str], examples: Iterable[tuple[str, str, str]]) -> int:
        """Write ``data/nlu.yml`` and ``domain.yml``; return the number of training examples.

        ``examples`` are (key, text, language); the language goes into each example's metadata, where
        the language identifier learns from it.
        """
        keys = list(keys)
        by_key: dict[str, list[dict[str, object]]] = {key: [] for key in keys}
        seen: set[str] = set()
        for key, text, lang in examples:
            folded = normalise(text)
            if key in by_key and folded and folded not in seen:
                seen.add(folded)
                by_key[key].append({"text": folded, "metadata": {"lang": lang}})
        header = "# Generated from content/questions by `python -m bot nlu train`. Do not edit.\n"
        nlu = {
            "version": "3.1",
            "nlu": [{"intent": key, "examples": texts} for key, texts in by_key.items() if texts],
        }
        self.data_file.parent.mkdir(parents=True, exist_ok=True)
        self._write_if_changed(self.data_file, header + _dump(nlu))
        domain = {"version": "3.1", "intents": [key for key, texts in by_key.items() if texts]}
        self._write_if_changed(self.domain_file, header + _dump(domain))
        return sum(len(t) for t in by_key.values())

    @staticmethod
    def _write_if_changed(path: Path, text: str) -> None:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")

    def fingerprint(self) -> str:
        """A hash of everything that determines the model: pipeline, data, Rasa version."""
        digest = hashlib.sha256()
        for path in (
            self.config_file,
            self.data_file,
            self.directory / "requirements.txt",
            self.directory / "requirements-encoder.txt",
            *sorted(self.runtime_dir.rglob("*.py")),
        ):
            digest.update(path.read_bytes() if path.exists() else b"-")
        return digest.hexdigest()[:16]

    def model_path(self, fingerprint: str | None = None) -> Path:
        return self.models_dir / f"nlu-{fingerprint or self.fingerprint()}.tar.gz"

    # --- running Rasa --------------------------------------------------------------------------

    def _run(self, args: list[str], what: str, timeout: float) -> None:
        if not self.runtime_available():
            raise TrainingError(
                f"the Rasa runtime is not installed in {self.venv}; run `make rasa` (or `make test`) first"
            )
        try:
            proc = subprocess.run(
                [str(self.python), str(self.runtime_dir / "train.py"), *args],
                cwd=self.directory,
                env=self.env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TrainingError(f"{what} took longer than {timeout:.0f} s") from exc
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.splitlines()[-25:])
            raise TrainingError(f"{what} failed (exit {proc.returncode}):\n{tail}")

    def validate(self) -> None:
        """``rasa data validate`` on the generated data."""
        self._run(
            [
                "--validate",
                "--domain",
                "domain.yml",
                "--data",
                "data",
                "--config",
                str(self.config_file),
            ],
            "rasa data validate",
            timeout=600,
        )

    def ensure_model(
        self,
        keys: Iterable[str],
        examples: Iterable[tuple[str, str, str]],
        progress: Progress = _stderr,
        timeout: float = 3600,
    ) -> Path:
        """Generate the data and train a model unless one for exactly this data exists."""
        count = self.write_data(keys, examples)
        target = self.model_path()
        if target.exists():
            return target
        progress(
            f"Training the NLU model on {count} example questions (content changed, or first run); "
            "this takes a few minutes…"
        )
        started = time.monotonic()
        self.models_dir.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [
                str(self.python),
                str(self.runtime_dir / "train.py"),
                "--config",
                str(self.config_file),
                "--nlu",
                "data/nlu.yml",
                "--out",
                str(self.models_dir),
                "--fixed-model-name",
                target.name.removesuffix(".tar.gz"),
            ],
            cwd=self.directory,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []

        def pump(stream: IO[str]) -> None:
            last_report = 0.0
            for line in stream:
                lines.append(line.rstrip())
                # Rasa prints one progress line per epoch; pass on a few so a person sees it moving.
                if "Epochs:" in line and time.monotonic() - last_report > 15:
                    last_report = time.monotonic()
                    epoch = line.strip().split("|")[0].replace("Epochs:", "").strip()
                    progress(f"  training… {epoch} of the epochs done ({time.monotonic() - started:.0f} s)")

        # The output is read in a thread so that the timeout below can fire even while training is
        # silent (reading to the end first would wait for as long as training hangs).
        reader = threading.Thread(target=pump, args=(proc.stdout,), daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise TrainingError(f"training took longer than {timeout:.0f} s and was stopped") from exc
        finally:
            reader.join(timeout=5)
        if code != 0 or not target.exists():
            raise TrainingError("rasa train failed:\n" + "\n".join(lines[-25:]))
        seconds = time.monotonic() - started
        progress(f"NLU model trained in {seconds:.0f} s: {target.name}")
        target.with_suffix("").with_suffix(".json").write_text(
            json.dumps({"seconds": round(seconds, 1), "examples": count})
        )
        self._prune(keep=target)
        return target

    def _prune(self, keep: Path, how_many: int = 2) -> None:
        models = sorted(self.models_dir.glob("nlu-*.tar.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in [m for m in models if m != keep][how_many - 1 :]:
            old.unlink(missing_ok=True)
            old.with_suffix("").with_suffix(".json").unlink(missing_ok=True)
        shutil.rmtree(self.directory / ".rasa", ignore_errors=True)


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks, the way Rasa's own examples look."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)
