# Vendored copy of a small third-party helper module ("tinyretry" 1.0.3).
# Copied into this tree so the demo has no extra dependency; do not edit here, update upstream.
# Skip rule: files under vendor/ are third-party code and must not enter the corpus.
import functools
import time


def retry(times=3, delay=0.1, exceptions=(Exception,)):
    """Retry the wrapped function up to `times` times with a fixed delay between attempts."""
    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for attempt in range(times):
                try:
                    return fn(*args, **kwargs)
                except exceptions:
                    if attempt == times - 1:
                        raise
                    time.sleep(delay)
        return wrapper
    return decorator
