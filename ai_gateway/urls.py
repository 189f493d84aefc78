from django.urls import path, re_path

from . import (
    anthropic_api,
    gemini_api,
    home_views,
    openai_api,
    try_ai_api,
    usage_views,
    views,
)

urlpatterns = [
    # The Anthropic-compatible API (SPEC §13): Anthropic(base_url="<site>/anthropic").
    path("anthropic/v1/messages", anthropic_api.messages, name="anthropic_messages"),
    path(
        "anthropic/v1/messages/count_tokens",
        anthropic_api.count_tokens,
        name="anthropic_count_tokens",
    ),
    path("anthropic/v1/models", anthropic_api.models, name="anthropic_models"),
    path("anthropic/v1/models/<str:model_id>", anthropic_api.model, name="anthropic_model"),
    re_path(
        r"^anthropic/v1/(?P<path>(?:messages/batches|files)(?:/[A-Za-z0-9_-]+)*)$",
        anthropic_api.own_key_passthrough,
        name="anthropic_own_key_passthrough",
    ),
    # Last: every other path under /anthropic answers in Anthropic's 404 envelope.
    re_path(r"^anthropic(?:/(?P<path>.*))?$", anthropic_api.not_found),
    # Each provider's own API (SPEC §18), with a workspace API token.
    path("openai/v1/chat/completions", openai_api.chat_completions, name="openai_chat"),
    path("openai/v1/responses", openai_api.responses, name="openai_responses"),
    path("openai/v1/embeddings", openai_api.embeddings, name="openai_embeddings"),
    path("openai/v1/models", openai_api.models, name="openai_models"),
    re_path(r"^openai(?:/(?P<path>.*))?$", openai_api.not_found),
    re_path(
        r"^gemini/(?P<version>v1beta|v1)/models/(?P<model>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
        r":(?P<method>[A-Za-z]+)$",
        gemini_api.model_method,
        name="gemini_model_method",
    ),
    re_path(r"^gemini/(?P<version>v1beta|v1)/models$", gemini_api.models, name="gemini_models"),
    re_path(r"^gemini(?:/(?P<path>.*))?$", gemini_api.not_found),
    path("api/v1/w/<slug:slug>/messages", views.messages_api, name="ai_messages_api"),
    # Try AI's session API for the other providers' models (decision 150).
    path(
        "api/v1/w/<slug:slug>/openai/chat/completions",
        try_ai_api.openai_chat,
        name="try_ai_openai_chat",
    ),
    re_path(
        r"^api/v1/w/(?P<slug>[-a-zA-Z0-9_]+)/gemini/models/"
        r"(?P<model>[A-Za-z0-9][A-Za-z0-9._-]{0,127}):(?P<method>[A-Za-z]+)$",
        try_ai_api.gemini_generate,
        name="try_ai_gemini",
    ),
    path("", home_views.home, name="home"),
    path("w/<slug:slug>/", views.workspace_home, name="workspace_home"),
    path("w/<slug:slug>/ai/", views.ai_playground, name="ai_playground"),
    path("w/<slug:slug>/ai/status/", views.ai_playground_status, name="ai_playground_status"),
    path("w/<slug:slug>/usage/", usage_views.ai_usage, name="ai_usage"),
    path("w/<slug:slug>/usage/export.csv", usage_views.ai_usage_export, name="ai_usage_export"),
]
