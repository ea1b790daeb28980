"""Settings.from_env: defaults, parsing, and errors that name the variable."""

from __future__ import annotations

import dataclasses

import pytest

from core.templating import RenderLimits
from infra.settings import Settings


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert (settings.table_name, settings.dynamodb_endpoint, settings.region) == ("cuecard", None, "us-east-1")
    assert (settings.pointer_cache_ttl, settings.pinned_cache_size, settings.auth_cache_ttl) == (5.0, 2048, 60.0)
    assert (settings.max_body_bytes, settings.admin_key) == (1_048_576, None)


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "CUECARD_TABLE": "prod-prompts",
            "CUECARD_DYNAMODB_ENDPOINT": "http://127.0.0.1:8000/",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "CUECARD_POINTER_CACHE_TTL": "0",
            "CUECARD_PINNED_CACHE_SIZE": "10",
            "CUECARD_AUTH_CACHE_TTL": "2.5",
            "CUECARD_MAX_BODY_BYTES": "2048",
            "CUECARD_ADMIN_KEY": "ck-admin",
        }
    )
    assert settings == Settings(table_name="prod-prompts", dynamodb_endpoint="http://127.0.0.1:8000", region="eu-west-1",
                                pointer_cache_ttl=0.0, pinned_cache_size=10, auth_cache_ttl=2.5, max_body_bytes=2048,
                                admin_key="ck-admin")


def test_aws_region_wins_over_the_default_region() -> None:
    assert Settings.from_env({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-1"}).region == "ap-south-1"


@pytest.mark.parametrize(
    "name, value",
    [
        ("CUECARD_POINTER_CACHE_TTL", "soon"),
        ("CUECARD_POINTER_CACHE_TTL", "-1"),
        ("CUECARD_POINTER_CACHE_TTL", "nan"),
        ("CUECARD_PINNED_CACHE_SIZE", "1.5"),
        ("CUECARD_AUTH_CACHE_TTL", "-3"),
        ("CUECARD_MAX_BODY_BYTES", "0"),
        ("CUECARD_DYNAMODB_ENDPOINT", "localhost:8000"),
        ("CUECARD_RENDER_MAX_OUTPUT_BYTES", "0"),
        ("CUECARD_RENDER_MAX_OUTPUT_BYTES", "2MB"),
        ("CUECARD_RENDER_MAX_ITERATIONS", "-1"),
        ("CUECARD_RENDER_MAX_PARTIALS", "1e3"),
        ("CUECARD_RENDER_TIMEOUT", "0"),
        ("CUECARD_RENDER_TIMEOUT", "inf"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().table_name = "x"  # type: ignore[misc]


def test_render_limits_default_to_the_cores_and_are_read() -> None:
    assert Settings.from_env({}).render_limits == RenderLimits()
    settings = Settings.from_env({"CUECARD_RENDER_MAX_OUTPUT_BYTES": "65536", "CUECARD_RENDER_MAX_ITERATIONS": "50",
                                  "CUECARD_RENDER_MAX_PARTIALS": "7", "CUECARD_RENDER_TIMEOUT": "0.25"})
    assert settings.render_limits == RenderLimits(max_output_bytes=65536, max_iterations=50, max_partials=7, timeout=0.25)
