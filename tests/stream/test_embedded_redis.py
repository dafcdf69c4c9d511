"""The embedded Redis the run command starts serves the channel layer over its unix socket."""

import subprocess
import time

import pytest
import redis
from asgiref.sync import async_to_sync
from channels_redis.core import RedisChannelLayer

from riskradar.embedded_redis import redis_server_argv


@pytest.fixture
def embedded_redis(tmp_path):
    socket_path = tmp_path / "redis.sock"
    process = subprocess.Popen(redis_server_argv(socket_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(unix_socket_path=str(socket_path))
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("embedded Redis did not start")
            time.sleep(0.05)
    yield f"unix://{socket_path}"
    process.terminate()
    process.wait(timeout=10)


def test_channel_layer_round_trip_over_the_embedded_socket(embedded_redis):
    layer = RedisChannelLayer(hosts=[embedded_redis], prefix="riskradar-test")

    async def round_trip():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "stream.event", "event": {"type": "heartbeat", "data": {}}})
        message = await layer.receive(channel)
        await layer.flush()
        await layer.close_pools()
        return message

    assert async_to_sync(round_trip)()["event"]["type"] == "heartbeat"


def test_a_socket_idle_longer_than_the_blocking_pop_keeps_waiting(embedded_redis, settings):
    """channels-redis waits for a message with 5-second blocking pops; the configured read timeout must outlast
    them, or a socket that hears nothing for 5 seconds fails with "Timeout reading" (redis-py's default)."""
    import asyncio

    from riskradar import settings as project_settings

    (host,) = project_settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    layer = RedisChannelLayer(hosts=[{**host, "address": embedded_redis}], prefix="riskradar-test-idle")
    assert layer.brpop_timeout < host["socket_timeout"]

    async def idle_then_receive():
        channel = await layer.new_channel()

        async def send_later():
            await asyncio.sleep(layer.brpop_timeout + 1.5)
            await layer.send(channel, {"type": "stream.event", "event": {"type": "heartbeat", "data": {}}})

        sender = asyncio.create_task(send_later())
        message = await layer.receive(channel)
        await sender
        await layer.flush()
        await layer.close_pools()
        return message

    assert async_to_sync(idle_then_receive)()["event"]["type"] == "heartbeat"
