"""Everything that brings observations in: vendor SDK, fleet simulators, MQTT→Kafka bridge, gateways."""
