"""Typed deployment settings: ``config.yml`` for the deployment, environment variables for secrets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .hours import OfficeHours

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ROOT",
    "ConfigError",
    "HandoffSettings",
    "LanguageSettings",
    "NLUSettings",
    "Settings",
    "StaffGroup",
    "load_settings",
]

ROOT = Path(__file__).resolve().parent.parent
# SQLite in var/ beside config.yml (relative paths are taken from ``Settings.root``).
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/integra.db"


class ConfigError(Exception):
    """The configuration file is missing or invalid; the message says where and how to fix it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NLUSettings(_Model):
    url: str | None = None
    jwt_secret: SecretStr | None = None
    project_dir: Path = Path("nlu")
    rasa_venv: Path = Path(".rasa-venv")
    timeout: float = Field(10.0, gt=0)
    startup_timeout: float = Field(180.0, gt=0)
    answer_threshold: float = Field(0.55, ge=0, le=1)
    emergency_threshold: float = Field(0.3, ge=0, le=1)
    emergency_detector_threshold: float = Field(0.4, ge=0, le=1)
    emergency_sentence_confidence: float = Field(0.6, ge=0, le=1)
    nearest_min: float = Field(0.0, ge=-1, le=1)
    alternatives: int = Field(3, ge=1, le=8)
    alternative_min_confidence: float = Field(0.05, ge=0, le=1)


class LanguageSettings(_Model):
    min_letters_to_switch: int = Field(12, ge=0)
    switch_ratio: float = Field(3.0, ge=1)


class ContentSettings(_Model):
    max_review_age_days: int = Field(365, ge=1)
    max_message_chars: int = Field(4096, ge=200, le=4096)
    min_examples_per_key: int = Field(12, ge=1)


class PrivacySettings(_Model):
    # A conversation (person, language, city, recent messages) is deleted after this many days unused;
    # the privacy notice shown to people states the same number.
    retention_days: int = Field(90, ge=1)
    # Anonymous unanswered questions are kept this long for editors.
    unanswered_retention_days: int = Field(180, ge=1)
    # The handoff audit log (who claimed, replied, closed; never message text).
    audit_retention_days: int = Field(365, ge=1)


class TelegramSettings(_Model):
    # "polling" (default, works anywhere) or "webhook" (Telegram calls webhook_url).
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    listen: str = "127.0.0.1"
    port: int = Field(8443, ge=1, le=65535)
    # Telegram sends this in X-Telegram-Bot-Api-Secret-Token; from TELEGRAM_WEBHOOK_SECRET.
    webhook_secret: SecretStr | None = None


class StaffGroup(_Model):
    """A city's staff group: a Telegram supergroup with topics, where the bot is an administrator."""

    chat_id: int = Field(lt=0)
    # Language of everything the bot writes in the group (case cards, reminders, buttons).
    language: str = "en"
    # IANA time zone of the office hours and of the times shown in the group.
    timezone: str = "UTC"
    # Weekday (mon … sun) -> "09:00-17:00" or a list of such ranges. Empty: staff may answer at any time.
    office_hours: dict[str, str | list[str]] = {}
    # Optional allow-list of Telegram user ids; empty: every member of the group is staff.
    allow: tuple[int, ...] = ()

    @field_validator("office_hours")
    @classmethod
    def _hours_parse(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        OfficeHours.parse(value, "UTC")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        OfficeHours.parse({}, value)
        return value

    def hours(self) -> OfficeHours:
        return OfficeHours.parse(self.office_hours, self.timezone)


class HandoffSettings(_Model):
    # Cities without a group get the contact details of their integration centre instead of a handoff.
    groups: dict[str, StaffGroup] = {}
    # A case nobody has claimed is reminded in its group after this many minutes (then again, as often).
    remind_after_minutes: float = Field(15.0, gt=0)
    urgent_remind_after_minutes: float = Field(5.0, gt=0)
    # How often the bot looks for cases that are due a reminder (the due times are in the database).
    check_interval_seconds: float = Field(30.0, gt=0)
    # How many recent messages the case card shows.
    card_turns: int = Field(10, ge=1, le=20)


class Settings(_Model):
    languages: tuple[str, ...]
    default_language: str = "en"
    cities: tuple[str, ...]
    content_dir: Path = Path("content")
    nlu: NLUSettings = NLUSettings()
    language: LanguageSettings = LanguageSettings()
    content: ContentSettings = ContentSettings()
    privacy: PrivacySettings = PrivacySettings()
    telegram: TelegramSettings = TelegramSettings()
    handoff: HandoffSettings = HandoffSettings()
    telegram_token: SecretStr | None = None
    telegram_api_base_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    # The folder of config.yml: relative paths (content, nlu, var/, a relative SQLite file) start here.
    root: Path = ROOT

    @field_validator("languages")
    @classmethod
    def _languages_known_to_cldr(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from babel import Locale, UnknownLocaleError

        for code in value:
            try:
                Locale.parse(code)
            except (ValueError, UnknownLocaleError) as exc:
                raise ValueError(f"'{code}' is not a language code Babel knows (use ISO 639-1)") from exc
        return value

    @model_validator(mode="after")
    def _groups_for_known_cities(self) -> Settings:
        for city, group in self.handoff.groups.items():
            if city not in self.cities:
                raise ValueError(f"handoff.groups has '{city}', which is not one of the cities")
            if group.language not in self.languages:
                raise ValueError(f"handoff.groups.{city}.language must be one of the languages")
        return self

    def staff_group(self, city: str) -> StaffGroup | None:
        return self.handoff.groups.get(city)

    def path(self, relative: Path) -> Path:
        """Resolve a configured path against the project root."""
        return relative if relative.is_absolute() else self.root / relative


_ENV_OVERRIDES: Mapping[str, tuple[str, ...]] = {
    "TELEGRAM_BOT_TOKEN": ("telegram_token",),
    "TELEGRAM_API_BASE_URL": ("telegram_api_base_url",),
    "DATABASE_URL": ("database_url",),
    "NLU_URL": ("nlu", "url"),
    "NLU_JWT_SECRET": ("nlu", "jwt_secret"),
    "TELEGRAM_MODE": ("telegram", "mode"),
    "TELEGRAM_WEBHOOK_URL": ("telegram", "webhook_url"),
    "TELEGRAM_WEBHOOK_SECRET": ("telegram", "webhook_secret"),
}


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``config.yml`` (or ``INTEGRA_CONFIG``) and apply environment overrides."""
    environ = os.environ if environ is None else environ
    path = path or Path(environ.get("INTEGRA_CONFIG", ROOT / "config.yml"))
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping of settings")
    for variable, target in _ENV_OVERRIDES.items():
        value = environ.get(variable)
        if value:
            section = raw
            for part in target[:-1]:
                if not isinstance(section.get(part), dict):
                    section[part] = {}
                section = section[part]
            section[target[-1]] = value
    raw.setdefault("root", path.resolve().parent)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
