"""`azure-openai`: the OpenAI adapter with Azure's URL and auth.

`custom_host` is the resource endpoint `https://<resource>.openai.azure.com` (or `config.resource_name`);
the deployment comes from `config.deployment`, else the body's `model`; `config.api_version` picks
the API version. URL: `{host}/openai/deployments/{deployment}/chat/completions?api-version=...`,
auth: the `api-key` header.
"""

from __future__ import annotations

from urllib.parse import quote

from core.errors import InvalidRequest
from core.providers import ProviderCall
from infra.providers.openai_compatible import OpenAIProvider

DEFAULT_API_VERSION = "2024-10-21"  # the latest GA data-plane inference version


class AzureOpenAIProvider(OpenAIProvider):
    name = "azure-openai"

    def url(self, call: ProviderCall) -> str:
        config = call.binding.config
        host = call.binding.custom_host
        if not host and config.get("resource_name"):
            host = f"https://{config['resource_name']}.openai.azure.com"
        if not host:
            raise InvalidRequest("An azure-openai virtual key needs custom_host, the resource endpoint "
                                 "https://<resource>.openai.azure.com.", param="virtual_key")
        host = host.rstrip("/").removesuffix("/openai")
        deployment = config.get("deployment") or call.body.get("model")
        if not deployment or not isinstance(deployment, str):
            raise InvalidRequest("An azure-openai call needs a deployment: set config.deployment on the "
                                 "virtual key, or a model.", param="model")
        api_version = str(config.get("api_version") or DEFAULT_API_VERSION)
        return (f"{host}/openai/deployments/{quote(deployment, safe='')}/chat/completions"
                f"?api-version={quote(api_version, safe='')}")

    def auth_headers(self, secret: str | None) -> dict[str, str]:
        return {"api-key": secret} if secret else {}
