"""The Azure adapter: its URL, query and auth header, checked on the fake upstream's last request."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequest, UpstreamError
from infra.providers.azure_openai import DEFAULT_API_VERSION, AzureOpenAIProvider
from tests.fake_upstream import FakeUpstream
from tests.providers.conftest import FAST_RETRY, SECRET, binding, chat_body, collect, make_call, run


@pytest.fixture
def provider() -> AzureOpenAIProvider:
    return AzureOpenAIProvider(retry=FAST_RETRY)


def test_url_query_and_api_key_header(fake: FakeUpstream, provider: AzureOpenAIProvider) -> None:
    vk = binding("azure-openai", custom_host=fake.origin, headers={"X-Extra": "1"},
                 config={"deployment": "gpt4o-prod", "api_version": "2024-06-01"})
    result = run(provider.complete(make_call(vk=vk)))
    seen = fake.last_request
    assert seen.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert seen.query == {"api-version": "2024-06-01"}
    assert seen.headers["api-key"] == SECRET
    assert "authorization" not in seen.headers
    assert seen.headers["x-extra"] == "1"
    assert seen.body == chat_body()
    assert result == fake.last_response


def test_deployment_falls_back_to_the_model_and_version_to_the_default(fake: FakeUpstream,
                                                                       provider: AzureOpenAIProvider) -> None:
    vk = binding("azure-openai", custom_host=fake.origin + "/openai/")
    run(provider.complete(make_call(vk=vk, body=chat_body(model="my deployment"))))
    assert fake.last_request.path == "/openai/deployments/my%20deployment/chat/completions"
    assert fake.last_request.query == {"api-version": DEFAULT_API_VERSION}


def test_streaming_through_azure(fake: FakeUpstream, provider: AzureOpenAIProvider) -> None:
    vk = binding("azure-openai", custom_host=fake.origin, config={"deployment": "d"})
    chunks, error = run(collect(provider, make_call(vk=vk, stream=True)))
    assert error is None and chunks == fake.sent_chunks
    assert fake.last_request.path == "/openai/deployments/d/chat/completions"
    assert fake.last_request.body["stream"] is True


def test_no_api_key_header_without_a_secret(fake: FakeUpstream, provider: AzureOpenAIProvider) -> None:
    vk = binding("azure-openai", custom_host=fake.origin, config={"deployment": "d"})
    run(provider.complete(make_call(vk=vk, secret=None)))
    assert "api-key" not in fake.last_request.headers


def test_azure_error_bodies_keep_code_and_message(fake: FakeUpstream, provider: AzureOpenAIProvider) -> None:
    fake.fail_next(404, body=b'{"error": {"code": "DeploymentNotFound", "message": "The API deployment does not exist."}}')
    vk = binding("azure-openai", custom_host=fake.origin, config={"deployment": "nope"})
    with pytest.raises(UpstreamError) as caught:
        run(provider.complete(make_call(vk=vk)))
    error = caught.value
    assert (error.status, error.code, error.message) == (404, "DeploymentNotFound", "The API deployment does not exist.")


def test_resource_name_builds_the_endpoint(provider: AzureOpenAIProvider) -> None:
    vk = binding("azure-openai", config={"resource_name": "acme", "deployment": "d"})
    assert provider.url(make_call(vk=vk)) == (
        f"https://acme.openai.azure.com/openai/deployments/d/chat/completions?api-version={DEFAULT_API_VERSION}")


def test_a_binding_without_endpoint_or_deployment_is_invalid(provider: AzureOpenAIProvider) -> None:
    with pytest.raises(InvalidRequest):
        provider.url(make_call(vk=binding("azure-openai", config={"deployment": "d"})))
    with pytest.raises(InvalidRequest):
        provider.url(make_call(vk=binding("azure-openai", custom_host="https://x.openai.azure.com"),
                               body={"messages": []}))
