"""A WebsocketCommunicator whose waits for something that must come are generous.

Channels' defaults give a handshake or an expected message one second. On a machine whose cores are all busy
(the suite spread over pytest-xdist workers, or CI beside other work) a socket's connect, which reads the
database and joins groups on Redis, can take longer than that without anything being wrong. A wait for
something that must not come (receive_nothing) keeps the short timeout its test passes.
"""

from channels.testing import WebsocketCommunicator

WAIT_SECONDS = 10


class Communicator(WebsocketCommunicator):
    async def connect(self, timeout=WAIT_SECONDS):
        return await super().connect(timeout)

    async def receive_output(self, timeout=WAIT_SECONDS):
        return await super().receive_output(timeout)

    async def receive_from(self, timeout=WAIT_SECONDS):
        return await super().receive_from(timeout)

    async def receive_json_from(self, timeout=WAIT_SECONDS):
        return await super().receive_json_from(timeout)

    async def disconnect(self, code=1000, timeout=WAIT_SECONDS):
        return await super().disconnect(code, timeout)
