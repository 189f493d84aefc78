"""The benches' asyncio stand-in speaks Anthropic's API as the real SDK reads it."""

import http.client
import json
import time

import anthropic

MESSAGES = [{"role": "user", "content": "Hello"}]


def test_a_stream_carries_n_deltas_over_s_seconds_with_usage(standin_url):
    client = anthropic.Anthropic(base_url=standin_url, api_key="sk-ant-api03-bench", max_retries=0)
    began = time.monotonic()
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES) as s:
        kinds = [event.type for event in s]
        final = s.get_final_message()
    elapsed = time.monotonic() - began

    assert kinds.count("content_block_delta") == 5
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert final.usage.input_tokens == 12
    assert final.usage.output_tokens == 5
    assert final.content[0].text == " word" * 5
    assert 0.45 <= elapsed < 5


def test_a_plain_request_answers_json_after_the_latency(standin_url):
    client = anthropic.Anthropic(base_url=standin_url, api_key="sk-ant-api03-bench", max_retries=0)
    began = time.monotonic()
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=MESSAGES)

    assert time.monotonic() - began >= 0.05
    assert message.usage.input_tokens == 12
    assert message.stop_reason == "end_turn"


def test_a_request_without_a_key_is_refused_as_anthropic_does(standin_url):
    host, port = standin_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("POST", "/v1/messages", json.dumps({"model": "claude-haiku-4-5"}))
    response = conn.getresponse()

    assert response.status == 401
    assert json.loads(response.read())["error"]["type"] == "authentication_error"


def test_an_openai_chat_stream_reads_in_the_openai_sdk(standin_url):
    import openai

    client = openai.OpenAI(base_url=f"{standin_url}/v1", api_key="sk-proj-bench", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-5-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " word" * 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 5 and chunks[-1].usage.prompt_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])


def test_a_gemini_stream_reads_in_the_google_genai_sdk(standin_url):
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="AIza" + "b" * 35, http_options=types.HttpOptions(base_url=standin_url)
    )
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi"))

    assert "".join(c.text or "" for c in chunks) == " word" * 5
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 5
