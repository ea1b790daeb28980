"""The provider registry: names, lazy imports, one adapter per name, settings passed on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.errors import InvalidRequest
from infra.providers import PROVIDER_CLASSES, ProviderRegistry
from infra.providers.azure_openai import AzureOpenAIProvider
from infra.providers.openai_compatible import OpenAIProvider
from infra.providers.retry import RetryPolicy

ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_package_imports_no_adapter() -> None:
    code = ("import sys, infra.providers\n"
            "heavy = ['infra.providers.openai_compatible', 'infra.providers.azure_openai', 'infra.providers.anthropic',"
            " 'infra.providers.bedrock', 'infra.providers.mock', 'aiohttp', 'httpx', 'boto3', 'botocore']\n"
            "print(','.join(m for m in heavy if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_provider_is_imported_on_first_use_only() -> None:
    code = ("import sys\nfrom infra.providers import ProviderRegistry\n"
            "ProviderRegistry().provider('openai')\n"
            "print(','.join(m for m in ['infra.providers.openai_compatible', 'infra.providers.anthropic',"
            " 'infra.providers.bedrock'] if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "infra.providers.openai_compatible"


def test_the_names() -> None:
    assert set(PROVIDER_CLASSES) == {"openai", "azure-openai", "anthropic", "bedrock", "mock"}
    assert PROVIDER_CLASSES["anthropic"] == "infra.providers.anthropic:AnthropicProvider"
    assert PROVIDER_CLASSES["bedrock"] == "infra.providers.bedrock:BedrockProvider"
    assert PROVIDER_CLASSES["mock"] == "infra.providers.mock:MockProvider"


def test_adapters_are_built_once_and_reused() -> None:
    registry = ProviderRegistry()
    openai = registry.provider("openai")
    assert type(openai) is OpenAIProvider
    assert registry.provider("openai") is openai
    assert type(registry.provider("azure-openai")) is AzureOpenAIProvider


def test_an_unknown_provider_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        ProviderRegistry().provider("cohere")
    assert caught.value.status == 400 and "cohere" in caught.value.message


def test_the_retry_policy_reaches_the_adapters() -> None:
    policy = RetryPolicy(max_attempts=5)
    adapter = ProviderRegistry(retry=policy).provider("openai")
    assert adapter._exchange.retry is policy


class TakesNothing:
    def __init__(self) -> None:
        self.settings: dict[str, Any] = {}


class TakesRetry:
    def __init__(self, *, retry: RetryPolicy | None = None) -> None:
        self.settings = {"retry": retry}


class TakesAll:
    def __init__(self, **settings: Any) -> None:
        self.settings = settings


def test_each_adapter_gets_only_the_settings_it_takes() -> None:
    policy = RetryPolicy()
    here = __name__
    registry = ProviderRegistry(retry=policy, region="eu-west-1", classes={
        "a": f"{here}:TakesNothing", "b": f"{here}:TakesRetry", "c": f"{here}:TakesAll"})
    assert registry.provider("a").settings == {}
    assert registry.provider("b").settings == {"retry": policy}
    assert registry.provider("c").settings == {"retry": policy, "region": "eu-west-1"}
