"""An independent HL7 v2 receiver for Seldinger's outbound tests: python-hl7's asyncio MLLP
server. Every message it receives is parsed by python-hl7 and written as one JSON line (type,
control id, and the fields the tests check, each as python-hl7 reads it) to the file named by the
first argument; it answers with python-hl7's own ACK: AA, or AE for message types listed after
--refuse (last). --port N listens on N (default: a free port); --tls CERT KEY [--client-ca CA]
serves MLLP over TLS. Prints the port it listens on. Test-only; synthetic data."""

import asyncio
import json
import ssl
import sys

import hl7
from hl7.mllp import start_hl7_server

OUT = sys.argv[1]
REFUSE = set(sys.argv[sys.argv.index("--refuse") + 1 :]) if "--refuse" in sys.argv else set()
PORT = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
TLS = None
if "--tls" in sys.argv:
    # MLLP over TLS (Python's ssl, on OpenSSL): --tls CERT KEY, and --client-ca CA to require a
    # client certificate from that CA (mutual TLS).
    at = sys.argv.index("--tls")
    TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    TLS.load_cert_chain(sys.argv[at + 1], sys.argv[at + 2])
    if "--client-ca" in sys.argv:
        TLS.load_verify_locations(sys.argv[sys.argv.index("--client-ca") + 1])
        TLS.verify_mode = ssl.CERT_REQUIRED


def field(message, segment, number):
    """The whole field as text, '' when the segment or field is absent."""
    try:
        seg = message.segment(segment)
    except KeyError:
        return ""
    return str(seg[number]) if len(seg) > number else ""


def read(message):
    mtype = str(message.segment("MSH")[9])
    return {
        "type": mtype,
        "to": str(message.segment("MSH")[5]),
        "control_id": str(message.segment("MSH")[10]),
        "version": str(message.segment("MSH")[12]),
        "segments": [str(s[0]) for s in message],
        "pid3": field(message, "PID", 3),
        "pid5": field(message, "PID", 5),
        "sch2": field(message, "SCH", 2),
        "sch6": field(message, "SCH", 6),
        "sch25": field(message, "SCH", 25),
        "sch26": field(message, "SCH", 26),
        "sch27": field(message, "SCH", 27),
        "ail3": field(message, "AIL", 3),
        "orc1": field(message, "ORC", 1),
        "orc2": field(message, "ORC", 2),
        "orc3": field(message, "ORC", 3),
        "orc5": field(message, "ORC", 5),
        "obr4": field(message, "OBR", 4),
        "obr18": field(message, "OBR", 18),
        "obr25": field(message, "OBR", 25),
        "ipc1": field(message, "IPC", 1),
        "ipc3": field(message, "IPC", 3),
        "zds1": field(message, "ZDS", 1),
        "obx5": [str(s[5]) for s in message if str(s[0]) == "OBX"],
    }


async def serve(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            seen = read(message)
            code = "AE" if seen["type"].split("^")[1] in REFUSE else "AA"
            seen["answered"] = code
            with open(OUT, "a", encoding="utf-8") as out:
                out.write(json.dumps(seen) + "\n")
            writer.writemessage(message.create_ack(ack_code=code))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError, ssl.SSLError):
        pass


async def main():
    server = await start_hl7_server(serve, "127.0.0.1", PORT, encoding="utf-8", ssl=TLS)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
