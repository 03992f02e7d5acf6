#!/bin/bash
# kafka-run-class.sh CLASS ARGS...: runs a class of the Kafka jars, as the
# official image's script of that name does, with the tools' quiet logging.
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
  -cp "/opt/kafka/libs/*" "$@"
