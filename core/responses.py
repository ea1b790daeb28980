"""OpenAI's Responses API over stored prompts: `POST /v1/responses` with `prompt: {id, version, variables}`.

A thin adapter over the prompt and completion services, for every provider alike: the request
(core.responses_request) resolves and renders the stored version like a completion; the chat messages
are the rendered template's, then `instructions` as a developer message, then `input`; the chat call
runs through CompletionService; its answer becomes a `Response` object (`to_response`), its chunks
Responses events (core.responses_stream). cuecard keeps no responses: `store`, `previous_response_id`
and `background` are refused.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

from core.completions import CompletionService, PreparedCompletion
from core.errors import InvalidRequest, InvalidVariables, NotFound, PromptNotFound
from core.hyperparameters import PromptRequest
from core.models import TemplateVersion
from core.responses_request import ResponsesRequest, parse_responses_request
from core.service import PromptService, Rendered

# Chat keys the Responses call never sends: one answer (no `n`); the stream's options are cuecard's own.
_NOT_SENT = ("messages", "prompt", "n", "stream_options")
_MAX_TOKEN_KEYS = ("max_completion_tokens", "max_tokens")
# A chat finish_reason that ends a response early -> `incomplete_details.reason`.
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def mapping(value: Any) -> Mapping[str, Any]:
    """`value` if it is an object, else an empty one (provider answers are read defensively)."""
    return value if isinstance(value, Mapping) else {}


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


@dataclass(frozen=True, slots=True)
class PreparedResponse:
    """Everything resolved before the provider is called: errors so far are plain HTTP errors."""

    completion: PreparedCompletion
    response: dict[str, Any]  # the Response object before the call: `in_progress`, no output yet

    @property
    def stream(self) -> bool:
        return self.completion.stream

    @property
    def version(self) -> TemplateVersion:
        return self.completion.rendered.version


class ResponsesService:
    def __init__(self, prompts: PromptService, completions: CompletionService, *,
                 clock: Callable[[], float] = time.time, new_id: Callable[[str], str] = new_item_id) -> None:
        self._prompts = prompts
        self._completions = completions
        self._clock = clock
        self._new_id = new_id

    def prepare(self, body: Any, *, request_id: str) -> PreparedResponse:
        request = parse_responses_request(body)
        rendered = self._render(request)
        version = rendered.version
        if version.variables_schema is not None:
            _check_known(version, request)
        chat = chat_body(rendered.body, request)
        call = Rendered(version, chat, PromptRequest(variables=request.variables, stream=request.stream,
                                                     overrides=request.overrides))
        completion = self._completions.prepare_rendered(call, request_id=request_id)
        response_id = f"resp_{request_id}" if request_id else self._new_id("resp")
        return PreparedResponse(completion, skeleton(response_id, int(self._clock()), chat, request, version))

    def _render(self, request: ResponsesRequest) -> Rendered:
        try:
            return self._prompts.render(request.reference, {"variables": request.variables})
        except NotFound as exc:
            exc.param = "prompt.id" if isinstance(exc, PromptNotFound) or not request.version_given else "prompt.version"
            raise
        except InvalidRequest as exc:  # the variables a strict render refuses: name them as the request did
            if exc.param and (exc.param == "variables" or exc.param.startswith(("variables.", "variables["))):
                exc.message = exc.message.replace(', or render with "strict": false', "")
                exc.param = f"prompt.{exc.param}"
            raise

    async def create(self, prepared: PreparedResponse) -> dict[str, Any]:
        completion = await self._completions.complete(prepared.completion)
        return to_response(prepared.response, completion, new_id=self._new_id, now=self._clock)

    def chunks(self, prepared: PreparedResponse) -> AsyncIterator[dict[str, Any]]:
        """The provider's chat chunks; core.responses_stream turns them into events."""
        return self._completions.stream(prepared.completion)

    @property
    def new_id(self) -> Callable[[str], str]:
        return self._new_id

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock


def _check_known(version: TemplateVersion, request: ResponsesRequest) -> None:
    """A version with its own variables_schema refuses variables the schema does not know (as a strict render)."""
    schema = version.variables_schema or {}
    properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    if schema.get("additionalProperties", False) is not False or schema.get("patternProperties"):
        return  # open to more names: the version's own strict render (if any) decides
    unknown = [name for name in request.variables if name not in (properties or {})]
    if unknown:
        raise InvalidVariables(
            f"{version.source} has a variables_schema that does not list {', '.join(unknown[:20])}. Send only the "
            "variables its schema lists (GET the prompt to see it).", param=f"prompt.variables.{unknown[0]}")


# --- the chat call -----------------------------------------------------------------------------------


def chat_body(rendered: Mapping[str, Any], request: ResponsesRequest) -> dict[str, Any]:
    """The chat request: the version's saved parameters with the request's on top; the rendered messages (image
    and file variables as content parts), `instructions` as a developer message, then `input`'s messages."""
    messages = with_parts(rendered["messages"] if "messages" in rendered else
                          [{"role": "user", "content": rendered.get("prompt", "")}], request.parts)
    if request.parts:
        _check_placed(messages, request)
    if request.instructions is not None:
        messages.append({"role": "developer", "content": request.instructions})
    messages.extend(request.input_messages)
    body = {key: value for key, value in rendered.items() if key not in _NOT_SENT}
    overrides = dict(request.overrides)
    if "max_tokens" in overrides:  # into whichever key the saved parameters use (reasoning models need the new one)
        limit = overrides.pop("max_tokens")
        keys = [key for key in _MAX_TOKEN_KEYS if key in body] or ["max_tokens"]
        overrides.update(dict.fromkeys(keys, limit))
    body.update(overrides)
    body["messages"] = messages
    if request.stream:
        body["stream_options"] = {"include_usage": True}  # a Response always reports its usage
    return body


def with_parts(messages: list[Any], parts: Mapping[str, dict[str, Any]]) -> list[Any]:
    """The rendered messages with each image or file placeholder made its content part: a message (or text part)
    that is exactly the placeholder becomes the part; one that holds it loses it from its text and gains the part
    at its end."""
    if not parts:
        return list(messages)
    result = []
    for message in messages:
        if not isinstance(message, Mapping):
            result.append(message)
            continue
        content = message.get("content")
        if isinstance(content, str) and content in parts:
            content = [parts[content]]
        elif isinstance(content, str) and any(placeholder in content for placeholder in parts):
            text, found = _strip(content, parts)
            content = ([{"type": "text", "text": text}] if text.strip() else []) + found
        elif isinstance(content, list):
            content = _parts_in_list(content, parts)
        result.append({**message, "content": content})
    return result


def _check_placed(messages: list[Any], request: ResponsesRequest) -> None:
    """An image or file variable the template uses anywhere but in a message's text cannot become a part."""
    text = json.dumps(messages, ensure_ascii=False)
    for name, value in request.variables.items():
        if value in request.parts and value in text:
            raise InvalidRequest(
                f"prompt.variables.{name} is an image or file, and the template uses it where only text can go "
                "(a message's content is where it becomes a content part). Send its URL as a string variable "
                "instead.", param=f"prompt.variables.{name}")


def _parts_in_list(content: list[Any], parts: Mapping[str, dict[str, Any]]) -> list[Any]:
    kept: list[Any] = []
    appended: list[dict[str, Any]] = []
    for part in content:
        text = part.get("text") if isinstance(part, Mapping) and part.get("type") == "text" else None
        if isinstance(text, str) and text in parts:
            kept.append(parts[text])
        elif isinstance(text, str) and any(placeholder in text for placeholder in parts):
            stripped, found = _strip(text, parts)
            kept.append({**part, "text": stripped})
            appended.extend(found)
        else:
            kept.append(part)
    return kept + appended


def _strip(text: str, parts: Mapping[str, dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """`text` without its placeholders, and their parts in the order they appear."""
    found = sorted((text.find(placeholder), placeholder) for placeholder in parts if placeholder in text)
    for _, placeholder in found:
        text = text.replace(placeholder, "")
    return text, [parts[placeholder] for _, placeholder in found]


# --- the Response object -----------------------------------------------------------------------------


def skeleton(response_id: str, created_at: int, chat: Mapping[str, Any], request: ResponsesRequest,
             version: TemplateVersion) -> dict[str, Any]:
    """The Response before the call: what was asked, as the chat call asks it (saved parameters included)."""
    limit = next((chat[key] for key in _MAX_TOKEN_KEYS if chat.get(key) is not None), None)
    return {
        "id": response_id, "object": "response", "created_at": created_at, "status": "in_progress",
        "background": False, "error": None, "incomplete_details": None, "instructions": request.instructions,
        "max_output_tokens": limit, "metadata": dict(request.metadata), "model": str(chat.get("model") or ""),
        "output": [], "parallel_tool_calls": chat.get("parallel_tool_calls", True) is not False,
        "previous_response_id": None,
        "prompt": {"id": request.prompt_id, "version": str(version.version), "variables": request.echoed_variables},
        "reasoning": {"effort": chat.get("reasoning_effort"), "summary": None},
        "service_tier": chat.get("service_tier"), "store": False, "temperature": chat.get("temperature"),
        "text": _text_echo(chat), "tool_choice": _tool_choice_echo(chat.get("tool_choice")),
        "tools": _tools_echo(chat.get("tools")), "top_p": chat.get("top_p"), "truncation": "disabled",
        "usage": None, "user": chat.get("user"),
    }


def _text_echo(chat: Mapping[str, Any]) -> dict[str, Any]:
    fmt = chat.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), Mapping):
        echoed = {"type": "json_schema", **fmt["json_schema"]}
    elif isinstance(fmt, Mapping) and fmt.get("type") in ("text", "json_object"):
        echoed = {"type": fmt["type"]}
    else:
        echoed = {"type": "text"}
    text: dict[str, Any] = {"format": echoed}
    if chat.get("verbosity") is not None:
        text["verbosity"] = chat["verbosity"]
    return text


def _tool_choice_echo(choice: Any) -> Any:
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice if isinstance(choice, str) else "auto"


def _tools_echo(tools: Any) -> list[dict[str, Any]]:
    echoed = []
    for tool in tools if isinstance(tools, list) else []:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping):
            echoed.append({"type": "function", "name": function.get("name"), "description": function.get("description"),
                           "parameters": function.get("parameters"), "strict": function.get("strict")})
    return echoed


def message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}


def response_usage(usage: Any) -> dict[str, Any] | None:
    """A chat `usage` in Responses' terms: input and output tokens, and their details objects."""
    if not isinstance(usage, Mapping):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = mapping(usage.get("prompt_tokens_details"))
    completion_details = mapping(usage.get("completion_tokens_details"))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(prompt_details.get("cached_tokens") or 0),
                                 "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0)},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def finished(response: Mapping[str, Any], output: list[dict[str, Any]], finish_reason: str | None,
             usage: Any, model: Any, now: float) -> dict[str, Any]:
    """The final Response: `completed`, or `incomplete` with its reason when the provider stopped early."""
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    result = {**response, "status": "incomplete" if reason else "completed", "output": output,
              "usage": response_usage(usage), "completed_at": int(now)}
    if reason:
        result["incomplete_details"] = {"reason": reason}
    if isinstance(model, str) and model:
        result["model"] = model
    return result


def to_response(response: Mapping[str, Any], completion: Mapping[str, Any], *, new_id: Callable[[str], str],
                now: Callable[[], float]) -> dict[str, Any]:
    """A chat completion as the Response: its first choice's text or refusal as a message, then its tool calls."""
    choices = completion.get("choices") or []
    choice = mapping(choices[0] if choices else None)
    message = mapping(choice.get("message"))
    finish_reason = choice.get("finish_reason")
    status = "incomplete" if finish_reason in INCOMPLETE_REASONS else "completed"
    output: list[dict[str, Any]] = []
    parts = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"]))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(refusal_part(message["refusal"]))
    if parts:
        output.append(message_item(new_id("msg"), parts, status))
    for call in _tool_calls(message):
        function = mapping(call.get("function"))
        output.append(function_call_item(new_id("fc"), str(call.get("id") or new_id("call")), str(function.get("name")),
                                         str(function.get("arguments") or ""), "completed"))
    return finished(response, output, finish_reason, completion.get("usage"), completion.get("model"), now())


def _tool_calls(message: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    calls = [call for call in message.get("tool_calls") or [] if isinstance(call, Mapping)]
    legacy = message.get("function_call")
    if not calls and isinstance(legacy, Mapping):  # a version with the legacy `functions`
        calls = [{"function": legacy}]
    return calls


def failed(response: Mapping[str, Any], output: list[dict[str, Any]], message: str, *, status: int,
           now: float) -> dict[str, Any]:
    """The Response of a call that failed after its stream began. `error.code` takes OpenAI's values."""
    code = "rate_limit_exceeded" if status == 429 else "server_error"
    return {**response, "status": "failed", "output": output, "completed_at": int(now),
            "error": {"code": code, "message": message}}
