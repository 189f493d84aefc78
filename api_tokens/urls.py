from django.urls import path

from . import views

urlpatterns = [
    path(
        "w/<slug:slug>/settings/api-tokens/", views.api_tokens_settings, name="api_tokens_settings"
    ),
    path(
        "w/<slug:slug>/settings/api-tokens/revoke-created-by/",
        views.api_tokens_revoke_by_creator,
        name="api_tokens_revoke_created_by",
    ),
    path(
        "w/<slug:slug>/settings/api-tokens/<int:token_id>/revoke/",
        views.api_token_revoke,
        name="api_token_revoke",
    ),
]
