"""The stream bench's floor relay (bench/floor_relay.py), served by uvicorn as the bench
serves it, passes the stand-in's stream through whole."""

import subprocess
import sys

import anthropic

from tests.bench.conftest import ROOT
from tests.served import free_port, wait_for_health


def test_the_floor_relay_passes_a_stream_through_whole(standin_url):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.floor_relay:app", "--port", str(port)],
        cwd=ROOT,
        env={"FLOOR_UPSTREAM": standin_url, "FLOOR_API_KEY": "sk-ant-api03-bench", "PATH": ""},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_health(server, f"{url}/health", timeout=30)
        # The relay adds its own key: the client's is not looked at.
        client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
        with client.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "Hello"}],
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_message()
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert kinds.count("content_block_delta") == 5
    assert kinds[-1] == "message_stop"
    assert final.content[0].text == " word" * 5
