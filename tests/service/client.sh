#!/usr/bin/env bash
# A supervisor written in shell over socat: says hello as the supervisor of producer "sh",
# sends COUNT job events, answers the service's `jobinfo` questions with sed-built JSON, and
# once every event is acked asks for a drain on an admin connection (a second socat).
# usage: client.sh SOCKET COUNT
set -euo pipefail
sock=$1
n=$2
coproc SVC { socat - "UNIX-CONNECT:$sock"; }
printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"hello","params":{"role":"supervisor","producer":"sh","epoch":1}}' >&"${SVC[1]}"
for seq in $(seq 1 "$n"); do
  printf '{"jsonrpc":"2.0","id":%d,"method":"event","params":{"seq":%d,"type":"job","event":"complete","job":{"id":%d,"name":"sh%d"}}}\n' \
    "$seq" "$seq" "$seq" "$seq" >&"${SVC[1]}"
done
acks=0
asked=0
while IFS= read -r line <&"${SVC[0]}"; do
  case "$line" in
    *'"method":"jobinfo"'*)
      id=$(sed -n 's/.*"id":"\(s[0-9]*\)".*/\1/p' <<<"$line")
      job=$(sed -n 's/.*"args":\["-id",\([0-9]*\)\].*/\1/p' <<<"$line")
      printf '{"jsonrpc":"2.0","id":"%s","result":[{"id":%s,"name":"sh%s","label":"","status":"complete","pgrp":%s,"pid":0}]}\n' \
        "$id" "$job" "$job" "$job" >&"${SVC[1]}"
      asked=$((asked + 1))
      ;;
    *'"result":{"ack":'*)
      acks=$((acks + 1))
      if [ "$acks" -eq "$n" ]; then
        # The admin's drain is answered once every run ended; this connection keeps
        # answering questions meanwhile, so the drain runs in the background.
        printf '%s\n%s\n' '{"jsonrpc":"2.0","id":1,"method":"hello","params":{"role":"admin"}}' \
          '{"jsonrpc":"2.0","id":2,"method":"drain","params":{}}' \
          | socat -t 120 - "UNIX-CONNECT:$sock" >"$sock.drain" &
      fi
      ;;
  esac
done
wait
if grep -q '"drained":true' "$sock.drain" 2>/dev/null; then
  echo "acks=$acks asked=$asked drained=yes"
  exit 0
fi
echo "acks=$acks asked=$asked drained=no"
