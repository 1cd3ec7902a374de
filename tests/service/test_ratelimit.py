from shoprec.service.ratelimit import TokenBucketLimiter


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_bucket_refills_at_the_configured_rate():
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=60, burst=2, clock=clock)
    assert limiter.acquire("a").allowed and limiter.acquire("a").allowed
    denied = limiter.acquire("a")
    assert not denied.allowed and denied.retry_after_s == 1
    assert limiter.acquire("b").allowed  # separate bucket
    clock.now = 1.0
    assert limiter.acquire("a").allowed
    assert not limiter.acquire("a").allowed
    clock.now = 10.0  # refill is capped at the burst size
    assert [limiter.acquire("a").allowed for _ in range(3)] == [True, True, False]


def test_retry_after_is_the_wait_for_one_token():
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=2, clock=clock)
    assert limiter.acquire("k").allowed and limiter.acquire("k").allowed
    assert limiter.acquire("k").retry_after_s == 30


def test_zero_disables_and_memory_stays_bounded():
    assert all(TokenBucketLimiter(0).acquire("x").allowed for _ in range(1000))
    clock = FakeClock()
    limiter = TokenBucketLimiter(per_minute=600, max_keys=100, clock=clock)
    for i in range(1000):
        clock.now += 0.001
        limiter.acquire(f"ip:{i}")
    assert len(limiter._buckets) <= 101
