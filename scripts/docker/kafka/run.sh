#!/bin/bash
# Entrypoint of the local apache/kafka:4.1.1 stand-in. Like the official
# image: every KAFKA_FOO_BAR=v variable becomes the property foo.bar=v
# (in the name, "___" stands for "_", "__" for "-" and "_" for "."), the
# storage is formatted once with CLUSTER_ID, and the broker runs in the
# foreground, logging to the console.
set -euo pipefail
props=/opt/kafka/config/server.properties
: >"$props"
# Variables of the JVM and the start scripts, not broker properties.
skip=" KAFKA_HEAP_OPTS KAFKA_OPTS KAFKA_JVM_PERFORMANCE_OPTS KAFKA_LOG4J_OPTS KAFKA_GC_LOG_OPTS KAFKA_JMX_OPTS KAFKA_DEBUG KAFKA_HOME KAFKA_VERSION "
for var in $(compgen -e | grep '^KAFKA_' || true); do
  [[ $skip == *" $var "* ]] && continue
  name=$(printf '%s' "${var#KAFKA_}" | tr '[:upper:]' '[:lower:]' |
    sed -e 's/___/\x01/g' -e 's/__/-/g' -e 's/_/./g' -e 's/\x01/_/g')
  printf '%s=%s\n' "$name" "${!var}" >>"$props"
done
grep -q '^log.dirs=' "$props" || echo "log.dirs=/var/lib/kafka/data" >>"$props"
CLUSTER_ID=${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}
cp="/opt/kafka/libs/*"
java -cp "$cp" -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
  kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props" --ignore-formatted >/dev/null
# G1 with the flags of Kafka's kafka-run-class.sh.
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent ${KAFKA_OPTS:-} \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp "$cp" kafka.Kafka "$props"
