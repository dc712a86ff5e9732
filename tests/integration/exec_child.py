"""A child process of the execution crash tests: start a client, submit one intent, and die
(``os._exit(137)``, as kill -9 leaves things) at a journal step, or hang until killed.

    python -m tests.integration.exec_child HTTP_URL REDIS_URL SESSION OID STEP
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import redis.asyncio as aioredis

from tests.integration.test_execution import client_for, intent


def main(http_url: str, redis_url: str, session: str, oid: int, step: str) -> None:
    def hook(at: str, order: int) -> None:
        if at == step and order == oid:
            sys.stdout.write(f"dying at {at}\n")
            sys.stdout.flush()
            os._exit(137)

    async def run() -> None:
        r = aioredis.from_url(redis_url)
        client = client_for(http_url, r, session, step_hook=hook)
        await client.start()
        sys.stdout.write("started\n")
        sys.stdout.flush()
        await client.submit(intent(oid))
        sys.stdout.write(json.dumps({"state": client.orders[oid].state}) + "\n")
        sys.stdout.flush()
        await asyncio.sleep(30)  # killed by the test before this ends

    asyncio.run(run())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
