"""The NLU client against httpx.MockTransport: authentication, parsing and every failure mode."""

from __future__ import annotations

import json

import httpx
import jwt
import pytest

from nlu import NLUClient, NLUResponseError, NLUTimeout, NLUUnavailable, normalise

SECRET = "test-secret-of-sufficient-length"


def parse_body(intent: str = "permit.renewal", confidence: float = 0.91) -> dict:
    return {
        "text": "x",
        "intent": {"name": intent, "confidence": confidence},
        "intent_ranking": [
            {"name": intent, "confidence": confidence},
            {"name": "permit.permanent", "confidence": 0.05},
        ],
    }


async def test_classify_sends_normalised_text_with_a_valid_jwt() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=parse_body())

    async with NLUClient("http://nlu.test", SECRET, transport=httpx.MockTransport(handler)) as client:
        result = await client.classify("  Jak PRODLOUŽIT povolení?  ")
    assert result.key == "permit.renewal" and result.confidence == pytest.approx(0.91)
    assert [s.key for s in result.ranking] == ["permit.renewal", "permit.permanent"]
    request = seen[0]
    assert request.url.path == "/model/parse" and "token" not in request.url.params
    assert json.loads(request.content) == {"text": "jak prodlouzit povoleni?"}
    scheme, token = request.headers["Authorization"].split()
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert scheme == "Bearer" and claims["user"]["role"] == "admin" and claims["exp"] > claims["iat"]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(401, json={"message": "no"}), NLUResponseError),
        (httpx.Response(403), NLUResponseError),
        (httpx.Response(409, json={"message": "no model"}), NLUUnavailable),
        (httpx.Response(500), NLUUnavailable),
        (httpx.Response(200, content=b"<html>"), NLUResponseError),
        (httpx.Response(200, json={"text": "x"}), NLUResponseError),
        (httpx.Response(200, json=[1, 2]), NLUResponseError),
    ],
)
async def test_bad_answers_raise_documented_errors(response: httpx.Response, error: type) -> None:
    transport = httpx.MockTransport(lambda request: response)
    async with NLUClient("http://nlu.test", SECRET, transport=transport) as client:
        with pytest.raises(error):
            await client.classify("hello")


async def test_unreachable_and_slow_servers() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with NLUClient("http://nlu.test", SECRET, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(NLUUnavailable):
            await client.classify("hello")
    async with NLUClient("http://nlu.test", SECRET, transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(NLUTimeout):
            await client.classify("hello")
    assert issubclass(NLUTimeout, NLUUnavailable)


async def test_no_secret_means_no_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=parse_body())

    async with NLUClient("http://nlu.test", None, transport=httpx.MockTransport(handler)) as client:
        await client.classify("hello")
    assert "Authorization" not in seen[0].headers


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Jak prodloužit POVOLENÍ k pobytu?", "jak prodlouzit povoleni k pobytu?"),
        ("Košice škola, Đakovo", "kosice skola, dakovo"),
        ("Як продовжити посвідку? Її й ё", "як продовжити посвідку? її й е"),
        ("كيف أجدد الإقامة؟ مَرحبا", "کیف اجدد الاقامه؟ مرحبا"),
        ("الكارت ينتهي بعد ١٠ أيام، مسؤول", "الکارت ینتهی بعد 10 ایام، مسوول"),
        ("۱۴۰۳ سال", "1403 سال"),
        ("می\u200cخواهم اقامت", "می خواهم اقامت"),
        ("[link](intent) {x} <b>bold</b>", "link intent x b bold /b"),
        ("tab\tand\x00nul\x07bell\u200b", "tab and nul bell"),
    ],
)
def test_normalise(raw: str, folded: str) -> None:
    assert normalise(raw) == folded


async def test_several_servers_take_turns_and_a_failing_one_is_skipped() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.host)
        if request.url.host == "down.test":
            raise httpx.ConnectError("refused", request=request)
        body = {"intent": {"name": "greet", "confidence": 0.9}, "intent_ranking": []}
        return httpx.Response(200, json=body)

    servers = "http://a.test, http://down.test,http://b.test"
    async with NLUClient(servers, SECRET, transport=httpx.MockTransport(handler), cooldown=60) as client:
        assert client.servers == ("http://a.test", "http://down.test", "http://b.test")
        results = [await client.classify("hello") for _ in range(4)]
    assert {r.key for r in results} == {"greet"}
    # down.test was tried once, failed over to the next server, and then rested.
    assert asked.count("down.test") == 1
    assert asked == ["a.test", "down.test", "b.test", "b.test", "a.test"]


async def test_a_server_that_just_failed_gets_only_a_quick_look_until_it_answers_again() -> None:
    read_timeouts: list[float] = []
    hung = True

    def handler(request: httpx.Request) -> httpx.Response:
        read_timeouts.append(request.extensions["timeout"]["read"])
        if hung:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"intent": {"name": "greet", "confidence": 0.9}})

    transport = httpx.MockTransport(handler)
    async with NLUClient("http://only.test", SECRET, transport=transport, timeout=2.0, probe=0.1) as client:
        for _ in range(2):
            with pytest.raises(NLUTimeout):
                await client.classify("hello")
        hung = False
        assert (await client.classify("hello")).key == "greet"
        assert (await client.classify("hello")).key == "greet"
    # The full timeout, then quick looks while it rests, then the full timeout again once it answered.
    assert read_timeouts[0] > 1.9 and read_timeouts[1:3] == [0.1, 0.1] and read_timeouts[3] > 1.9
