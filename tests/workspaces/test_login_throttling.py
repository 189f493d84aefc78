"""Repeated failed logins are throttled per account and per client, on /login/ and on
/admin/login/: 429 with when to try again, even with the right password; support sees and
clears lockouts in the admin."""

import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.test import Client

from tests.factories import PASSWORD, UserFactory

LIMIT = 4


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.LOGIN_FAILURE_LIMIT = LIMIT
    settings.AXES_FAILURE_LIMIT = LIMIT


@pytest.fixture
def person(db):
    return UserFactory(email="person@example.com", is_staff=True, is_superuser=True)


def _login(client, email, password, url="/login/", ip="10.0.0.1"):
    return client.post(url, {"username": email, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_after_the_limit_even_the_right_password_gets_429_with_when_to_retry(person, url):
    client = Client()
    for _ in range(LIMIT - 1):
        response = _login(client, person.email, "wrong-password", url)
        assert response.status_code == 200  # the form again, with its error
    response = _login(client, person.email, "wrong-password", url)
    assert response.status_code == 429
    response = _login(client, person.email, PASSWORD, url)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    text = response.content.decode()
    assert "Too many failed logins" in text
    assert re.search(r"Try again in 15 minutes, after \d\d:\d\d UTC", text)
    assert response["Retry-After"] == str(15 * 60)
    assert "no-store" in response["Cache-Control"]


@pytest.mark.django_db
def test_one_account_is_locked_from_every_client(person):
    for n in range(LIMIT):
        _login(Client(), person.email, "wrong-password", ip=f"10.0.1.{n}")
    response = _login(Client(), person.email.upper(), PASSWORD, ip="10.0.9.9")
    assert response.status_code == 429


@pytest.mark.django_db
def test_one_client_is_locked_for_every_account(person):
    for n in range(LIMIT):
        _login(Client(), f"nobody{n}@example.com", "wrong-password", ip="10.0.2.2")
    assert _login(Client(), person.email, PASSWORD, ip="10.0.2.2").status_code == 429
    # Another client, the same account: not locked.
    assert _login(Client(), person.email, PASSWORD, ip="10.0.2.3").status_code == 302


@pytest.mark.django_db
def test_below_the_limit_the_right_password_works(person):
    client = Client()
    for _ in range(LIMIT - 1):
        _login(client, person.email, "wrong-password")
    assert _login(client, person.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_behind_a_tls_proxy_the_proxys_hop_names_the_client(person, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    for n in range(LIMIT):
        Client().post(
            "/login/",
            {"username": f"x{n}@example.com", "password": "nope"},
            REMOTE_ADDR="192.168.0.1",
            # A client writing a fresh address first each time does not escape its count.
            HTTP_X_FORWARDED_FOR=f"1.2.3.{n}, 203.0.113.7",
        )
    blocked = Client().post(
        "/login/",
        {"username": person.email, "password": PASSWORD},
        REMOTE_ADDR="192.168.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    assert blocked.status_code == 429
    other = Client().post(
        "/login/",
        {"username": person.email, "password": PASSWORD},
        REMOTE_ADDR="192.168.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.8",
    )
    assert other.status_code == 302


@pytest.mark.django_db
class TestSupportClearsLockouts:
    @pytest.fixture
    def support_client(self):
        user = UserFactory(email="support@example.com", is_staff=True)
        user.groups.add(Group.objects.get(name="Support"))
        client = Client()
        client.force_login(user)
        return client

    def test_the_outsider_and_a_member_cannot_see_lockouts(self, admin_user, member_user):
        for user in (admin_user, member_user):  # not staff: workspace roles give no admin
            client = Client()
            client.force_login(user)
            response = client.get("/admin/axes/accessattempt/")
            assert response.status_code == 302
            assert "/admin/login/" in response["Location"]
        assert Client().get("/admin/axes/accessattempt/").status_code == 302

    def test_support_sees_and_clears_a_lockout(self, person, support_client):
        for _ in range(LIMIT):
            _login(Client(), person.email, "wrong-password", ip="10.0.3.3")
        assert _login(Client(), person.email, PASSWORD, ip="10.0.3.4").status_code == 429

        listing = support_client.get("/admin/axes/accessattempt/")
        assert listing.status_code == 200
        assert person.email in listing.content.decode()

        attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
        response = support_client.post(
            "/admin/axes/accessattempt/",
            {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
        )
        assert response.status_code == 302
        assert not AccessAttempt.objects.exists()
        assert _login(Client(), person.email, PASSWORD, ip="10.0.3.4").status_code == 302
