from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("w/<slug:slug>/", views.workspace_home, name="workspace_home"),
]
