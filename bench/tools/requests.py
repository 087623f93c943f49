"""Sends CONNS x N keep-alive `GET /` requests to HOST:PORT, each connection one at a time.

usage: requests.py HOST:PORT CONNS N
"""
import asyncio
import sys

host, port = sys.argv[1].rsplit(":", 1)
conns, per_conn = int(sys.argv[2]), int(sys.argv[3])
REQUEST = f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()


async def one():
    reader, writer = await asyncio.open_connection(host, int(port))
    for _ in range(per_conn):
        writer.write(REQUEST)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    writer.close()


async def main():
    await asyncio.gather(*(one() for _ in range(conns)))


asyncio.run(main())
