"""config/channels.toml and the OUTREACH_* overrides: defaults, real transports, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.channels.config import build_transports, load_channels
from outreach.channels.failover import Failover
from outreach.channels.http import HttpBatchTransport, HttpTransport
from outreach.channels.outbox import Outbox
from outreach.channels.smtp import SmtpTransport
from outreach.errors import ConfigError
from outreach.settings import STARTER

from .helpers import declared


def write(folder: Path, text: str) -> Path:
    path = folder / "channels.toml"
    path.write_text(declared(text, outbox=False), encoding="utf-8")
    return path


def test_the_shipped_file_routes_everything_to_the_outbox(tmp_path):
    transports = build_transports(STARTER / "config", tmp_path / "outbox", environ={})
    assert sorted(transports) == ["email", "sms", "webhook", "whatsapp"]
    outboxes = {id(t) for t in transports.values()}
    assert len(outboxes) == 1 and isinstance(transports["email"], Outbox)
    config = load_channels(STARTER / "config", environ={})
    assert config.source == STARTER / "config" / "channels.toml"
    assert all(c.kind == "outbox" for c in config.channels.values())
    assert (config["sms"].rate, config["sms"].burst) == (5.0, 10)


def test_no_file_declares_no_channel(tmp_path):
    config = load_channels(tmp_path, environ={"OUTREACH_SMTP_URL": "smtp://h"})
    assert config.source is None and not config.channels


def test_a_declared_channel_without_a_provider_has_no_transport_and_no_limits(tmp_path):
    config = load_channels(write(tmp_path, "").parent, environ={})
    assert sorted(config.channels) == ["email", "sms", "webhook", "whatsapp"]
    assert all((c.providers, c.rate, c.burst) == ((), None, None) for c in config.channels.values())
    assert build_transports(tmp_path, tmp_path / "outbox", environ={}) == {}


def sole(transport):
    """The one provider's transport behind a channel's failover."""
    assert isinstance(transport, Failover) and len(transport.providers) == 1
    return transport.providers[0].transport


def test_environment_makes_channels_real(tmp_path):
    env = {
        "OUTREACH_SMTP_URL": "smtp://mailer:p%40ss@smtp.example.com?starttls=true&timeout=12.5",
        "OUTREACH_SMTP_FROM": "Équipe Outreach <hello@example.com>",
        "OUTREACH_SMS_URL": "https://sms.example.com/v1/messages",
        "OUTREACH_SMS_SECRET": "s3cret",
        "OUTREACH_WEBHOOK_URL": "",  # empty means unset
        "OUTREACH_EMAIL_PROVIDERS": "smtp",
        "OUTREACH_SMS_PROVIDERS": "http",
    }
    transports = build_transports(STARTER / "config", tmp_path, environ=env)
    assert isinstance(sole(transports["email"]), SmtpTransport)
    assert isinstance(sole(transports["sms"]), HttpTransport)
    assert isinstance(transports["whatsapp"], Outbox) and isinstance(transports["webhook"], Outbox)

    smtp = sole(transports["email"]).config
    assert (smtp.host, smtp.port, smtp.security, smtp.timeout) == ("smtp.example.com", 587, "starttls", 12.5)
    assert (smtp.username, smtp.password) == ("mailer", "p@ss")
    assert (smtp.sender_name, smtp.sender_address, smtp.message_domain) == (
        "Équipe Outreach",
        "hello@example.com",
        "example.com",
    )
    sms = load_channels(STARTER / "config", environ=env)["sms"]
    assert (sms.kind, sms.settings.url, sms.secret, sms.rate) == (
        "http",
        env["OUTREACH_SMS_URL"],
        "s3cret",
        5.0,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1:1025", ("127.0.0.1", 1025, "plain", None)),
        ("smtp://relay.example.com", ("relay.example.com", 25, "plain", None)),
        ("smtps://u:p@relay.example.com", ("relay.example.com", 465, "tls", "u")),
        ("smtp://relay.example.com:2525?starttls=yes", ("relay.example.com", 2525, "starttls", None)),
    ],
)
def test_smtp_urls(url, expected, tmp_path):
    write(tmp_path, "")  # the starter's four channels, declared
    env = {"OUTREACH_SMTP_URL": url, "OUTREACH_SMTP_FROM": "hello@example.com"}
    smtp = load_channels(tmp_path, environ=env)["email"].settings
    assert (smtp.host, smtp.port, smtp.security, smtp.username) == expected
    assert smtp.sender_name == ""


def test_the_file_configures_and_the_environment_wins(tmp_path):
    write(tmp_path, "")  # the starter's four channels, declared
    write(
        tmp_path,
        """
        [email]
        url = "smtp://file.example.com:2525"
        from = "File <file@example.com>"
        domain = "mail.example.com"
        rate = 2.5

        [webhook]
        url = "https://hooks.example.com/file"
        secret = "from-file"
        timeout = 3
        rate = 100
        burst = 7
        [webhook.headers]
        Authorization = "Bearer abc"
        """,
    )
    config = load_channels(tmp_path, environ={"OUTREACH_WEBHOOK_SECRET": "from-env"})
    email = config["email"]
    assert (email.settings.host, email.settings.port, email.settings.message_domain) == (
        "file.example.com",
        2525,
        "mail.example.com",
    )
    assert (email.rate, email.burst) == (2.5, 3)  # burst defaults to one second's worth
    webhook = config["webhook"]
    assert (webhook.settings.url, webhook.secret, webhook.settings.timeout) == (
        "https://hooks.example.com/file",
        "from-env",
        3,
    )
    assert (webhook.rate, webhook.burst, dict(webhook.settings.headers)) == (
        100.0,
        7,
        {"Authorization": "Bearer abc"},
    )

    env = {"OUTREACH_SMTP_URL": "smtps://env.example.com", "OUTREACH_SMTP_FROM": "env@example.com"}
    email = load_channels(tmp_path, environ=env)["email"]
    assert (email.settings.host, email.settings.security, email.settings.sender_address) == (
        "env.example.com",
        "tls",
        "env@example.com",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sms]\nrate = -1\n", "[sms] rate=-1: must be a number > 0"),
        ("[sms]\nrate = 'fast'\n", "[sms] rate='fast': must be a number > 0"),
        ("[sms]\nrate = 1\nburst = 2.5\n", "[sms] burst=2.5: must be an integer >= 1"),
        ("[sms]\nburst = 4\n", "[sms] burst=4: needs a rate"),
        ("[sms]\nspeed = 4\n", "[sms] speed=4: unknown key"),
        ("[fax]\nrate = 1\n", "[fax]: address=None: must be one of email, phone, whatsapp, line"),
        ('[fax]\naddress = "fax"\n', "[fax]: address='fax'"),
        ('[fax]\naddress = "phone"\nprovider = "carrier-pigeon"\n', "[fax] provider='carrier-pigeon'"),
        ('[Fax]\naddress = "phone"\n', "[Fax]: a channel name is lower-case"),
        ("[email]\nurl = 'http://mail.example.com'\nfrom = 'a@b.example'\n", "[email] url='http://mail"),
        ("[email]\nurl = 'smtp://mail.example.com'\n", "[email] from=None: is needed to send email"),
        ("[email]\nurl = 'smtp://h'\nfrom = 'nobody'\n", "[email] from='nobody': must be an address"),
        ("[email]\nurl = 'smtp://h?tls=1'\nfrom = 'a@b.example'\n", "unknown option 'tls'"),
        ("[email]\nurl = 'smtp://h?starttls=maybe'\nfrom = 'a@b.example'\n", "starttls='maybe'"),
        ("[email]\nurl = 'smtp://h?timeout=0'\nfrom = 'a@b.example'\n", "timeout='0' must be"),
        ("[email]\nurl = 'smtps://h?starttls=true'\nfrom = 'a@b.example'\n", "already TLS"),
        ("[webhook]\nurl = 'https://h/x'\n", "[webhook] secret=None: is needed to sign requests"),
        ("[webhook]\nurl = 'mailto:x@y'\nsecret = 's'\n", "[webhook] url='mailto:x@y'"),
        ("[webhook]\nurl = 'https://h:99999/x'\nsecret = 's'\n", "not a valid URL"),
        ("[webhook]\nurl = 'https://h/x'\nsecret = 's'\ntimeout = 0\n", "[webhook] timeout=0"),
        ("[webhook]\nurl = 'https://h/x'\nsecret = 's'\nheaders = 'x'\n", "[webhook] headers='x'"),
        ("[webhook]\nurl = 'https://h/x'\nsecret = 's'\nheaders = {X = 1}\n", "[webhook] headers.X=1"),
        ("[webhook]\nurl = 'https://h/x'\nsecret = 's'\nheaders = {X = \"a\\nb\"}\n", "headers.X='***'"),
        ("[sms]\nurl = 5\n", "[sms] url=5: must be a non-empty string"),
        ("sms = 3\n", "sms=3: must be a table"),
        ("[sms\n", "not valid TOML"),
    ],
)
def test_errors_name_file_key_and_value(text, message, tmp_path):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_channels(tmp_path, environ={})
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_environment_errors_name_the_variable_and_hide_passwords(tmp_path):
    write(tmp_path, "")  # the starter's four channels, declared
    env = {"OUTREACH_SMTP_URL": "smtp://user:hunter2@mail.example.com?starttls=perhaps"}
    with pytest.raises(ConfigError) as caught:
        load_channels(tmp_path, environ={**env, "OUTREACH_SMTP_FROM": "a@b.example"})
    text = str(caught.value)
    assert text.startswith("environment OUTREACH_SMTP_URL='smtp://user:***@mail.example.com")
    assert "hunter2" not in text

    with pytest.raises(ConfigError, match="environment OUTREACH_SMTP_FROM='not an address'"):
        load_channels(
            tmp_path, environ={"OUTREACH_SMTP_URL": "smtp://h", "OUTREACH_SMTP_FROM": "not an address"}
        )
    with pytest.raises(ConfigError, match="environment OUTREACH_WHATSAPP_URL='ws://h'"):
        load_channels(tmp_path, environ={"OUTREACH_WHATSAPP_URL": "ws://h", "OUTREACH_WHATSAPP_SECRET": "s"})
    with pytest.raises(ConfigError, match="set it or OUTREACH_WHATSAPP_SECRET"):
        load_channels(tmp_path, environ={"OUTREACH_WHATSAPP_URL": "https://h/x"})


def test_secrets_never_appear_in_errors(tmp_path):
    write(tmp_path, "[sms]\nurl = 'https://h/x'\nsecret = 12345\n")
    with pytest.raises(ConfigError) as caught:
        load_channels(tmp_path, environ={})
    assert "12345" not in str(caught.value) and "[sms] secret='***'" in str(caught.value)


def test_a_batch_url_makes_a_batch_transport_on_the_same_host(tmp_path):
    env = {"OUTREACH_SMS_URL": "https://sms.example.com/v1/messages", "OUTREACH_SMS_SECRET": "s"}
    write(tmp_path, '[sms]\nbatch_url = "https://sms.example.com/v1/messages/batch"\n')
    transports = build_transports(tmp_path, tmp_path / "outbox", environ=env)
    assert isinstance(transports["sms"], HttpBatchTransport)
    write(tmp_path, '[sms]\nbatch_url = "https://other.example.com/batch"\n')
    with pytest.raises(ConfigError, match=r"\[sms\] batch_url='https://other.example.com/batch': must be"):
        load_channels(tmp_path, environ=env)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[sms]\nproviders = []\n", {}, "[sms] providers=[]: names no provider"),
        ('[sms]\nproviders = "twilio"\n', {}, "[sms] providers='twilio': must be a list"),
        ('[sms]\nproviders = ["a", "a"]\n[sms.a]\nkind = "outbox"\n', {}, "names a provider twice"),
        ('[sms]\nproviders = ["pigeon"]\n', {}, "[sms] pigeon.kind='pigeon': must be one of"),
        (
            '[sms]\nproviders = ["tw"]\n[sms.tw]\nkind = "twilio"\nspeed = 1\n',
            {},
            "[sms.tw] speed=1: unknown key",
        ),
        (
            '[sms]\nproviders = ["twilio"]\n[sms.twilio]\naccount_sid = "AC'
            + "0" * 32
            + '"\nfrom = "+15550100000"\n',
            {},
            "[sms.twilio] auth_token=None: is needed: set it or OUTREACH_SMS_TWILIO_AUTH_TOKEN",
        ),
        (
            '[sms]\nproviders = ["outbox"]\n',
            {"OUTREACH_SMS_URL": "https://h/x", "OUTREACH_SMS_SECRET": "s"},
            "does not name http",
        ),
        ('[sms]\nproviders = ["Bad"]\n', {}, "is not a name"),
    ],
)
def test_provider_lists_and_tables_are_refused_naming_the_place(tmp_path, text, env, message):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_channels(tmp_path, environ=env)
    assert message in str(caught.value)


def test_the_environment_names_the_providers_and_fills_their_keys(tmp_path):
    sid = "AC" + "1" * 32
    write(
        tmp_path,
        f'[sms]\nproviders = ["outbox"]\n[sms.twilio]\naccount_sid = "{sid}"\nfrom = "+15550100000"\n',
    )
    env = {"OUTREACH_SMS_PROVIDERS": "twilio,outbox", "OUTREACH_SMS_TWILIO_AUTH_TOKEN": "tok-from-env",
           "OUTREACH_SMS_TWILIO_TIMEOUT": "4.5"}  # fmt: skip
    sms = load_channels(tmp_path, environ=env)["sms"]
    assert [(p.name, p.kind) for p in sms.providers] == [("twilio", "twilio"), ("outbox", "outbox")]
    twilio = sms.provider("twilio").settings
    assert (twilio.account_sid, twilio.auth_token, twilio.timeout) == (sid, "tok-from-env", 4.5)
    assert "tok-from-env" not in repr(twilio)
    transport = build_transports(tmp_path, tmp_path / "outbox", environ=env)["sms"]
    assert isinstance(transport, Failover) and [p.name for p in transport.providers] == ["twilio", "outbox"]


def test_a_secret_in_a_provider_table_never_appears_in_an_error(tmp_path):
    write(tmp_path, '[sms]\nproviders = ["twilio"]\n[sms.twilio]\nauth_token = 12345\n')
    with pytest.raises(ConfigError) as caught:
        load_channels(tmp_path, environ={})
    assert "12345" not in str(caught.value)
