#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TCP relay to a PostgreSQL Unix socket, so that a test can cut one vouchd instance off
the database while the others keep it (a network partition): SIGSTOP the relay and
nothing passes either way (connections hang, as across a partition); SIGCONT heals it.

  pg_relay.py SOCKET_DIR PORT_FILE     listens on 127.0.0.1, a free port, written to PORT_FILE
"""
import asyncio
import os
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


async def main(sock_dir, port_file):
    path = os.path.join(sock_dir, ".s.PGSQL.5432")

    async def client(r, w):
        try:
            ur, uw = await asyncio.open_unix_connection(path)
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{port}\n")
    os.rename(port_file + ".tmp", port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
