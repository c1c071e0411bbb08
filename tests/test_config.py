"""Configuration: declared once, documented from that one table, failing fast and clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engauge.config import SETTINGS, ConfigError, load_config

README = Path(__file__).parent.parent / "README.md"


def configuration_section() -> str:
    return README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]


def readme_variables() -> set[str]:
    return set(re.findall(r"`(ENGAUGE_[A-Z]+)`", configuration_section()))


def test_every_setting_is_documented_in_the_readme() -> None:
    declared = {setting.variable for setting in SETTINGS}
    assert declared == readme_variables()


def test_readme_defaults_match_the_table() -> None:
    rows = [line for line in configuration_section().splitlines() if line.startswith("| `")]
    for setting in SETTINGS:
        if setting.default is not None:
            row = next(line for line in rows if line.startswith(f"| `{setting.variable}`"))
            assert f"`{setting.default}`" in row, setting.variable


def test_defaults_load(tmp_path: Path) -> None:
    config = load_config({"ENGAUGE_TIMEZONE": "Europe/Berlin"})
    assert (config.host, config.port, config.fsync) == ("127.0.0.1", 8080, "everysec")
    assert config.sessiondelay == 30
    assert config.cors == ("*",)
    assert str(config.timezone) == "Europe/Berlin"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENGAUGE_PORT", "abc"),
        ("ENGAUGE_PORT", "70000"),
        ("ENGAUGE_TIMEZONE", "Mars/Base"),
        ("ENGAUGE_SESSIONDELAY", "0"),
        ("ENGAUGE_SESSIONDELAY", "soon"),
        ("ENGAUGE_FSYNC", "sometimes"),
        ("ENGAUGE_WEEKSTART", "friday"),
        ("ENGAUGE_HTTPS", "maybe"),
        ("ENGAUGE_APIKEY", "short"),
        ("ENGAUGE_PUBLICKEY", "short"),
        ("ENGAUGE_USER", " "),
        ("ENGAUGE_CORS", "www.example.com"),
        ("ENGAUGE_CORS", "https://example.com/shop"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({variable: value})
    assert str(raised.value).startswith(f"{variable}=")


def test_https_needs_existing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ENGAUGE_CERTFILE"):
        load_config({"ENGAUGE_HTTPS": "true"})
    with pytest.raises(ConfigError, match="no such file"):
        load_config(
            {
                "ENGAUGE_HTTPS": "true",
                "ENGAUGE_CERTFILE": str(tmp_path / "missing.pem"),
                "ENGAUGE_KEYFILE": str(tmp_path / "missing.key"),
            }
        )


def test_fractional_session_delay() -> None:
    assert load_config({"ENGAUGE_SESSIONDELAY": "0.5"}).sessiondelay == 0.5


def test_cors_origins_are_written_as_browsers_send_them() -> None:
    """An ``Origin`` header is lower-case, without a default port or a path: so is the list."""
    config = load_config(
        {"ENGAUGE_CORS": "https://WWW.Example.com:443/, http://localhost:8080,http://a.test:80"}
    )
    assert config.cors == ("https://www.example.com", "http://localhost:8080", "http://a.test")


def test_the_public_key_must_differ_from_the_api_key() -> None:
    same = "the-same-key-0123456789"
    with pytest.raises(ConfigError) as raised:
        load_config({"ENGAUGE_APIKEY": same, "ENGAUGE_PUBLICKEY": same})
    assert "ENGAUGE_PUBLICKEY" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("http://[::1]:8080", ("http://[::1]:8080",)), ("*", ("*",))],
)
def test_cors_keeps_ipv6_origins_and_the_star(value: str, expected: tuple[str, ...]) -> None:
    assert load_config({"ENGAUGE_CORS": value}).cors == expected


def test_cors_is_the_star_or_a_list_not_both() -> None:
    with pytest.raises(ConfigError):
        load_config({"ENGAUGE_CORS": "*, https://example.com"})
