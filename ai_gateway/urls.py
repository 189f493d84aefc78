from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/w/<slug:slug>/messages", views.messages_api, name="ai_messages_api"),
    path("w/<slug:slug>/", views.workspace_home, name="workspace_home"),
    path("w/<slug:slug>/ai/", views.ai_playground, name="ai_playground"),
    path("w/<slug:slug>/usage/", views.ai_usage, name="ai_usage"),
]
