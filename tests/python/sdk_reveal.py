"""The Azure SDK for Python, unchanged, meets what leaves the gateway.

Through Airlock in forward-proxy mode (HTTPS_PROXY, REQUESTS_CA_BUNDLE), it
reads a secret once with `x-airlock-reveal` (the SDK's per-call `headers`),
which waits until an approver releases that one answer, then reads it again
plainly; then it lists the vault's secrets, which the exfiltration guard
holds: the SDK gets a 409 and tries again until the held answer is
released. Prints one JSON object: what the SDK saw.
"""

import json
import os
import sys
import time

from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient

from sdk_through_proxy import AgentToken


def main():
    credential = AgentToken(os.environ["AIRLOCK_AGENT_TOKEN"])
    vault = os.environ["AIRLOCK_VAULT"]
    name = os.environ["AIRLOCK_SECRET"]
    secrets = SecretClient(f"https://{vault}.vault.azure.net", credential)
    seen = {}
    asked = secrets.get_secret(name, headers={"x-airlock-reveal": "rotate it (CHG-9)"})
    seen["revealed"] = asked.value
    seen["again"] = secrets.get_secret(name).value
    refusals = []
    deadline = time.time() + 60
    while True:
        try:
            seen["listed"] = sorted(item.name for item in secrets.list_properties_of_secrets())
            break
        except HttpResponseError as error:
            refusals.append({"status": error.status_code,
                             "code": error.error.code if error.error else None})
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    seen["refusals"] = refusals
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
