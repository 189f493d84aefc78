from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from workspaces.forms import EmailLoginForm
from workspaces.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(authentication_form=EmailLoginForm),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("llm_keys.urls")),
    path("", include("credits.urls")),
    path("", include("ai_gateway.urls")),
    path("", include("api_tokens.urls")),
    path("", include("workspaces.urls")),
]

handler403 = "workspaces.error_views.permission_denied"
