"""Thin clients of the external services: ClickHouse, Kafka (admin, delivery) and Mosquitto's dynamic security."""
