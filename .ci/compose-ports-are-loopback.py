#!/usr/bin/env python3
"""Every port docker-compose.yml publishes is bound to the host's loopback interface, so that nothing it starts
(PostgreSQL with its default password, Ollama without authentication, the management port) is reachable from other
machines by default. Reads `docker-compose config` on stdin: the file as compose resolves it, every profile included."""
import sys

import yaml

config = yaml.safe_load(sys.stdin)
published = 0
open_to_all = []
for name, service in sorted(config.get("services", {}).items()):
    for port in service.get("ports", []):
        published += 1
        # short syntax as compose writes it back ("127.0.0.1:8080:8080/tcp"), or long syntax (host_ip, published, target)
        loopback = port.get("host_ip") == "127.0.0.1" if isinstance(port, dict) else str(port).startswith("127.0.0.1:")
        if not loopback:
            open_to_all.append(f"{name}: {port}")
if open_to_all:
    sys.exit("FAILED: docker-compose.yml publishes on all interfaces, write 127.0.0.1:<host port>:<port> instead: "
             + "; ".join(open_to_all))
print(f"docker-compose.yml publishes its {published} ports on 127.0.0.1 only")
