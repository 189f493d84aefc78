from django.urls import path

from . import views

urlpatterns = [
    path("w/<slug:slug>/settings/llm-key/", views.llm_key_settings, name="llm_key_settings"),
    path(
        "w/<slug:slug>/settings/llm-key/remove/",
        views.llm_key_remove_view,
        name="llm_key_remove",
    ),
    path(
        "w/<slug:slug>/settings/llm-key/check/",
        views.llm_key_check_view,
        name="llm_key_check",
    ),
]
