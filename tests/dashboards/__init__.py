"""Tests of the dashboards: data layer, scoping, pages under AppTest, commands on Kafka, a real browser."""
