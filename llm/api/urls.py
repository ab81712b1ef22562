from __future__ import annotations

from django.urls import path

from llm.api import agent_views, catalog_views, embeddings, pages, views

app_name = "llm"

urlpatterns = [
    path("v1/chat/completions", views.chat_completions, name="chat-completions"),
    path("v1/messages", agent_views.messages, name="messages"),
    path("v1/messages/count_tokens", agent_views.count_tokens, name="messages-count-tokens"),
    path("v1/responses", agent_views.responses, name="responses"),
    path("v1/models", views.list_models, name="models"),
    path("v1/models/<path:model_id>", views.retrieve_model, name="model"),
    path("v1/embeddings", embeddings.create_embeddings, name="embeddings"),
    path("api/v1/generate", views.generate, name="generate"),
    path("api/v1/generate-structured", views.generate_structured, name="generate-structured"),
    path("api/v1/models", catalog_views.gateway_models, name="gateway-models"),
    path("api/v1/health", catalog_views.gateway_health, name="gateway-health"),
    # Dashboard pages.
    path("dashboard/playground/", pages.playground, name="playground"),
    path("dashboard/playground/send/", pages.playground_send, name="playground-send"),
    path("dashboard/models/", pages.models_page, name="models-page"),
]
