#!/usr/bin/env bash
# A supervisor written in shell over socat: sends COUNT job events, answers the service's
# `jobinfo` questions with sed-built JSON, asks for a drain once every event is acked.
# usage: client.sh SOCKET COUNT
set -euo pipefail
sock=$1
n=$2
coproc SVC { socat - "UNIX-CONNECT:$sock"; }
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
        printf '{"jsonrpc":"2.0","id":"end","method":"drain","params":{}}\n' >&"${SVC[1]}"
      fi
      ;;
    *'"drained":true'*)
      echo "acks=$acks asked=$asked drained=yes"
      exit 0
      ;;
  esac
done
echo "acks=$acks asked=$asked drained=no"
