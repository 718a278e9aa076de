"""`make demo`'s conversation, played against the session's local stack: every step as the contract says."""

from waguard import demo


def test_the_demo_conversation_plays_through(client, capsys) -> None:
    demo.play(client)
    out = capsys.readouterr().out
    assert "Demo complete" in out
    assert "channel whatsapp" in out and "export kept with the request" in out
    for step in (
        "handshake",
        "opts in",
        "replies",
        "delivery and read",
        "STOP",
        "refused",
        "MY DATA",
        "A campaign",
        "recipients 2, sent 1, skipped 1 (no_consent 1)",
        "forgotten",
    ):
        assert step in out
