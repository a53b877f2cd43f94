"""Local Apache Kafka for development and tests, and the project's topics as code."""
