"""Reads GS1 element strings with biip (an independent GS1 parser): one JSON string per input
line, one JSON answer per output line (the label's HRI and its UDI fields, or the error)."""
import json
import sys

import biip

for line in sys.stdin:
    text = json.loads(line)
    try:
        message = biip.parse(text).gs1_message
        if message is None:
            raise ValueError("not a GS1 message")
        fields = {e.ai.ai: e for e in message.element_strings}

        def value(ai):
            return fields[ai].value if ai in fields else None

        def date(ai):
            return fields[ai].date.isoformat() if ai in fields and fields[ai].date else None

        print(json.dumps({
            "hri": message.as_hri(),
            "gtin": value("01"),
            "lot": value("10"),
            "serial": value("21"),
            "expiry": date("17"),
            "manufactured": date("11"),
        }))
    except Exception as error:  # every refusal is an answer, not a crash
        print(json.dumps({"error": str(error)}))
    sys.stdout.flush()
