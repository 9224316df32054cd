"""Typed deployment settings: ``config.yml`` for the deployment, environment variables for secrets."""

from __future__ import annotations

import os
import re
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
    "Partner",
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
    emergency_detector_threshold: float = Field(0.45, ge=0, le=1)
    emergency_sentence_confidence: float = Field(0.6, ge=0, le=1)
    emergency_caution_threshold: float = Field(1.0, ge=0, le=1)
    nearest_min: float = Field(0.0, ge=-1, le=1)
    alternatives: int = Field(3, ge=1, le=8)
    alternative_min_confidence: float = Field(0.05, ge=0, le=1)
    degraded_emergency_neighbours: int = Field(10, ge=1, le=50)
    degraded_emergency_share: float = Field(0.1, ge=0, le=1)


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
    # How many chats one bot process handles at once (each chat, and each staff topic, in order).
    concurrency: int = Field(32, ge=1, le=512)


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


# A partner id: a short slug, e.g. "legal-aid-prague".
PARTNER_ID = r"^[a-z][a-z0-9_-]{0,63}$"
# What a partner handles: a content key ("services.legal_aid"), a key prefix ("work.*") or "*" (all).
HANDLES = r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$"


class Partner(StaffGroup):
    """A partner organisation of a city (the city, an NGO, legal aid, the employment office): its own
    staff group, the languages its staff speak, and the question keys it handles."""

    id: str = Field(pattern=PARTNER_ID)
    # The organisation's name, as staff and (when a case is referred to it) the person see it.
    name: str = Field("", max_length=64)
    # Languages its staff speak with people; empty: any (they work with interpreters).
    languages: tuple[str, ...] = ()
    # Content keys or key prefixes it handles: "services.legal_aid", "work.*", or "*" for everything.
    handles: tuple[str, ...] = ()
    # The city's default partner gets every case no other partner handles.
    default: bool = False

    @field_validator("handles")
    @classmethod
    def _handles_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not re.fullmatch(HANDLES, item):
                raise ValueError(f"'{item}' is not a key like services.legal_aid, a prefix like work.*, or *")
        return value

    def match(self, key: str | None) -> int:
        """How closely this partner handles ``key``: 0 not at all, 1 everything ("*"), more for a
        longer prefix, most for the exact key."""
        best = 0
        for item in self.handles:
            if item == "*":
                best = max(best, 1)
            elif key is None:
                continue
            elif item == key:
                return 1000
            elif item.endswith(".*") and key.startswith(item[:-1]):
                best = max(best, len(item))
        return best

    def speaks(self, language: str) -> bool:
        return not self.languages or language in self.languages


class HandoffSettings(_Model):
    # Cities without a group get the contact details of their integration centre instead of a handoff.
    # One staff group per city (the older form): the city's only partner, which takes every case.
    groups: dict[str, StaffGroup] = {}
    # Per city, its partner organisations (each with its own staff group); see config.yml.
    partners: dict[str, tuple[Partner, ...]] = {}
    # A case nobody has claimed is reminded in its group after this many minutes (then again, as often).
    remind_after_minutes: float = Field(15.0, gt=0)
    urgent_remind_after_minutes: float = Field(5.0, gt=0)
    # How often the bot looks for cases that are due a reminder (the due times are in the database).
    check_interval_seconds: float = Field(30.0, gt=0)
    # How many recent messages the case card shows.
    card_turns: int = Field(10, ge=1, le=20)
    # A case referred to another partner and not claimed there is reminded to both partners after
    # this many minutes (and again as long as it waits).
    referral_remind_after_minutes: float = Field(60.0, gt=0)


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
        seen: dict[str, str] = {}
        for city, partners in self.handoff.partners.items():
            where = f"handoff.partners.{city}"
            if city not in self.cities:
                raise ValueError(f"handoff.partners has '{city}', which is not one of the cities")
            if city in self.handoff.groups:
                raise ValueError(
                    f"{city} is under both handoff.groups and handoff.partners: list its group as a partner"
                )
            if not partners:
                raise ValueError(f"{where} is empty: list at least one partner, or leave the city out")
            defaults = [p.id for p in partners if p.default]
            if len(partners) > 1 and len(defaults) != 1:
                raise ValueError(
                    f"{where}: mark exactly one partner 'default: true' (it gets every case no other "
                    f"partner handles); now {len(defaults)} are"
                )
            for partner in partners:
                if partner.id in seen or partner.id in self.handoff.groups:
                    other = seen.get(partner.id, partner.id)
                    raise ValueError(f"{where}: the partner id '{partner.id}' is already used in {other}")
                seen[partner.id] = city
                if partner.language not in self.languages:
                    raise ValueError(f"{where}.{partner.id}.language must be one of the languages")
                unknown = [code for code in partner.languages if code not in self.languages]
                if unknown:
                    raise ValueError(
                        f"{where}.{partner.id}.languages: {', '.join(unknown)} is not one of the languages"
                    )
        return self

    def partners_in(self, city: str) -> tuple[Partner, ...]:
        """The city's partner organisations, its default partner first. A city configured with one
        staff group (``handoff.groups``) has that group as its only partner, with the city as its id."""
        group = self.handoff.groups.get(city)
        if group is not None:
            return (Partner(**group.model_dump(), id=city, default=True),)
        partners = self.handoff.partners.get(city, ())
        if len(partners) == 1 and not partners[0].default:
            partners = (partners[0].model_copy(update={"default": True}),)
        return tuple(sorted(partners, key=lambda p: not p.default))

    def all_partners(self) -> list[tuple[str, Partner]]:
        """Every partner of every city, as (city, partner), in the order of the cities."""
        return [(city, partner) for city in self.cities for partner in self.partners_in(city)]

    def find_partner(self, partner_id: str) -> tuple[str, Partner] | None:
        """The partner with this id (in any city) and its city."""
        return next(((c, p) for c, p in self.all_partners() if p.id == partner_id), None)

    def route(self, city: str, key: str | None, language: str) -> Partner | None:
        """The partner a new case goes to: of the city's partners that handle ``key`` and speak
        ``language``, the one that handles it most closely (one that names the language before one that
        takes any); when there is none, the city's default partner (None: the city has no staff)."""
        partners = self.partners_in(city)
        candidates = [p for p in partners if p.match(key) and p.speaks(language)]
        if candidates:
            return max(candidates, key=lambda p: (p.match(key), language in p.languages))
        return partners[0] if partners else None

    def staff_group(self, city: str, partner_id: str | None = None) -> Partner | None:
        """The staff group of a case: its partner's (by id, in any city) or else the city's default
        partner's; None when the city has no staff."""
        if partner_id is not None and (found := self.find_partner(partner_id)) is not None:
            return found[1]
        partners = self.partners_in(city)
        return partners[0] if partners else None

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
