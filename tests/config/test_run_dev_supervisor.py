"""make run's supervisor: a worker or beat that dies is started again while the web server
keeps serving; the web server's own exit ends the run."""

import sys
import threading

from scripts import run_dev


def test_a_dying_worker_is_restarted_and_the_web_server_keeps_running(tmp_path, monkeypatch):
    monkeypatch.setattr(run_dev, "MAX_RESTART_DELAY_SECONDS", 0.2)
    starts = tmp_path / "worker-starts"
    web_alive = tmp_path / "web-alive"
    worker = f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"
    web = f"import time; open({str(web_alive)!r}, 'w').write('up'); time.sleep(60)"
    stop = threading.Event()
    result = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "code",
            run_dev.supervise(
                {"web": [sys.executable, "-c", web], "worker": [sys.executable, "-c", worker]},
                stop=stop,
                poll_seconds=0.05,
            ),
        )
    )
    thread.start()
    try:
        deadline = threading.Event()
        for _ in range(200):
            if starts.exists() and len(starts.read_text()) >= 3:
                break
            deadline.wait(0.05)
        assert len(starts.read_text()) >= 3  # died and was started again, twice at least
        assert thread.is_alive() and "code" not in result  # the run (and web) goes on
    finally:
        stop.set()
        thread.join(timeout=15)
    assert result["code"] == 0
    assert web_alive.read_text() == "up"


def test_the_web_servers_exit_ends_the_run():
    stop = threading.Event()
    code = run_dev.supervise(
        {
            "web": [sys.executable, "-c", "raise SystemExit(4)"],
            "worker": [sys.executable, "-c", "import time; time.sleep(60)"],
        },
        stop=stop,
        poll_seconds=0.05,
    )
    assert code == 4
