"""Shared by the tests that SIGKILL a child process at a chosen point."""

import textwrap

# Prepended to each child script: ``stop_here`` announces the point reached and waits to be
# killed; ``after(f)`` wraps ``f`` so that the child stops right after it returns.
PRELUDE = textwrap.dedent(
    """
    import time

    def stop_here(*args, **kwargs):
        print("REACHED", flush=True)
        time.sleep(60)
        raise SystemExit("not killed")

    def after(original):
        def wrapper(*args, **kwargs):
            result = original(*args, **kwargs)
            stop_here()
            return result
        return wrapper
    """
)
