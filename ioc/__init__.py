"""IOC Platform's shared vocabulary: event contracts, topics, units, reference model and settings."""
