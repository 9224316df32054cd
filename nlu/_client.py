"""An async client for Rasa's ``POST /model/parse``, with JWT authentication."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import jwt

from ._exceptions import NLUError, NLUResponseError, NLUTimeout, NLUUnavailable
from ._normalise import normalise

__all__ = ["Classification", "IntentScore", "NLUClient", "PartScore", "make_token"]

_TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class IntentScore:
    key: str
    confidence: float


@dataclass(frozen=True)
class PartScore:
    """The best key for one sentence of a long message."""

    key: str
    confidence: float
    nearest: float | None = None


@dataclass(frozen=True)
class Classification:
    """What the model thinks a question is about: the best key and the ranking behind it.

    ``nearest`` is the similarity (cosine, -1..1) of the question to the closest training example of
    the best key: questions that only share words with a topic are far from every real example.
    ``emergency`` is the emergency detector's probability that someone is in danger, the highest of
    the whole message (``emergency_whole``) and its sentences (``emergency_part`` says which);
    ``parts`` are the sentences' own best keys;
    ``languages`` is the model's guess of the language, transliteration included.
    """

    key: str
    confidence: float
    ranking: tuple[IntentScore, ...]
    nearest: float | None = None
    emergency: float = 0.0
    emergency_part: int | None = None
    emergency_whole: float = 0.0
    parts: tuple[PartScore, ...] = ()
    languages: tuple[IntentScore, ...] = ()

    @classmethod
    def from_parse(cls, body: dict[str, Any]) -> Classification:
        """Read Rasa's ``/model/parse`` answer; raises ``NLUResponseError`` when it has no intent."""
        try:
            intent = body["intent"]
            ranking = tuple(
                IntentScore(str(item["name"]), float(item["confidence"]))
                for item in body.get("intent_ranking") or [intent]
            )
            emergency = body.get("emergency") or {}
            nearest = body.get("nearest")
            return cls(
                str(intent["name"]),
                float(intent["confidence"]),
                ranking,
                nearest=float(nearest) if nearest is not None else None,
                emergency=float(emergency.get("score") or 0.0),
                emergency_part=emergency.get("part"),
                emergency_whole=float(emergency.get("whole", emergency.get("score")) or 0.0),
                parts=tuple(
                    PartScore(
                        str(p["name"]),
                        float(p["confidence"]),
                        float(p["nearest"]) if p.get("nearest") is not None else None,
                    )
                    for p in body.get("parts") or ()
                ),
                languages=tuple(
                    IntentScore(str(item["name"]), float(item["confidence"]))
                    for item in body.get("language") or ()
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NLUResponseError("the NLU answer has no intent") from exc


def make_token(secret: str, lifetime: int = _TOKEN_LIFETIME) -> str:
    """A JWT that Rasa accepts for its admin-scoped endpoints such as ``/model/parse``."""
    now = int(time.time())
    payload = {"user": {"username": "integra-bot", "role": "admin"}, "iat": now, "exp": now + lifetime}
    return jwt.encode(payload, secret, algorithm="HS256")


class NLUClient:
    """Classifies questions through one or several Rasa servers.

    One instance holds one ``httpx.AsyncClient`` for the life of the application::

        async with NLUClient("http://127.0.0.1:5005", secret="...") as nlu:
            result = await nlu.classify("how do I renew my permit")

    With several servers (a list, or one string with commas) requests take turns, and a server that
    cannot be reached, times out or fails is skipped for ``cooldown`` seconds while the request goes
    to the next one; ``timeout`` bounds the whole request, failovers included. A resting server is
    still tried when no other is left, but only for ``probe`` seconds: while the only server hangs,
    people get the degraded reply at once instead of waiting the full timeout each time.
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        secret: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        cooldown: float = 10.0,
        probe: float = 1.0,
    ) -> None:
        urls = base_url.split(",") if isinstance(base_url, str) else list(base_url)
        self._servers = [u.strip().rstrip("/") for u in urls if u.strip()]
        if not self._servers:
            raise ValueError("at least one NLU server URL is needed")
        self._timeout = timeout
        self._cooldown = cooldown
        self._probe = probe
        self._resting: dict[str, float] = {}  # server -> monotonic time until which it is skipped
        self._turn = 0
        self._secret = secret
        self._token: tuple[str, float] | None = None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            transport=transport,
            headers={"User-Agent": "integra-assistant"},
        )

    @property
    def base_url(self) -> str:
        return self._servers[0]

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(self._servers)

    def revive(self, server: str) -> None:
        """``server`` is known to answer again (restarted): no more resting or quick looks for it."""
        self._resting.pop(server.rstrip("/"), None)

    def replace_server(self, old: str, new: str) -> None:
        """Send what went to ``old`` to ``new`` from now on (a restarted server on another port)."""
        old, new = old.rstrip("/"), new.rstrip("/")
        self._servers = [new if server == old else server for server in self._servers]
        self._resting.pop(old, None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _auth_headers(self) -> dict[str, str]:
        if self._secret is None:
            return {}
        if self._token is None or self._token[1] - time.time() < 60:
            self._token = (make_token(self._secret), time.time() + _TOKEN_LIFETIME)
        return {"Authorization": f"Bearer {self._token[0]}"}

    def _order(self) -> list[str]:
        """The servers to try, starting with the next in turn; resting ones last."""
        turn = self._servers[self._turn :] + self._servers[: self._turn]
        self._turn = (self._turn + 1) % len(self._servers)
        now = time.monotonic()
        return [s for s in turn if self._resting.get(s, 0) <= now] + [
            s for s in turn if self._resting.get(s, 0) > now
        ]

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self._timeout
        failure: NLUError | None = None
        for server in self._order():
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                break
            if self._resting.get(server, 0) > now:
                left = min(left, self._probe)  # it failed a moment ago: a quick look only
            try:
                answer = await self._request_one(server, method, path, left, **kwargs)
            except (NLUUnavailable, NLUTimeout) as exc:
                self._resting[server] = time.monotonic() + self._cooldown
                failure = exc
            else:
                self._resting.pop(server, None)  # answering again
                return answer
        raise failure or NLUTimeout("the NLU server did not answer in time")

    async def _request_one(self, server: str, method: str, path: str, seconds: float, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(
                method,
                server + path,
                headers=self._auth_headers(),
                timeout=httpx.Timeout(seconds, connect=min(seconds, 3.0)),
                **kwargs,
            )
        except httpx.TimeoutException as exc:
            raise NLUTimeout("the NLU server did not answer in time") from exc
        except httpx.TransportError as exc:
            raise NLUUnavailable(f"the NLU server cannot be reached ({type(exc).__name__})") from exc
        if response.status_code in {401, 403}:
            raise NLUResponseError(f"the NLU server refused our credentials (HTTP {response.status_code})")
        if response.status_code == 409:
            raise NLUUnavailable("the NLU server has no model loaded")
        if response.is_server_error:
            raise NLUUnavailable(f"the NLU server failed (HTTP {response.status_code})")
        if not response.is_success:
            raise NLUResponseError(f"the NLU server answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise NLUResponseError("the NLU server answered with something that is not JSON") from exc

    async def status(self) -> dict[str, Any]:
        """The server's ``/status`` (model file and fingerprint); raises when not ready."""
        body = await self._request("GET", "/status")
        if not isinstance(body, dict):
            raise NLUResponseError("unexpected /status body")
        return body

    async def parse(self, text: str) -> dict[str, Any]:
        """Rasa's raw ``/model/parse`` answer for ``text`` as given."""
        body = await self._request("POST", "/model/parse", json={"text": text})
        if not isinstance(body, dict):
            raise NLUResponseError("unexpected /model/parse body")
        return body

    async def classify(self, text: str) -> Classification:
        """Normalise ``text`` the way the training data was, and classify it."""
        return Classification.from_parse(await self.parse(normalise(text)))
