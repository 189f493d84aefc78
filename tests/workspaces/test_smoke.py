def test_healthz_answers_when_the_database_does(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_admin_saves_a_key_and_sees_it_masked(admin_client, workspace, standin):
    from tests.factories import fake_key

    raw = fake_key()
    response = admin_client.post(
        "/w/acme/settings/llm-key/", {"provider": "anthropic", "api_key": f"  {raw}  "}, follow=True
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f"sk-ant-…{raw[-4:]}" in body
    assert 'data-key-status="valid"' in body
    assert raw not in body
    assert standin.keys_seen() == [raw]
