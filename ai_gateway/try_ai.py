"""What Try AI offers a workspace: each provider's models, grouped, with who pays for them
(docs/decisions/137 and 150); and its prompt in each provider's own request shape.

A provider is offered when the workspace can use it: with its own key for that provider
(any status but invalid; US$ list prices shown), or, without one, on AI credits when the
platform has a key for that provider (prices in credits). A provider whose key is invalid is
shown with its models disabled and the reason; one with neither key is left out (it is
BYOK-only and the workspace has no key for it). Models are the price table's (a model without
a price row cannot be named, decision 137); embedding models are left out, since Try AI
writes text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings

from credits.pricing import get_price
from llm_keys.models import Provider
from llm_keys.selectors import NextCredentials, credentials_next_by_provider
from providers import RelayRequest

from .models import CredentialSource
from .relay import relay_begin, relay_send
from .services import create_message

# A dated id ("claude-sonnet-4-5-20250929") is a snapshot of the undated one beside it.
_DATED = re.compile(r"^(?P<alias>.+)-\d{8}$")
MODEL_PREFIXES = {
    Provider.ANTHROPIC: ("claude-",),
    Provider.OPENAI: ("gpt-", "o1", "o3", "o4"),
    Provider.GEMINI: ("gemini-",),
}
# Tiers as each provider's model overview orders them, most capable first.
_TIERS = {
    "fable": "frontier",
    "mythos": "frontier",
    "opus": "most capable",
    "pro": "most capable",
    "sonnet": "balanced",
    "flash": "balanced",
    "haiku": "fastest, lowest price",
    "mini": "fastest, lowest price",
    "nano": "fastest, lowest price",
    "lite": "fastest, lowest price",
}
_ACRONYMS = {"gpt": "GPT"}
CREDITS_PER_USD = 10_000


@dataclass(frozen=True, slots=True)
class ProviderOffer:
    """One provider on Try AI: who pays for its models, and why they are off if they are."""

    provider: str
    next_credentials: NextCredentials
    models: tuple[str, ...]

    @property
    def label(self) -> str:
        return Provider(self.provider).label

    @property
    def usable(self) -> bool:
        return self.next_credentials.source != CredentialSource.NONE


def provider_of(model: str) -> str | None:
    """The provider whose API serves ``model``, by its id; None for an unknown id."""
    for provider, prefixes in MODEL_PREFIXES.items():
        if model.startswith(prefixes):
            return provider
    return None


def _is_version(part: str) -> bool:
    return part.replace(".", "").isdigit()


def model_name(model: str) -> str:
    """Return a model's name as its provider writes it: "claude-sonnet-4-5" → "Claude Sonnet
    4.5"; Google puts the version after the family: "gemini-2.5-flash" → "Gemini 2.5 Flash";
    OpenAI joins it to the family and writes the rest in lower case: "gpt-5-mini" → "GPT-5
    mini"."""
    parts = model.split("-")
    words = [_ACRONYMS.get(p, p.capitalize()) for p in parts if not _is_version(p)]
    version = [".".join(p for p in parts if _is_version(p))] if any(map(_is_version, parts)) else []
    provider = provider_of(model)
    if provider == Provider.ANTHROPIC:
        return " ".join(words + version)
    if provider == Provider.OPENAI:
        return " ".join(["-".join(words[:1] + version)] + [w.lower() for w in words[1:]])
    return " ".join(words[:1] + version + words[1:])


def _tier(model: str) -> str | None:
    words = model.split("-")
    return next((_TIERS[w] for w in reversed(words) if w in _TIERS), None)


def _sort_key(model: str) -> tuple:
    tiers = list(dict.fromkeys(_TIERS.values()))
    tier = _tier(model)
    numbers = [p for p in re.split(r"[-.]", model) if p.isdigit()]
    version = tuple(-int(p) for p in numbers) + (0,) * (3 - len(numbers))
    return (tiers.index(tier) if tier else len(tiers), version, model)


def offered_models(provider: str) -> tuple[str, ...]:
    """The price table's text models of ``provider``, one entry per model, best first."""
    models = {
        m for m in settings.AI_MODEL_PRICES if provider_of(m) == provider and "embedding" not in m
    }
    undated = [m for m in models if not ((dated := _DATED.match(m)) and dated["alias"] in models)]
    return tuple(sorted(undated, key=_sort_key))


def provider_offers(*, workspace) -> list[ProviderOffer]:
    """Return the providers Try AI shows this workspace, in the order of ``Provider``."""
    return [
        ProviderOffer(provider, paid_with, models)
        for provider, paid_with in credentials_next_by_provider(workspace=workspace).items()
        if (models := offered_models(provider))
    ]


def offer_for(offers: list[ProviderOffer], model: str | None) -> ProviderOffer | None:
    """The offer of ``model``'s provider (the first offer when no model is given)."""
    if not model:
        return offers[0] if offers else None
    provider = provider_of(model)
    return next((offer for offer in offers if offer.provider == provider), None)


def _price_text(model: str, *, in_usd: bool) -> str:
    price = get_price(model)
    if in_usd:
        return (
            f"US${price.input / CREDITS_PER_USD:,g} / US${price.output / CREDITS_PER_USD:,g}"
            " per M tokens in / out"
        )
    return f"{price.input:,} / {price.output:,} credits per M tokens in / out"


def model_label(model: str, *, in_usd: bool) -> str:
    """Name · tier · price per million tokens (credits, or US$ on the workspace's own key)."""
    parts = (model_name(model), _tier(model), _price_text(model, in_usd=in_usd))
    return " · ".join(part for part in parts if part)


def group_label(offer: ProviderOffer) -> str:
    if offer.usable:
        return offer.label
    return f"{offer.label} — off: the workspace's {offer.label} key is invalid"


def model_choices(offers: list[ProviderOffer]) -> list:
    """Try AI's model choices: flat for one provider, else grouped by provider."""
    groups = [
        (
            group_label(offer),
            [
                (
                    model,
                    model_label(
                        model, in_usd=offer.next_credentials.source == CredentialSource.BYOK
                    ),
                )
                for model in offer.models
            ],
        )
        for offer in offers
    ]
    if len(groups) == 1:
        return groups[0][1]
    return groups


@dataclass(frozen=True, slots=True)
class PromptAnswer:
    """A whole answer for the page without JavaScript."""

    text: str
    model: str
    credential_source: str
    credits_charged: int
    input_tokens: int
    output_tokens: int


def prompt_request(
    *, model: str, prompt: str, system: str, max_tokens: int, stream: bool
) -> RelayRequest:
    """Try AI's prompt in the OpenAI or Gemini API's own request shape."""
    if provider_of(model) == Provider.OPENAI:
        messages = [{"role": "system", "content": system}] if system else []
        body: dict[str, Any] = {
            "model": model,
            "messages": [*messages, {"role": "user", "content": prompt}],
            "max_completion_tokens": max_tokens,
        }
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return RelayRequest(operation="chat.completions", body=body)
    body = {
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"maxOutputTokens": max_tokens},
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    method = "streamGenerateContent" if stream else "generateContent"
    return RelayRequest(operation=method, body=body, model=model, api_version="v1beta")


def answer_text(provider: str, body: dict[str, Any]) -> str:
    """The text of an OpenAI chat completion or a Gemini answer."""
    if provider == Provider.OPENAI:
        choices = body.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")
    candidates = body.get("candidates") or [{}]
    parts = (candidates[0].get("content") or {}).get("parts") or []
    return "".join(str(part.get("text") or "") for part in parts if isinstance(part, dict))


def send_prompt(
    *, workspace, user, model: str, prompt: str, system: str, max_tokens: int
) -> PromptAnswer:
    """Send Try AI's form to the model's provider and return the whole answer (or raise
    the GatewayError saying why not)."""
    provider = provider_of(model)
    if provider == Provider.ANTHROPIC:
        answer = create_message(
            workspace=workspace,
            user=user,
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            system=system or None,
        )
        content = answer.body.get("content") or []
        return PromptAnswer(
            text="".join(b.get("text", "") for b in content if isinstance(b, dict)),
            model=str(answer.body.get("model") or model),
            credential_source=str(answer.credential_source),
            credits_charged=answer.credits_charged,
            input_tokens=answer.usage.input_tokens,
            output_tokens=answer.usage.output_tokens,
        )
    request = prompt_request(
        model=model, prompt=prompt, system=system, max_tokens=max_tokens, stream=False
    )
    call = relay_begin(
        workspace=workspace, user=user, provider=provider, request=request, stream=False
    )
    result, charged = async_to_sync(relay_send)(call, request)
    return PromptAnswer(
        text=answer_text(provider, result.body),
        model=model,
        credential_source=str(call.source),
        credits_charged=charged,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
    )
