"""Counting events in time windows, for the rate-limit test and the sweep bench."""


def max_in_window(times: list[float], window: float) -> int:
    """Return the most of the sorted ``times`` that fall within any ``window`` seconds."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
