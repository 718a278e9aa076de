"""Opt-out / opt-in keyword matching: the whole message is the keyword, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import keywords

ROOT = Path(__file__).resolve().parents[2]
CDK = json.loads((ROOT / "cdk.json").read_text())["context"]["waguard"]
OPT_OUT = tuple(CDK["optOutKeywords"])
OPT_IN = tuple(CDK["optInKeywords"])


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "  Stop! ",
        "\tSTOP.\n",
        "¡¡Stop!!",
        "«stop»",
        "PARAR",
        "arrêt",
        "ARRÊT",
        "Arret",
        "Stopp.",
        "basta",
        "CANCELAR",
        "opt-out",
        "OPT-OUT!",
        "optout",
        "Unsubscribe",
        "END",
        "quit?",
        "stopall",
        "alto",
        "\u200bSTOP\u200b",  # zero-width spaces around
        "arre\u0302t",  # ARRÊT typed with a combining circumflex
    ],
)
def test_opt_out_keywords_match(text: str) -> None:
    assert keywords.matches(text, OPT_OUT)


@pytest.mark.parametrize(
    "text",
    [
        "please don't stop",
        "please don't stop sending me offers",
        "stop it",
        "STOP STOP",
        "stopping",
        "opt out",  # not a configured keyword (OPT-OUT and OPTOUT are)
        "optout now",
        "s t o p",
        "STOP🛑",  # a symbol is not punctuation
        "",
        "   ",
        "!!!",
        "START",
        "arrêter",
        "send",
    ],
)
def test_other_messages_do_not_opt_out(text: str) -> None:
    assert not keywords.matches(text, OPT_OUT)


def test_none_is_not_a_keyword() -> None:
    assert not keywords.matches(None, OPT_OUT)
    assert not keywords.matches(None, OPT_IN)


@pytest.mark.parametrize("text", ["START", "start", " Start. ", "UNSTOP", "unstop!"])
def test_opt_in_keywords(text: str) -> None:
    assert keywords.matches(text, OPT_IN)
    assert not keywords.matches(text, OPT_OUT)


def test_hyphen_inside_a_keyword_is_kept() -> None:
    assert keywords.normalize("--OPT-OUT--") == "opt-out"
    assert keywords.normalize(" ARRÊT! ") == "arrêt"


def test_defaults_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import constants as c
    from shared import settings

    monkeypatch.setenv(
        c.ENV_SETTINGS,
        json.dumps(
            {
                "retention_days": {"messages": 1},
                "opt_out_keywords": ["HALT"],
                "opt_in_keywords": ["GO"],
                "service_window_hours": 24,
                "send_rate_per_second": 1,
                "max_send_attempts": 1,
                "retry_base_seconds": 1,
                "graph_api_url": "http://x",
                "graph_api_version": "v1",
                "phone_number_id": "1",
            }
        ),
    )
    settings.reset()
    try:
        configured = settings.get_settings()
        assert keywords.intent("halt!", configured) == keywords.OPT_OUT
        assert keywords.intent("STOP", configured) is None
        assert keywords.intent("go", configured) == keywords.OPT_IN
        assert keywords.intent("START", configured) is None
    finally:
        settings.reset()


_PUNCTUATION = " \t\n\r.,!?¡¿;:…«»\"'()[]-\u2013\u2014*\u00a0\u3000\u3002\uff01"
_TRIM = st.text(alphabet=st.sampled_from(list(_PUNCTUATION)), max_size=6)


@given(word=st.sampled_from(OPT_OUT), before=_TRIM, after=_TRIM, case=st.lists(st.booleans(), min_size=12))
def test_any_case_and_surrounding_punctuation_still_opts_out(word, before, after, case) -> None:
    cased = "".join(ch.upper() if up else ch.lower() for ch, up in zip(word, case + [False] * len(word)))
    assert keywords.matches(before + cased + after, OPT_OUT)


@given(
    word=st.sampled_from(OPT_OUT),
    extra=st.text(alphabet=st.characters(categories=("Lu", "Ll", "Nd")), min_size=1, max_size=10),
    where=st.sampled_from(["prefix", "suffix", "sentence"]),
)
def test_a_keyword_with_other_words_or_letters_is_not_an_opt_out(word, extra, where) -> None:
    text = {"prefix": extra + word, "suffix": word + extra, "sentence": f"{extra} {word}"}[where]
    if keywords.normalize(text) in {keywords.normalize(k) for k in OPT_OUT}:
        return  # the extra letters happened to spell another keyword (e.g. STOP + "ALL")
    assert not keywords.matches(text, OPT_OUT)


@given(st.text(max_size=40))
def test_matching_never_raises_and_is_idempotent(text: str) -> None:
    once = keywords.normalize(text)
    assert keywords.normalize(once) == once
    keywords.matches(text, OPT_OUT)


class _Words:
    def __init__(self, opt_out: tuple[str, ...], opt_in: tuple[str, ...]) -> None:
        self.opt_out_keywords, self.opt_in_keywords = opt_out, opt_in


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        (" Stop! ", keywords.OPT_OUT),
        ("ARRÊT", keywords.OPT_OUT),
        ("start", keywords.OPT_IN),
        ("unstop.", keywords.OPT_IN),
        ("please stop", None),
        ("", None),
        (None, None),
    ],
)
def test_a_message_matches_one_intent(text: str | None, wanted: str | None) -> None:
    assert keywords.intent(text, _Words(OPT_OUT, OPT_IN)) == wanted


def test_a_word_configured_for_two_intents_is_an_opt_out() -> None:
    both = _Words(("STOP", "PAUSE"), ("PAUSE", "START"))
    assert keywords.intent("pause", both) == keywords.OPT_OUT
    assert [name for name, _ in keywords.INTENTS][:2] == [keywords.OPT_OUT, keywords.OPT_IN]
