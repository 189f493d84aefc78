from django.urls import path

from . import views

urlpatterns = [
    path("w/<slug:slug>/settings/members/", views.members_settings, name="members_settings"),
]
