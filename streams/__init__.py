"""The Faust stream processors, the ClickHouse warehouse and sink, and upward reporting."""
