"""Friendly 403/404/500 pages in the site's layout, and the one date and number format."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.test import Client

from workspaces.formatting import format_credits, format_datetime, format_relative


@pytest.mark.django_db
class TestErrorPages:
    def test_outsider_gets_the_styled_404_without_learning_the_workspace_exists(
        self, outsider_client, workspace
    ):
        response = outsider_client.get("/w/acme/settings/llm-key/")
        assert response.status_code == 404
        page = response.content.decode()
        assert 'data-error-page="404"' in page
        assert "<title>Page not found · Platform AI</title>" in page
        assert "Acme" not in page
        assert "Go to your workspaces" in page

    def test_member_on_an_admin_page_is_told_who_the_admins_are(
        self, member_client, admin_user, workspace
    ):
        from tests.factories import MembershipFactory

        MembershipFactory(workspace=workspace, role="admin", user__email="second@example.com")
        response = member_client.get("/w/acme/settings/llm-key/")
        assert response.status_code == 403
        page = response.content.decode()
        assert 'data-error-page="403"' in page
        assert "This page is for the admins of <strong>Acme</strong>" in page
        assert 'href="mailto:admin@example.com"' in page
        assert 'href="mailto:second@example.com"' in page
        assert "member@example.com</a>" not in page  # members are not listed as admins
        assert 'class="topbar"' in page  # the site's layout, with the workspace's navigation
        assert 'href="/w/acme/"' in page

    def test_a_500_is_a_styled_page_that_says_what_to_do(self, settings):
        from django.urls import path

        def boom(request):
            raise RuntimeError("boom")

        from config import urls

        settings.ROOT_URLCONF = type(
            "U", (), {"urlpatterns": [path("boom/", boom), *urls.urlpatterns]}
        )
        response = Client(raise_request_exception=False).get("/boom/")
        assert response.status_code == 500
        page = response.content.decode()
        assert 'data-error-page="500"' in page
        assert "Try again in a minute" in page


class TestFormatting:
    def test_datetimes_carry_the_time_zone(self):
        assert format_datetime(datetime(2026, 3, 4, 5, 6, tzinfo=UTC)) == "4 Mar 2026, 05:06 UTC"
        assert format_datetime(None) == "never"

    def test_relative_time_in_both_directions(self):
        now = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
        assert format_relative(now - timedelta(seconds=20), now=now) == "just now"
        assert format_relative(now - timedelta(minutes=3), now=now) == "3 minutes ago"
        assert format_relative(now - timedelta(hours=1), now=now) == "1 hour ago"
        assert format_relative(now + timedelta(hours=6), now=now) == "in 6 hours"
        assert format_relative(now - timedelta(days=9), now=now) == "1 week ago"

    def test_credits_have_thousands_separators(self):
        assert format_credits(1234567) == "1,234,567"
        assert format_credits(-2500) == "-2,500"

    def test_django_date_filter_uses_the_same_format(self):
        rendered = Template("{{ when }}").render(
            Context({"when": datetime(2026, 3, 4, 5, 6, tzinfo=UTC)})
        )
        assert rendered == "4 Mar 2026, 05:06 UTC"


@pytest.mark.django_db
def test_settings_page_fields_describe_only_ids_that_exist(admin_client, workspace):
    import re

    response = admin_client.post("/w/acme/settings/llm-key/", {"provider": "anthropic"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "data-error-summary" in page
    for described in re.findall(r'aria-describedby="([^"]+)"', page):
        for element_id in described.split():
            assert f'id="{element_id}"' in page, element_id
    assert 'aria-invalid="true"' in page
