"""What a relayed OpenAI or Gemini request reserves on credits, and what credits refuse
(docs/decisions/146 and 148)."""

from ai_gateway.relay import (
    embedding_usage,
    input_tokens_bound,
    output_tokens_bound,
    unpriced_features,
)
from credits.pricing import get_price
from providers import RelayRequest


def test_output_bound_is_the_limit_asked_times_the_answers(settings):
    price = get_price("gpt-5-mini")

    assert output_tokens_bound("openai", {"max_completion_tokens": 100, "n": 3}, price) == 300
    assert output_tokens_bound("openai", {"max_output_tokens": 50}, price) == 50
    assert output_tokens_bound("openai", {}, price) == price.max_output_tokens
    assert output_tokens_bound("openai", {"max_tokens": 10**9}, price) == price.max_output_tokens


def test_gemini_output_bound_reads_generation_config(settings):
    price = get_price("gemini-2.5-flash")
    body = {"generationConfig": {"maxOutputTokens": 200, "candidateCount": 2}}

    assert output_tokens_bound("gemini", body, price) == 400
    assert output_tokens_bound("gemini", {}, price) == 65_536


def test_input_bound_is_at_least_one_token_a_byte():
    body = {"messages": [{"role": "user", "content": "é" * 100}]}

    assert input_tokens_bound(body) >= 200


def test_credits_refuse_what_bills_beyond_tokens():
    assert unpriced_features("openai", {"tools": [{"type": "function"}]}) == []
    assert unpriced_features("openai", {"tools": [{"type": "web_search"}]}) == [
        "tool type 'web_search'"
    ]
    assert unpriced_features("openai", {"service_tier": "priority"}) == ["service_tier 'priority'"]
    assert unpriced_features("gemini", {"tools": [{"googleSearch": {}}]}) == ["tool 'googleSearch'"]
    audio = {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/wav", "data": ""}}]}]}
    assert unpriced_features("gemini", audio) == ["audio input"]
    image = {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": ""}}]}]}
    assert unpriced_features("gemini", image) == []


def test_credits_refuse_audio_and_image_billed_at_their_own_rates():
    speech = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    chat = {"messages": [{"role": "user", "content": [speech]}]}
    assert unpriced_features("openai", chat) == ["audio input"]
    assert unpriced_features("openai", {"input": [{"role": "user", "content": [speech]}]}) == [
        "audio input"
    ]
    assert unpriced_features("openai", {"modalities": ["text", "audio"]}) == ["audio output"]
    spoken = {"generationConfig": {"responseModalities": ["TEXT", "AUDIO"]}}
    assert unpriced_features("gemini", spoken) == ["audio output"]
    drawn = {"generation_config": {"response_modalities": ["IMAGE"]}}
    assert unpriced_features("gemini", drawn) == ["image output"]
    assert unpriced_features("gemini", {"generationConfig": {"responseModalities": ["TEXT"]}}) == []


def test_gemini_embeddings_are_charged_a_bound_of_their_text():
    request = RelayRequest(
        operation="batchEmbedContents",
        body={"requests": [{"model": "models/x", "content": {"parts": [{"text": "abcdefg"}]}}]},
    )

    assert embedding_usage(request).input_tokens == 3
