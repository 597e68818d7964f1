"""Kopf operators that provision an IOC replica for any administrative unit."""
