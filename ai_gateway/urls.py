from django.urls import path

from . import usage_views, views

urlpatterns = [
    path("api/v1/w/<slug:slug>/messages", views.messages_api, name="ai_messages_api"),
    path("w/<slug:slug>/ai/", views.ai_playground, name="ai_playground"),
    path("w/<slug:slug>/usage/", usage_views.ai_usage, name="ai_usage"),
    path("w/<slug:slug>/usage/export.csv", usage_views.ai_usage_export, name="ai_usage_export"),
]
